"""Issue #13 (1, 2, 10): PostgreSQL stopped and then unreachable in the middle of platform callbacks.

The bot reaches its PostgreSQL server through a TCP link the test can break (tests/fakes/db_link):
first the server "stops" (connections reset, new ones refused) and comes back, then it becomes
"unreachable" (a black hole: connections accepted and never answered, the worst case for
timeouts) and comes back; the spool is replayed after each return. WeCom callbacks arrive four
at a time throughout. Every callback must be answered within WeCom's 5 seconds, either 2xx — and
then the message becomes an item, once, in the order received — or 5xx; never 2xx and no item.
The waits are for answers, never for a deadline; the answer times are wall time, since the
platform's limit is wall time.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.clock import ManualClock
from bot.scheduler import build_scheduler
from domain.config import Config, SpoolSection, load_config
from store.models import Item
from tests.conftest import EXAMPLE_CONFIG, _truncate
from tests.fakes.db_link import DatabaseLink
from tests.fakes.wecom import WecomBot, running

# After each "back" the spool is replayed, so that the next fault meets an empty spool (with
# messages still kept, a newer one queues behind them without trying the database at all).
PHASES = ("up", "stopped", "back", "unreachable", "again")
PER_PHASE = 12
AT_ONCE = 4
WECOM_LIMIT = 5.0  # seconds: WeCom retries a callback not answered by then


@pytest.fixture
async def link(pg_database: str) -> AsyncIterator[DatabaseLink]:
    await _truncate(pg_database)
    url = make_url(pg_database)
    proxy = DatabaseLink(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


def linked_config(pg_database: str, link: DatabaseLink, tmp_path: Path) -> Config:
    url = make_url(pg_database).set(port=link.port).render_as_string(hide_password=False)
    config = load_config(EXAMPLE_CONFIG).with_database(url)
    spool = SpoolSection(directory=str(tmp_path / "spool"), write_budget_seconds=1.0)
    return config.model_copy(update={"spool": spool})


async def send(w: WecomBot, phase: str, n: int) -> tuple[str, int, float]:
    summary = f"{phase}阶段第{n:02d}条：城关镇人民路商铺门前积水"
    started = time.monotonic()
    status, _, _ = await w.say("LiuYang", f"上报 {summary}", msgid=f"{phase}-{n:02d}")
    return summary, status, time.monotonic() - started


async def summaries(w: WecomBot) -> list[str]:
    async with w.bot.runtime.db.read() as session:
        return [i.summary for i in (await session.execute(select(Item).order_by(Item.number))).scalars()]


async def test_callbacks_through_a_stopped_then_unreachable_postgresql_are_kept_or_refused(
    pg_database: str, link: DatabaseLink, clock: ManualClock, tmp_path: Path,
) -> None:
    async with running(linked_config(pg_database, link, tmp_path), clock) as w:
        answers: list[tuple[str, int, float]] = []
        replayed = 0
        health: dict[str, object] = {}
        for phase in PHASES:
            if phase == "stopped":
                link.refuse()
            elif phase == "unreachable":
                link.black_hole()
            elif phase in ("back", "again"):
                link.restore()
            for start in range(0, PER_PHASE, AT_ONCE):
                # Four at a time, in order between the groups (the order the items must keep).
                answers += await asyncio.gather(*(send(w, phase, n) for n in range(start, start + AT_ONCE)))
            if phase == "unreachable":
                w.bot.runtime._probed = None  # the probe's answer is cached for 5 s
                response = await w.bot.client.get("/healthz")
                health = {"status": response.status, **(await response.json())}
            if phase in ("back", "again"):
                w.bot.runtime._probed = None
                replayed += await w.bot.runtime.keeper.replay_once(w.bot.runtime.handler)
        assert health["status"] == 503 and "database_writable" in health["failed"]  # type: ignore[operator]

        await w.deliver()
        kept = await summaries(w)

        statuses = [status for _, status, _ in answers]
        assert set(statuses) <= {200, 503}
        for summary, status, _ in answers:
            assert (status == 200) == (summary in kept), (summary, status)
        assert len(kept) == len(set(kept))  # once each
        assert statuses.count(200) == len(answers)  # the spool took every one: no retry was needed
        # In the order received, group by group (within a group of four the order is the race's).
        groups = [{s for s, _, _ in answers[i:i + AT_ONCE]} for i in range(0, len(answers), AT_ONCE)]
        position = {summary: n for n, summary in enumerate(kept)}
        for earlier, later in itertools.pairwise(groups):
            assert max(position[s] for s in earlier) < min(position[s] for s in later)
        slowest = max(seconds for _, _, seconds in answers)
        assert slowest < WECOM_LIMIT, slowest
        faulty = sum(1 for s, _, _ in answers if s.startswith(("stopped", "unreachable")))
        assert replayed >= faulty  # (messages after a fault may queue behind the kept ones)
        assert w.bot.runtime.keeper.state()[0] == 0
        print(f"\noutage (PostgreSQL stopped, back, unreachable, back): {len(answers)} callbacks, "
              f"{statuses.count(200)} answered 200 and all became items once and in order, "
              f"{statuses.count(503)} answered 503; {replayed} replayed from the spool; slowest answer "
              f"{slowest:.2f} s (WeCom's limit {WECOM_LIMIT:g} s)")


async def test_an_outage_logs_one_line_per_failure_kind_not_a_traceback_per_tick_issue13_p6(
    pg_database: str, link: DatabaseLink, clock: ManualClock, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Thirty ticks of every scheduled job while PostgreSQL refuses connections: each kind of
    failure is one error line (with its traceback the first time only); the return is a line too."""
    async with running(linked_config(pg_database, link, tmp_path), clock) as w:
        jobs = build_scheduler(w.bot.runtime)
        ticks = [job.func for job in jobs.scheduler.get_jobs()]
        link.refuse()
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            for _ in range(30):
                for tick in ticks:
                    await tick()
                await w.bot.runtime.outbox.drain()
                clock.advance(timedelta(seconds=1))
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            kinds = Counter(getattr(r, "failure", r.getMessage()) for r in errors)
            assert errors and all(n == 1 for n in kinds.values()), kinds
            assert sum(1 for r in errors if r.exc_info) <= len(kinds)
            link.restore()
            for tick in ticks:
                await tick()
            assert any(r.getMessage().startswith("恢复正常：job:") for r in caplog.records)
        await jobs.stop()


def test_a_connection_left_invalid_by_a_cut_off_statement_counts_as_unavailable() -> None:
    """A write budget's timeout cancels a statement mid-flight; leaving the transaction then raises
    PendingRollbackError instead of the timeout. That is "the database could not take the write"
    (spool it or answer 503), never a 500 (seen once on PostgreSQL in the DingTalk replay guard)."""
    from sqlalchemy.exc import PendingRollbackError

    from store.db import database_unavailable

    assert database_unavailable(PendingRollbackError("Can't reconnect until invalid transaction is rolled back."))
    assert not database_unavailable(ValueError("a bug stays a bug"))
