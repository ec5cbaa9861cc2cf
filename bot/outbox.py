"""The outbox worker: claim due messages, post them through the chat's platform, record them.

Claims carry a lease; a worker that dies mid-delivery leaves rows that the next worker takes
over when the lease runs out. Every delivered message is also written to the chat log, which is
what the simulator shows and what the records keep.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.channels.base import DeliveryResult, Sender
from bot.clock import Clock
from bot.directory import Directory
from bot.dispatch import render_mentions
from bot.messages import OutboundMessage
from bot.vocab import Role
from store import channel_status, chatlog, outbox
from store.db import Database
from store.models import OutboxMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=10)
CONFIG_ALERT = (
    "【系统告警】通道 {channel} 向“{chat}”发送消息失败，原因是配置错误：{detail}。\n"
    "该消息不再重试。请管理员检查该群机器人的 webhook 地址和密钥，并运行 `dutybot doctor` 复查。"
)


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter: 5 s, 10 s, 20 s … capped at 10 minutes."""
    ceiling = min(MAX_BACKOFF.total_seconds(), 5 * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


class OutboxWorker:
    def __init__(
        self, *, db: Database, clock: Clock, directory: Directory, senders: Mapping[str, Sender],
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
        self._tasks: set[asyncio.Task[int]] = set()

    def add_senders(self, senders: Mapping[str, Sender]) -> None:
        """Route the given chats (chat id → sender) through a platform channel."""
        self.senders.update(senders)

    def kick(self) -> None:
        """Deliver soon, without waiting for the next scheduler tick (e.g. a reply just queued)."""
        task = asyncio.get_running_loop().create_task(self.run_once())
        self._tasks.add(task)  # keep a reference: the loop holds tasks only weakly
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for kicked deliveries (used at shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

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
        sender = self.senders.get(chat.id)
        result = DeliveryResult(ok=True, detail="recorded (no channel serves this chat)")
        if sender is not None:
            message = OutboundMessage(
                chat_id=chat.id, text=row.text, mentions=tuple(row.mentions), key=row.key,
                reply_url=row.reply_url, reply_url_expires_at=row.reply_url_expires_at,
            )
            try:
                result = await sender.send(chat, message)
            except Exception as exc:  # a channel bug must not stop the worker; retry it later
                log.exception("sending outbox row %s (key %s) failed", row.id, row.key)
                result = DeliveryResult(ok=False, retryable=True, detail=type(exc).__name__)
        await self._settle(row, result, sender.channel_id if sender is not None else None)

    async def _settle(self, row: OutboxMessage, result: DeliveryResult, channel: str | None = None) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            if channel is not None:
                await channel_status.record(session, channel=channel, chat_id=row.chat_id, now=now, ok=result.ok,
                                            error=result.detail, config_error=result.config_error)
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
            if result.config_error and channel is not None:
                await self._alert_admins(session, channel, row, result, now)
        log.warning("outbox row %s (key %s) not delivered: %s", row.id, row.key, result.detail)

    async def _alert_admins(
        self, session: AsyncSession, channel: str, row: OutboxMessage, result: DeliveryResult, now: datetime
    ) -> None:
        """Tell the admins, through a chat the failing channel does not serve, once per hour and chat."""
        chat = self.directory.chats.get(row.chat_id)
        chat_name = chat.name if chat else row.chat_id
        admins = [p.id for p in self.directory.people_with(Role.ADMIN)]
        for admin_chat in self.directory.admin_chats():
            served_by = self.senders.get(admin_chat.id)
            if served_by is not None and served_by.channel_id == channel:
                continue
            await outbox.enqueue(
                session, key=f"alert:config:{channel}:{row.chat_id}:{now:%Y%m%d%H}:{admin_chat.id}",
                chat_id=admin_chat.id, mentions=admins, now=now,
                text=CONFIG_ALERT.format(channel=channel, chat=chat_name, detail=result.detail),
            )
