"""Outbox claiming and the shared rate limit, against the real databases and real processes."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from bot.channels.base import DeliveryResult
from bot.clock import ManualClock
from bot.outbox import OutboxWorker
from bot.runtime import Runtime
from domain.config import ChatConfig, Config
from domain.directory import Directory
from domain.messages import InboundMessage, OutboundMessage
from domain.vocab import Platform
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


class _SlowSplitSender:
    """A sender whose messages take three posts; it notes the claim's lease while it posts."""

    channel_id = "wecom"

    def __init__(self, db: Database) -> None:
        self.db = db
        self.leases: list[timedelta] = []

    def posts_needed(self, chat: ChatConfig, message: OutboundMessage) -> int:
        return 3

    async def send(self, chat: ChatConfig, message: OutboundMessage) -> DeliveryResult:
        async with self.db.read() as session:
            lease_until = (await session.execute(select(OutboxMessage.lease_until))).scalar_one()
        self.leases.append((lease_until if lease_until.tzinfo else lease_until.replace(tzinfo=UTC)) - START)
        return DeliveryResult(ok=True, detail="ok")


async def test_a_claim_covers_every_post_of_a_split_message(config: Config) -> None:
    db = Database(config.database.url)
    await db.upgrade()
    sender = _SlowSplitSender(db)
    worker = OutboxWorker(
        db=db, clock=ManualClock(START), directory=Directory(config), senders={"wecom_duty": sender}, worker_id="w",
        lease=timedelta(seconds=30), post_timeout=timedelta(seconds=20),
    )
    async with db.transaction() as session:
        await outbox.enqueue(session, key="long", chat_id="wecom_duty", text="长消息", mentions=[], now=START)
    assert await worker.run_once() == 1
    # Three posts of up to 20 s each, plus one timeout's margin for recording: 80 s, not the 30 s lease.
    assert sender.leases == [timedelta(seconds=80)]
    async with db.read() as session:
        assert (await session.execute(select(OutboxMessage.status))).scalar_one() == outbox.SENT
    await db.dispose()


# -- replies: claimed by the message's own transaction ------------------------------------------------------------


class _Recorder:
    """A platform that accepts every post and keeps it."""

    channel_id = "dingtalk"

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def send(self, chat: ChatConfig, message: OutboundMessage) -> DeliveryResult:
        self.sent.append(message)
        return DeliveryResult(ok=True, detail="ok")


def _report(clock: ManualClock, message_id: str) -> InboundMessage:
    now = clock.now()
    return InboundMessage(
        platform=Platform.DINGTALK, chat_id="dingtalk_duty", sender_id="sun_li",
        text=f"上报 网友反映滨河路停水 https://weibo.com/{message_id}", received_at=now, mentions_bot=True,
        channel="dingtalk", message_id=message_id,
        reply_url="https://oapi.dingtalk.com/robot/sendBySession?session=s",
        reply_url_expires_at=now + timedelta(hours=1),
    )


async def _reply_row(db: Database, message_id: str) -> OutboxMessage:
    async with db.read() as session:
        row = (await session.execute(
            select(OutboxMessage).where(OutboxMessage.key == f"reply:dingtalk:{message_id}:0")
        )).scalar_one()
    return row


async def test_a_reply_is_posted_at_once_without_a_claim_transaction(
    config: Config, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime.build(config, clock)
    await runtime.db.upgrade()
    recorder = _Recorder()
    runtime.outbox.add_senders({"dingtalk_duty": recorder})
    claims: list[str] = []
    original = outbox.claim

    async def spy(*args: object, **kwargs: object) -> list[OutboxMessage]:
        claims.append("claim")
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "claim", spy)
    try:
        await runtime.handler.handle(_report(clock, "m1"))
        await runtime.outbox.drain()
    finally:
        await runtime.db.dispose()
    assert len(recorder.sent) == 1 and "已受理舆情线索 #1" in recorder.sent[0].text
    assert recorder.sent[0].reply_url is not None  # answered on the platform's reply URL
    assert claims == []  # the message's transaction was the claim; no kick, no claim transaction


async def test_a_reply_claimed_by_a_process_that_died_is_taken_over_when_its_lease_runs_out(
    config: Config, clock: ManualClock
) -> None:
    runtime = Runtime.build(config, clock)
    await runtime.db.upgrade()
    recorder = _Recorder()
    runtime.outbox.add_senders({"dingtalk_duty": recorder})
    try:
        handed: list[int] = []
        # The process dies right after the message's commit, before the post: nothing is handed over.
        runtime.handler.delivery = _Dead(runtime.outbox, handed)
        await runtime.handler.handle(_report(clock, "m2"))
        assert handed == [1] and recorder.sent == []
        row = await _reply_row(runtime.db, "m2")
        assert row.status == outbox.CLAIMED and row.claimed_by and row.lease_until is not None
        # Until the short reply lease runs out nobody else may post it …
        assert await runtime.outbox.run_once() == 0 and recorder.sent == []
        # … then any worker takes it over: the reply is late, never lost.
        clock.advance(row.lease_until - clock.now() + timedelta(seconds=1))
        assert row.lease_until - START <= timedelta(seconds=config.delivery.timeout_seconds * 3)
        assert await runtime.outbox.run_once() == 1
        assert len(recorder.sent) == 1 and "已受理舆情线索 #1" in recorder.sent[0].text
        row = await _reply_row(runtime.db, "m2")
        assert row.status == outbox.SENT and row.attempts == 2
    finally:
        await runtime.db.dispose()


class _Dead:
    """A reply delivery whose process dies before posting: it takes claims but posts nothing."""

    def __init__(self, worker: OutboxWorker, handed: list[int]) -> None:
        self.worker = worker
        self.handed = handed

    def reply_claim(self, now: datetime) -> tuple[str, datetime]:
        return self.worker.reply_claim(now)

    def deliver(self, claim: str, rows: Sequence[OutboxMessage], *, kick: bool) -> None:
        self.handed.append(len(rows))
