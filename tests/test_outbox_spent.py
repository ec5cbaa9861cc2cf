"""A robot whose rate budget is spent: the rows a claim takes for it are put back in the claim's own
transaction, due when its next slot frees (bot/outbox.py `_defer_spent`). Under a flood of intake
announcements every request kicks a claim, and handing each new row to a lane only to put it back
took three transactions of SQLite's one writer. Another robot's rows go out as before; rows that go
to a reply URL are never deferred; the first run after the slot frees posts them (folded into a
digest when the backlog outgrew it). The operators' log says so once per chat per five minutes,
not once per digest."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.logs import FailureLog
from bot.metrics import Metrics
from bot.outbox_digest import FOLD_LOG_SECONDS, digest_log, folded
from bot.runtime import RUNTIME, Runtime
from domain.config import Config, load_config
from store import outbox
from store.models import OutboxMessage
from tests.conftest import EXAMPLE_CONFIG, START, start_bot
from tests.replica_support import LIMIT, ChaosRobot, Seed, reliability_config, seed_reminders


async def _rows(runtime: Runtime, chat_id: str) -> list[OutboxMessage]:
    async with runtime.db.read() as session:
        found = await session.execute(select(OutboxMessage).where(OutboxMessage.chat_id == chat_id))
        return list(found.scalars())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_spent_robot_is_not_claimed_until_its_slot_frees(config: Config, clock: ManualClock) -> None:
    config = reliability_config(config, platform="wecom", robots=2)
    async with ChaosRobot(clock.now, seed=1) as robot:
        client = await start_bot(config, clock, robot.environ(config))
        try:
            runtime: Runtime = client.app[RUNTIME]  # type: ignore[index]
            reporters = ["liu_yang", "wang_jun", "li_hua", "chen_gang", "zhou_tao", "wu_fang"] * 5
            await seed_reminders(runtime.db, [Seed("rel00", START, reporter) for reporter in reporters])
            await runtime.deadlines.run_once()
            assert await runtime.outbox.run_once() == len(reporters)  # 20 go out, 10 wait for the budget
            assert len(robot.accepted) == LIMIT
            waiting = [row for row in await _rows(runtime, "rel00") if row.status == outbox.PENDING]
            free_at = min(row.due_at for row in waiting)
            assert free_at > clock.now()

            # Kicks before the slot frees: rel00's new notice is put back, due when the slot frees …
            async with runtime.db.transaction() as session:
                await outbox.enqueue(session, key="late:rel00", chat_id="rel00", text="新通知：请核实。", mentions=[],
                                     now=clock.now())
                await outbox.enqueue(session, key="late:rel01", chat_id="rel01", text="新通知：请核实。", mentions=[],
                                     now=clock.now())
            # … while rel01's robot, whose budget is untouched, gets its notice at once.
            waits = runtime.metrics.registry.get_sample_value("dutybot_rate_limit_waits_total")
            assert await runtime.outbox.run_once() == 1
            assert runtime.metrics.registry.get_sample_value("dutybot_rate_limit_waits_total") == waits + 1
            assert await runtime.outbox.run_once() == 0
            late = {row.key: row for row in [*await _rows(runtime, "rel00"), *await _rows(runtime, "rel01")]
                    if row.key.startswith("late:")}
            assert late["late:rel01"].status == outbox.SENT
            assert late["late:rel00"].status == outbox.PENDING and late["late:rel00"].claimed_by is None
            assert late["late:rel00"].due_at == free_at and late["late:rel00"].attempts == 0
            assert len(robot.accepted) == LIMIT + 1

            # The slot frees: the next run claims the robot's rows again and posts them.
            clock.set(free_at)
            while await runtime.outbox.run_once():
                pass
            statuses = {row.key: row.status for row in await _rows(runtime, "rel00")}
            assert set(statuses.values()) <= {outbox.SENT, outbox.MERGED}, statuses
            assert statuses["late:rel00"] in (outbox.SENT, outbox.MERGED)
            assert len(robot.accepted) > LIMIT + 1
        finally:
            await client.close()


def test_digests_are_logged_once_per_chat_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    chat = load_config(EXAMPLE_CONFIG).chats[0]
    metrics = Metrics()
    said = digest_log()
    caplog.set_level(logging.INFO, logger="bot.outbox_digest")
    for _ in range(5):
        folded(metrics, said, chat, 6)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 5  # each digest still has its line
    assert [r.getMessage() for r in warnings] == [
        f"群 {chat.id} 的消息超出机器人发送频率限制，等待中的消息合并为汇总发送（本条汇总 6 条）"]
    assert metrics.registry.get_sample_value("dutybot_digests_total") == 5
    assert FOLD_LOG_SECONDS == 300.0


def test_a_warning_log_counts_repeats_in_its_own_words(caplog: pytest.LogCaptureFixture) -> None:
    said = FailureLog(logging.getLogger("test.spent"), 60.0, level=logging.WARNING, repeated="（又 {repeats} 次）")
    caplog.set_level(logging.INFO, logger="test.spent")
    said.failure("k", "合并", now=0.0)
    said.failure("k", "合并", now=10.0)
    said.failure("k", "合并", now=70.0)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "合并"), (logging.WARNING, "合并（又 1 次）")]
