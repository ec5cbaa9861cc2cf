"""Roster jobs through a running bot with a manual clock: 交接班, tomorrow's reminder, the daily gap
report and 点名 with escalation; each posts once however many ticks run, and late ticks still post
what is due but nothing stale."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import select

from bot.clock import ManualClock
from bot.roster_jobs import run_roster_jobs
from domain.config import Config, RosterSection
from store.models import ItemEvent, OutboxMessage, RosterRollCall
from tests.conftest import SHANGHAI, Bot, start_bot
from tests.roster_support import load_roster


async def tick(bot: Bot) -> None:
    await run_roster_jobs(bot.runtime)
    await bot.runtime.outbox.run_once()


async def posted(bot: Bot, chat: str = "wecom_duty") -> list[dict[str, object]]:
    return [m for m in await bot.messages(chat) if m["from"] == "bot"]


async def keys(bot: Bot, prefix: str) -> list[str]:
    async with bot.runtime.db.read() as session:
        result = await session.execute(select(OutboxMessage.key).where(OutboxMessage.key.startswith(prefix)))
        return sorted(result.scalars())


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


async def test_handover_at_each_shift_change_once(bot: Bot) -> None:
    await load_roster(bot)
    await bot.say("liu_yang", "上报 城关镇人民路发生火灾，网传多人受伤")
    await bot.say("zhao_min", "1")
    await tick(bot)
    await tick(bot)
    assert await keys(bot, "handover:wecom_duty") == ["handover:wecom_duty:2026-11-23T00:30:00+00:00"]
    bot.clock.set(local(23, 17, 30))
    await tick(bot)
    await tick(bot)
    handovers = [m for m in await posted(bot) if str(m["text"]).startswith("【交接班】")]
    assert len(handovers) == 2
    night = handovers[-1]
    lines = str(night["text"]).splitlines()
    assert lines[:4] == ["【交接班】11月23日 夜班（17:30—次日08:30）开始", "带班领导：周涛 13800000005",
                         "值班员：孙丽 13800000006", "交班：赵敏（值班员）、周涛（带班领导）"]
    assert lines[4] == "待办事项 1 项（最紧急在前）："
    assert lines[5].startswith("#1【重大】已定级｜签收截止 11月23日 10:30（已超时7小时")
    assert night["mentions"] == ["sun_li", "zhou_tao"]
    assert len(await keys(bot, "handover:dingtalk_duty")) == 2  # each duty chat has its own


async def test_late_tick_posts_the_running_shift_but_not_a_finished_one(bot: Bot) -> None:
    await load_roster(bot)
    bot.clock.set(local(24, 9, 0))  # down from Monday 10:00 to Tuesday 09:00
    await tick(bot)
    texts = [str(m["text"]).splitlines()[0] for m in await posted(bot) if str(m["text"]).startswith("【交接班】")]
    assert texts == ["【交接班】11月24日 白班（08:30—17:30）已开始（补发）"]


async def test_a_handover_found_late_is_marked_and_names_who_is_on_duty_now(bot: Bot) -> None:
    """The first start at 10:00, 90 minutes into the day shift: posted once as 补发, with the people
    on duty at 10:00 (孙丽 has taken over), and no 交班 line; a start within the grace posts it as usual."""
    await load_roster(bot)
    await bot.say("sun_li", "代班 今天白班")
    await tick(bot)
    await tick(bot)
    [handover] = [m for m in await posted(bot) if str(m["text"]).startswith("【交接班】")]
    assert str(handover["text"]).splitlines()[:3] == ["【交接班】11月23日 白班（08:30—17:30）已开始（补发）",
                                                       "带班领导：周涛 13800000005", "值班员：孙丽 13800000006"]
    assert not any(line.startswith("交班：") for line in str(handover["text"]).splitlines())
    assert handover["mentions"] == ["sun_li", "zhou_tao"]
    bot.clock.set(local(23, 17, 39))  # nine minutes into the night shift: an ordinary handover
    await tick(bot)
    night = [m for m in await posted(bot) if str(m["text"]).startswith("【交接班】")][-1]
    assert str(night["text"]).splitlines()[0] == "【交接班】11月23日 夜班（17:30—次日08:30）开始"


async def test_tomorrows_people_are_reminded_once_after_the_reminder_time(bot: Bot) -> None:
    await load_roster(bot)
    bot.clock.set(local(23, 15, 59))
    await tick(bot)
    assert await keys(bot, "roster-remind:") == []
    bot.clock.set(local(23, 16, 0))
    await tick(bot)
    await tick(bot)
    assert await keys(bot, "roster-remind:") == [
        "roster-remind:sun_li:2026-11-24", "roster-remind:zhao_min:2026-11-24", "roster-remind:zhou_tao:2026-11-24"]
    reminder = next(m for m in await posted(bot) if m["mentions"] == ["sun_li"] and "值班提醒" in str(m["text"]))
    assert str(reminder["text"]).splitlines() == ["【值班提醒】孙丽：您明天（11月24日 周二）值班：",
                                                  "白班 08:30—17:30 值班员",
                                                  "如需调整，请发送“换班 @对方 日期班次”或“请假 日期”。", "@孙丽"]


async def test_gaps_of_the_next_days_go_to_the_admins_once_a_day(bot: Bot) -> None:
    await load_roster(bot)
    await bot.say("zhao_min", "请假 11-27")
    await bot.say("sun_li", "请假 11-27")
    before = len(await posted(bot, "ops"))  # the change itself already warned the admins
    bot.clock.set(local(24, 9, 0))
    await tick(bot)
    await tick(bot)
    reports = [m for m in await posted(bot, "ops")][before:]
    assert len(reports) == 1
    text = str(reports[0]["text"])
    assert text.startswith("【排班缺口】未来7天（11月24日 09:00起）检查结果：")
    assert "  ✗ 11月26日 17:30—11月28日 08:30 值班员：无人值班" in text
    assert reports[0]["mentions"] == ["xu_ming"]
    assert await keys(bot, "gaps:") == ["gaps:2026-11-24:ops"]


async def test_no_gap_report_without_gaps(bot: Bot) -> None:
    await load_roster(bot)
    bot.clock.set(local(24, 9, 30))
    await tick(bot)
    assert await keys(bot, "gaps:") == []


def with_roll_call(config: Config) -> Config:
    return config.model_copy(update={"roster": RosterSection(roll_call_times=[time(10, 5)], roll_call_minutes=10)})


async def test_roll_call_answered_in_time(config: Config, clock: ManualClock) -> None:
    client = await start_bot(with_roll_call(config), clock)
    bot = Bot(client, clock, with_roll_call(config))
    try:
        await load_roster(bot)
        clock.set(local(23, 10, 6))
        await tick(bot)
        await tick(bot)
        calls = [m for m in await posted(bot) if str(m["text"]).startswith("【点名】")]
        assert [c["text"] for c in calls] == ["【点名】请值班员赵敏于10:15前回复“在”。\n@赵敏"]
        assert calls[0]["mentions"] == ["zhao_min"]
        clock.set(local(23, 10, 9))
        reply = await bot.say("zhao_min", "在")
        assert reply["text"] == "已确认赵敏在岗（11月23日 10:09）。"
        clock.set(local(23, 10, 20))
        await tick(bot)
        # 赵敏 answered in the WeCom group; the DingTalk group's roll call went unanswered.
        assert await keys(bot, "rollcall-escalate:") == ["rollcall-escalate:dingtalk_duty:2026-11-23T02:05:00+00:00"]
        async with bot.runtime.db.read() as session:
            rows = (await session.execute(select(RosterRollCall).order_by(RosterRollCall.chat_id))).scalars().all()
        assert [(r.chat_id, r.answered_by) for r in rows] == [("dingtalk_duty", None), ("wecom_duty", "zhao_min")]
    finally:
        await client.close()


async def test_unanswered_roll_call_goes_to_the_leader_on_duty(config: Config, clock: ManualClock) -> None:
    client = await start_bot(with_roll_call(config), clock)
    bot = Bot(client, clock, with_roll_call(config))
    try:
        await load_roster(bot)
        clock.set(local(23, 10, 5))
        await tick(bot)
        clock.set(local(23, 10, 16))
        await tick(bot)
        await tick(bot)
        escalations = [m for m in await posted(bot) if str(m["text"]).startswith("【点名未应答】")]
        assert [m["mentions"] for m in escalations] == [["zhou_tao"]]
        text = str(escalations[0]["text"])
        assert text == "【点名未应答】值班员赵敏未于10:15前回复“在”（10:05点名），请带班领导周涛核实值班情况。\n@周涛"
        late = await bot.say("zhao_min", "在")
        assert late["text"] == "已记录赵敏的应答（11月23日 10:16，已超过应答时限）。"
        async with bot.runtime.db.read() as session:
            audited = (await session.execute(
                select(ItemEvent).where(ItemEvent.action == "roll_call_unanswered"))).scalars().all()
        assert len(audited) == 2  # both duty chats
        clock.set(local(23, 12, 0))  # a roll call whose answer time has passed is not called late
        await tick(bot)
        assert len([m for m in await posted(bot) if str(m["text"]).startswith("【点名】")]) == 1
    finally:
        await client.close()


async def test_the_horizon_is_extended_as_days_pass(bot: Bot) -> None:
    await load_roster(bot)
    from store import roster as store

    async with bot.runtime.db.read() as session:
        before = await store.last_day(session, "wecom_duty")
    bot.clock.advance(timedelta(days=3))
    await tick(bot)
    async with bot.runtime.db.read() as session:
        after = await store.last_day(session, "wecom_duty")
    assert before is not None and after == before + timedelta(days=3)


async def test_someone_put_on_tomorrows_roster_after_the_reminder_time_is_still_reminded(bot: Bot) -> None:
    """The first reminder run of the day is the engine's occurrence (once, across replicas); later
    cycles that day look again, so a roster imported at 16:20 still reminds its new people — and
    nobody twice (the outbox key is per person and day)."""
    await load_roster(bot)
    bot.clock.set(local(23, 16, 0))
    await tick(bot)
    first = await keys(bot, "roster-remind:")
    assert first == ["roster-remind:sun_li:2026-11-24", "roster-remind:zhao_min:2026-11-24",
                     "roster-remind:zhou_tao:2026-11-24"]
    bot.clock.set(local(23, 16, 20))
    await load_roster(bot, extra="排班,wecom_duty,夜班,,,,,,值班员,杨帆,,2026-11-24,,\n")
    await tick(bot)
    await tick(bot)
    assert await keys(bot, "roster-remind:") == sorted([*first, "roster-remind:yang_fan:2026-11-24"])
    bot.clock.set(local(24, 0, 5))  # the next day before its time: nothing for the day after
    await tick(bot)
    assert await keys(bot, "roster-remind:") == sorted([*first, "roster-remind:yang_fan:2026-11-24"])
