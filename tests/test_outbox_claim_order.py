"""What one claim takes, row by row, and that it reads the outbox by its index on PostgreSQL.

The claim is two index-ordered branches (due rows, claims whose lease ran out) cut at the limit
and merged (store/outbox._build_claim). These tests pin what it must take: the oldest rows of both
kinds, due time then id, no more than the limit, never a row that is not due, still leased, or
settled; busy robots' new rows left alone, their lapsed claims taken over all the same."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql

from store import outbox
from store.db import Database
from store.models import OutboxMessage
from tests.conftest import START, _truncate

LEASE = timedelta(minutes=1)
NOW = START + timedelta(hours=1)


def _row(key: str, *, chat: str = "a", due: int = 0, status: str = outbox.PENDING,
         lease: int | None = None) -> dict[str, Any]:
    """A row due `due` minutes from NOW (negative: in the past); `lease`: minutes from NOW."""
    return {"key": key, "chat_id": chat, "text": key, "mentions": [], "created_at": START,
            "due_at": NOW + timedelta(minutes=due), "status": status, "attempts": 0, "late": False,
            "claimed_by": "gone" if status == outbox.CLAIMED else None,
            "lease_until": NOW + timedelta(minutes=lease) if lease is not None else None}


async def _fill(db: Database, rows: list[dict[str, Any]]) -> None:
    await db.upgrade()
    async with db.transaction() as session:
        await session.execute(insert(OutboxMessage), rows)


async def _claim(db: Database, limit: int, **options: Any) -> list[str]:
    async with db.transaction() as session:
        rows = await outbox.claim(session, worker="w#1", now=NOW, lease=LEASE, limit=limit, **options)
        return [row.key for row in rows]


ROWS = [
    _row("due-3", due=-3), _row("due-5", due=-5), _row("due-5-late-id", due=-5),
    _row("future", due=5), _row("due-now", due=0),
    _row("lapsed-4", due=-4, status=outbox.CLAIMED, lease=-1),
    _row("leased", due=-10, status=outbox.CLAIMED, lease=1),
    _row("sent", due=-10, status=outbox.SENT),
    _row("busy-due", chat="b", due=-6), _row("busy-lapsed", chat="b", due=-7, status=outbox.CLAIMED, lease=-2),
]


async def test_a_claim_takes_the_oldest_due_and_lapsed_rows_up_to_its_limit(db_url: str) -> None:
    db = Database(db_url)
    try:
        # Among rows due at the same time, the first inserted (the smaller id) goes first.
        await _fill(db, ROWS)
        assert await _claim(db, 4) == ["busy-lapsed", "busy-due", "due-5", "due-5-late-id"]
        assert await _claim(db, 10) == ["lapsed-4", "due-3", "due-now"]  # the rest that is due
        assert await _claim(db, 10) == []  # the future row, the live lease and the sent row stay
    finally:
        await db.dispose()


async def test_busy_robots_new_rows_wait_but_their_lapsed_claims_are_taken_over(db_url: str) -> None:
    db = Database(db_url)
    try:
        await _fill(db, ROWS)
        assert await _claim(db, 10, busy_chats=["b"]) == ["busy-lapsed", "due-5", "due-5-late-id", "lapsed-4",
                                                          "due-3", "due-now"]
        assert await _claim(db, 10, chat_ids=["b"]) == ["busy-due"]
    finally:
        await db.dispose()


@pytest.fixture
async def pg_url(pg_database: str) -> str:
    await _truncate(pg_database)
    return pg_database


async def test_a_claim_reads_a_big_backlog_by_its_index_on_postgresql(pg_url: str) -> None:
    """Under a flood thousands of rows wait for a robot's budget; a claim must not read them all
    (it did: a sequential scan and a sort of every due row, 9 ms a claim at 14,000 rows)."""
    db = Database(pg_url)
    try:
        await _fill(db, [_row(f"flood-{i}", due=-(i % 50)) for i in range(20_000)])
        async with db.engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(text("ANALYZE outbox"))
            compiled = outbox._build_claim(postgresql).compile(dialect=conn.dialect)
            values = {**compiled.params, "p_now": NOW, "p_limit": 50, "p_worker": "w#1", "p_lease_until": NOW + LEASE}
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            plan = "\n".join(row[0] for row in await raw.fetch(
                f"EXPLAIN {compiled.string}", *(values[name] for name in compiled.positiontup or ())))
        assert "Seq Scan on outbox" not in plan and "ix_outbox_status_due" in plan, plan
        assert await _claim(db, 50) == [f"flood-{i}" for i in range(20_000) if i % 50 == 49][:50]
    finally:
        await db.dispose()
