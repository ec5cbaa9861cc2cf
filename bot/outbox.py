"""The outbox worker: claim due messages, post them through the chat's platform, record them.

Claims carry a lease; a worker that dies mid-delivery leaves rows that the next worker takes
over when the lease runs out. Every delivered message is also written to the chat log, which is
what the simulator shows and what the records keep.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from datetime import timedelta

from bot.channels.base import DeliveryResult, Sender
from bot.clock import Clock
from bot.directory import Directory
from bot.dispatch import render_mentions
from bot.messages import OutboundMessage
from bot.vocab import Platform
from store import chatlog, outbox
from store.db import Database
from store.models import OutboxMessage

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=10)


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter: 5 s, 10 s, 20 s … capped at 10 minutes."""
    ceiling = min(MAX_BACKOFF.total_seconds(), 5 * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


class OutboxWorker:
    def __init__(
        self, *, db: Database, clock: Clock, directory: Directory, senders: Mapping[Platform, Sender],
        worker_id: str, lease: timedelta = timedelta(minutes=2), batch: int = 50,
    ) -> None:
        self.db = db
        self.clock = clock
        self.directory = directory
        self.senders = dict(senders)
        self.worker_id = worker_id
        self.lease = lease
        self.batch = batch
        self._rng = random.Random()

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many rows were claimed."""
        async with self.db.transaction() as session:
            rows = await outbox.claim(session, worker=self.worker_id, now=self.clock.now(),
                                      lease=self.lease, limit=self.batch)
        for row in rows:
            await self._deliver(row)
        return len(rows)

    async def _deliver(self, row: OutboxMessage) -> None:
        chat = self.directory.chats.get(row.chat_id)
        if chat is None:
            await self._settle(row, DeliveryResult(ok=False, detail=f"chat {row.chat_id!r} is no longer configured"))
            return
        sender = self.senders.get(chat.platform)
        result = DeliveryResult(ok=True, detail="recorded (no channel for this platform)")
        if sender is not None:
            message = OutboundMessage(chat_id=chat.id, text=row.text, mentions=tuple(row.mentions), key=row.key)
            try:
                result = await sender.send(chat, message)
            except Exception as exc:  # a channel bug must not stop the worker; retry it later
                log.exception("sending outbox row %s (key %s) failed", row.id, row.key)
                result = DeliveryResult(ok=False, retryable=True, detail=type(exc).__name__)
        await self._settle(row, result)

    async def _settle(self, row: OutboxMessage, result: DeliveryResult) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            if result.ok:
                if await outbox.finish(session, row.id, worker=self.worker_id, status=outbox.SENT, now=now):
                    await chatlog.append(
                        session, chat_id=row.chat_id, at=now, sender="bot",
                        text=render_mentions(row.text, row.mentions, self.directory),
                        mentions=row.mentions, kind="notice",
                    )
                return
            retry_at = now + backoff(row.attempts, self._rng) if result.retryable else None
            status = outbox.PENDING if result.retryable else outbox.FAILED
            await outbox.finish(session, row.id, worker=self.worker_id, status=status, now=now,
                                error=result.detail, retry_at=retry_at)
            log.warning("outbox row %s (key %s) not delivered: %s", row.id, row.key, result.detail)
