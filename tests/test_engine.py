"""The engine: one loop running every periodic job as a module (bot/engine.py, handlers/engine.py).

A daily module due at 08:30 runs once a day as the ManualClock moves; two engines on one database
(two replicas) run each occurrence once; an engine started after 08:30 (the bot was down) runs the
missed occurrence once, flagged late (补发); a module that fails does not stop the others and is
logged once per kind. On SQLite and PostgreSQL. Timers are inspected and fired by hand, never
waited for; the schedules' arithmetic is tested directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.engine import ENGINE_RUNS_KEEP, Engine, Housekeeping, work_for
from bot.roster_jobs import run_roster_jobs
from bot.scheduler import build_scheduler
from domain.config import Config
from handlers.engine import (
    LOOKBACK,
    CycleResult,
    Monthly,
    Weekly,
    daily,
    due_occurrences,
    run_cycles,
    same_day,
    take_due,
)
from handlers.ops.base import Work
from store import engine_runs, outbox
from store.models import OutboxMessage
from tests.conftest import SHANGHAI, Bot, start_bot
from tests.roster_support import load_roster

LOG_TIME = time(8, 30)


def local(day: int, hour: int, minute: int = 0, second: float = 0) -> datetime:
    whole = int(second)
    return datetime(2026, 11, day, hour, minute, whole, int((second - whole) * 1e6), tzinfo=SHANGHAI)


class MorningLog:
    """A daily module like issue #16's 舆情日志: at 08:30 it posts the day's log, once, 补发 when late.

    Its outbox key names the replica, so a second replica doing the day again would show as a
    second row: only engine_runs keeps it to one."""

    name = "test-morning-log"
    interval: timedelta | None = timedelta(minutes=10)

    def __init__(self, replica: str = "a") -> None:
        self.replica = replica
        self.schedule = daily(LOG_TIME, SHANGHAI)

    async def cycle(self, work: Work) -> CycleResult:
        posted = late = 0
        for due in await take_due(work.session, self.name, self.schedule, work.now, expires=same_day(SHANGHAI)):
            text = f"【舆情日志】{due.at.astimezone(SHANGHAI):%m月%d日}" + ("（补发）" if due.late else "")
            await outbox.enqueue(work.session, key=f"test-log:{due.key}:{self.replica}", chat_id="wecom_duty",
                                 text=text, mentions=[], now=work.now)
            posted += 1
            late += int(due.late)
        return CycleResult(queued=posted, late=late, next_at=self.schedule.next_after(work.now))


class Broken:
    """A module that fails on every cycle until mended."""

    name = "broken"
    interval: timedelta | None = None

    def __init__(self) -> None:
        self.mended = False
        self.cycles = 0

    async def cycle(self, work: Work) -> CycleResult:
        self.cycles += 1
        if not self.mended:
            raise RuntimeError("the module's query failed")
        return CycleResult()


def engine_of(bot: Bot, *modules: MorningLog | Broken) -> Engine:
    engine = Engine(clock=bot.clock, tick=1.0, metrics=bot.runtime.metrics)
    for module in modules:
        engine.add_module(module, bot.runtime.db, work_for(bot.runtime))
    return engine


async def logs(bot: Bot) -> list[tuple[str, str]]:
    async with bot.runtime.db.read() as session:
        rows = await session.execute(select(OutboxMessage.key, OutboxMessage.text)
                                     .where(OutboxMessage.key.startswith("test-log:")).order_by(OutboxMessage.id))
        return [(key, text) for key, text in rows.all()]


async def test_a_daily_module_runs_once_a_day_at_its_time(bot: Bot) -> None:
    engine = engine_of(bot, MorningLog())
    slot = engine.slots[MorningLog.name]
    bot.clock.set(local(24, 8, 0))
    await engine.beat()
    assert await logs(bot) == []  # the 23rd's 08:30 belongs to a day that has ended; today's is to come
    assert slot.next_at == local(24, 8, 10)  # its interval: a poll in case the clock jumps
    bot.clock.set(local(24, 8, 25))
    await engine.beat()
    assert slot.next_at == local(24, 8, 30)  # the module's wish, before its interval

    bot.clock.set(local(24, 8, 29, 59.6))
    await engine.beat()
    assert await logs(bot) == []
    assert slot._armed_for == local(24, 8, 30)  # woken at 08:30:00, not at the next beat
    bot.clock.set(local(24, 8, 30))
    assert slot._timer is not None
    handle, slot._timer = slot._timer, None  # fire it by hand rather than wait for it
    handle.cancel()
    slot._fire()
    await asyncio.gather(*slot.tasks())
    assert await logs(bot) == [(f"test-log:{local(24, 8, 30).astimezone(UTC).isoformat()}:a", "【舆情日志】11月24日")]

    for moment in (local(24, 8, 30, 1), local(24, 8, 45), local(24, 23, 59)):
        bot.clock.set(moment)
        await engine.beat()  # due again by its interval: the cycle finds the day done
    assert len(await logs(bot)) == 1
    bot.clock.set(local(25, 8, 30))
    await engine.beat()
    bot.clock.set(local(25, 8, 31))
    await engine.beat()
    assert [text for _, text in await logs(bot)] == ["【舆情日志】11月24日", "【舆情日志】11月25日"]
    async with bot.runtime.db.read() as session:
        done = await engine_runs.runs(session, MorningLog.name)
    assert [(r.due_at, r.late) for r in done] == [(local(24, 8, 30), False), (local(25, 8, 30), False)]


async def test_two_replicas_on_one_database_run_each_occurrence_once(
    bot: Bot, config: Config, clock: ManualClock
) -> None:
    other = await start_bot(config, clock)  # a second process on the same database
    try:
        replica = Bot(other, clock, config)
        first, second = engine_of(bot, MorningLog("a")), engine_of(replica, MorningLog("b"))
        for day in (24, 25, 26):
            clock.set(local(day, 8, 30))
            for _ in range(3):
                await asyncio.gather(first.beat(), second.beat(), first.beat(), second.beat())
                clock.advance(timedelta(minutes=11))  # past the interval: every beat runs a cycle
        texts = [text for _, text in await logs(bot)]
        assert texts == ["【舆情日志】11月24日", "【舆情日志】11月25日", "【舆情日志】11月26日"]
    finally:
        await other.close()


async def test_down_over_0830_the_missed_log_runs_once_on_start_flagged_late(
    bot: Bot, config: Config, clock: ManualClock
) -> None:
    before = engine_of(bot, MorningLog())
    clock.set(local(24, 8, 0))
    await before.beat()
    before.pause()  # the bot stops at 08:00 …
    clock.set(local(24, 9, 15))  # … and is started again at 09:15
    again = await start_bot(config, clock)
    try:
        restarted = Bot(again, clock, config)
        after = engine_of(restarted, MorningLog())
        await after.beat()  # the first beat at start
        await after.beat()
        clock.advance(timedelta(minutes=20))
        await after.beat()
        assert [text for _, text in await logs(restarted)] == ["【舆情日志】11月24日（补发）"]
        async with restarted.runtime.db.read() as session:
            [run] = await engine_runs.runs(session, MorningLog.name)
        assert (run.due_at, run.done_at, run.late) == (local(24, 8, 30), local(24, 9, 15), True)
        registry = restarted.runtime.metrics.registry
        assert registry.get_sample_value("dutybot_engine_late_occurrences_total", {"module": MorningLog.name}) == 1
    finally:
        await again.close()


async def test_a_failing_module_does_not_stop_the_others_and_is_logged_once_per_kind(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Broken()
    engine = engine_of(bot, broken, MorningLog())
    bot.clock.set(local(24, 8, 29, 50))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        for _ in range(20):
            await engine.beat()
            bot.clock.advance(timedelta(seconds=1))
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert Counter(getattr(r, "failure", None) for r in errors) == {"job:broken": 1}
        assert errors[0].exc_info is not None  # the traceback, the first time only
        assert broken.cycles == 20  # tried again on every beat (its interval), never given up
        assert [text for _, text in await logs(bot)] == ["【舆情日志】11月24日"]  # the other ran at its time
        broken.mended = True
        await engine.beat()
        assert any(r.getMessage().startswith("恢复正常：job:broken") for r in caplog.records)
    registry = bot.runtime.metrics.registry
    assert registry.get_sample_value("dutybot_engine_runs_total", {"module": "broken", "outcome": "error"}) == 20
    assert registry.get_sample_value("dutybot_engine_runs_total", {"module": "broken", "outcome": "ok"}) == 1


async def test_the_bot_runs_every_periodic_job_as_one_engines_modules(bot: Bot) -> None:
    jobs = build_scheduler(bot.runtime)
    assert [job.id for job in jobs.scheduler.get_jobs()] == ["engine"]  # one loop
    assert list(jobs.engine.slots) == ["deadlines", "outbox", "probe-held", "purge-pending", "roster-horizon",
                                       "handover", "roster-remind", "roster-gaps", "roll-call",
                                       # the records of issue #16: 舆情日志, 零报告 reminder, 定期通报
                                       "records-daily-log", "records-zero-reminder", "records-weekly-notice",
                                       "records-monthly-notice"]
    assert jobs.timer is jobs.engine.slots["deadlines"]
    await jobs.stop()


async def test_replicas_post_each_handover_and_daily_reminder_once(
    bot: Bot, config: Config, clock: ManualClock
) -> None:
    await load_roster(bot)
    other = await start_bot(config, clock)
    try:
        replica = Bot(other, clock, config)
        for moment in (local(23, 10, 0), local(23, 16, 0), local(23, 17, 30)):
            clock.set(moment)
            await asyncio.gather(run_roster_jobs(bot.runtime), run_roster_jobs(replica.runtime))
        async with bot.runtime.db.read() as session:
            handovers = await engine_runs.runs(session, "handover")
            reminders = await engine_runs.runs(session, "roster-remind")
        assert sorted((r.occurrence_key.split(":", 1)[0], r.late) for r in handovers) == [
            ("dingtalk_duty", False), ("dingtalk_duty", True), ("wecom_duty", False), ("wecom_duty", True)]
        assert [(r.due_at, r.late) for r in reminders] == [(local(23, 16, 0), False)]
    finally:
        await other.close()


async def test_housekeeping_forgets_occurrences_only_long_after_any_schedule_looks_back(bot: Bot) -> None:
    assert ENGINE_RUNS_KEEP > LOOKBACK  # else a forgotten occurrence could be found missed and run again
    now = bot.clock.now()
    async with bot.runtime.db.transaction() as session:
        for age in (ENGINE_RUNS_KEEP + timedelta(days=1), ENGINE_RUNS_KEEP - timedelta(days=1)):
            await engine_runs.claim(session, module="old", key=f"{age.days}", due_at=now - age, now=now - age,
                                    late=False)
    await run_cycles(bot.runtime.db, Housekeeping(), work_for(bot.runtime))
    async with bot.runtime.db.read() as session:
        assert [r.occurrence_key for r in await engine_runs.runs(session, "old")] == [
            f"{(ENGINE_RUNS_KEEP - timedelta(days=1)).days}"]


# -- schedules (pure) --------------------------------------------------------------------------------------------


def test_daily_times_and_the_next_one() -> None:
    schedule = daily([time(17, 0), time(8, 30)], SHANGHAI)
    assert schedule.occurrences(local(23, 8, 30), local(24, 8, 30)) == [
        local(23, 17, 0).astimezone(UTC), local(24, 8, 30).astimezone(UTC)]  # (start, end]
    assert schedule.next_after(local(23, 17, 0)) == local(24, 8, 30)
    assert daily([], SHANGHAI).next_after(local(23, 0)) is None


def test_weekly_and_monthly_schedules() -> None:
    monday = Weekly((time(9, 0),), SHANGHAI, weekday=0)
    assert monday.next_after(local(23, 9, 0)) == local(30, 9, 0)
    month_end = Monthly((time(16, 0),), SHANGHAI, day=31)
    assert month_end.next_after(local(23, 9, 0)) == local(30, 16, 0)  # November has 30 days
    feb = month_end.next_after(datetime(2027, 1, 31, 17, 0, tzinfo=SHANGHAI))
    assert feb == datetime(2027, 2, 28, 16, 0, tzinfo=SHANGHAI)
    utc_midnight = ZoneInfo("UTC")
    assert Monthly((time(0, 0),), utc_midnight, day=1).occurrences(
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)) == [
        datetime(2026, m, 1, tzinfo=UTC) for m in (2, 3, 4)]


async def test_after_a_long_outage_only_the_latest_missed_occurrence_is_due(bot: Bot) -> None:
    """By default an occurrence expires when the next comes: a week down is one 补发, not seven."""
    schedule = daily(LOG_TIME, SHANGHAI)
    async with bot.runtime.db.transaction() as session:
        due = await due_occurrences(session, "weekly-outage", schedule, local(30, 12, 0))
        assert [(d.at, d.late) for d in due] == [(local(30, 8, 30), True)]
        assert await due_occurrences(session, "weekly-outage", schedule, local(30, 8, 35)) == [
            type(due[0])(at=local(30, 8, 30).astimezone(UTC), key=due[0].key, late=False)]
