"""Outbox claiming and the shared rate limit, against the real databases and real processes."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta

from sqlalchemy import insert, select

from store import outbox, ratelimit
from store.db import Database
from store.models import OutboxMessage, RateEvent
from tests.conftest import ROOT, START

ROWS = 10_000


async def _fill(db: Database, count: int) -> None:
    now = START
    values = [
        {"key": f"race:{i}", "chat_id": "coordinators", "text": f"消息{i}", "mentions": [], "created_at": now,
         "due_at": now, "status": outbox.PENDING, "attempts": 0, "late": False}
        for i in range(count)
    ]
    async with db.transaction() as session:
        for start in range(0, count, 1000):
            await session.execute(insert(OutboxMessage), values[start : start + 1000])


async def test_four_processes_claim_every_row_exactly_once(db_url: str) -> None:
    db = Database(db_url)
    await db.upgrade()
    await _fill(db, ROWS)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.claim_worker", db_url, f"w{n}", (START + timedelta(minutes=1)).isoformat(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
        )
        for n in range(4)
    ]
    outputs = await asyncio.gather(*(p.communicate() for p in procs))
    claimed: list[int] = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        claimed += [int(x) for x in out.split()]
    assert len(claimed) == ROWS and len(set(claimed)) == ROWS  # every row, none twice
    async with db.read() as session:
        owners = {row[0]: row[1] for row in await session.execute(select(OutboxMessage.id, OutboxMessage.claimed_by))}
    assert all(owner is not None for owner in owners.values())
    await db.dispose()


async def test_rate_limit_never_exceeds_20_in_any_60_seconds(db_url: str) -> None:
    db = Database(db_url)
    await db.upgrade()
    now = START
    sent: list = []
    for _ in range(200):  # 200 notices to one robot, offered every 2 seconds
        async with db.transaction() as session:
            free_at = await ratelimit.reserve(session, "wecom:DUTYBOT_WECOM_WEBHOOK", now)
        if free_at is None:
            sent.append(now)
        now += timedelta(seconds=2)
    assert len(sent) >= 20
    for first in sent:
        window = [t for t in sent if first <= t < first + timedelta(seconds=60)]
        assert len(window) <= 20
    async with db.read() as session:
        assert len(list((await session.execute(select(RateEvent))).scalars())) == len(sent)
    await db.dispose()


async def test_concurrent_reservations_share_one_budget(db_url: str) -> None:
    db = Database(db_url)
    await db.upgrade()

    async def take() -> bool:
        async with db.transaction() as session:
            return await ratelimit.reserve(session, "dingtalk:X", START) is None

    results = await asyncio.gather(*(take() for _ in range(50)))
    assert results.count(True) == 20
    await db.dispose()
