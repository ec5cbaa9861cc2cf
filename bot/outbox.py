"""The outbox worker: claim due messages, post them through the chat's platform, record them.

Claims carry a lease; a worker that dies mid-delivery leaves rows that the next worker takes
over when the lease runs out. Every delivered message is also written to the chat log, which is
what the simulator shows and what the records keep.

Each robot webhook gets at most 20 messages in any 60 seconds, counted in the database so that
replicas share the budget. A message over the budget waits for the next free slot; when a chat's
backlog outgrows the budget, its waiting messages are folded into one digest that keeps every
line naming an item and every mention — nothing is dropped to stay under the limit.
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
from bot.config import ChatConfig
from bot.directory import Directory
from bot.dispatch import render_mentions
from bot.messages import OutboundMessage
from bot.metrics import Metrics
from bot.vocab import Role
from handlers.deadline_rules import running_clocks
from handlers.reminders import item_clocks
from store import channel_status, chatlog, outbox, ratelimit
from store.db import Database
from store.models import Item, OutboxMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=10)
DIGEST_MAX = 200
DIGEST_HEADER = "【汇总】因发送频率限制，以下{count}条消息合并发送："
DIGEST_LINE_MAX = 160
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
        metrics: Metrics | None = None, webhook_envs: Mapping[str, str] | None = None,
        rate_limit: int = 20, rate_window: timedelta = timedelta(seconds=60), digest_after: int = 10,
    ) -> None:
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        # A chat with more than this many messages waiting past the rate budget gets a digest.
        self.digest_after = digest_after
        self.db = db
        self.metrics = metrics or Metrics()
        # channel id → the env var naming its default robot webhook (identifies the rate budget)
        self.webhook_envs = dict(webhook_envs or {})
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

    async def _still_wanted(self, row: OutboxMessage) -> bool:
        """A reminder is sent only while its clock runs with the same deadline (re-checked now,
        just before sending: the clock may have stopped since the reminder was queued)."""
        if row.clock is None or row.item_id is None:
            return True
        async with self.db.read() as session:
            item = await session.get(Item, row.item_id)
        if item is None:
            return False
        running = {c.name.value: c.due for c in running_clocks(item_clocks(item))}
        return row.clock in running and running[row.clock] == row.clock_due

    def rate_key(self, sender: Sender, chat: ChatConfig, row: OutboxMessage) -> str | None:
        """The robot webhook this row will use, or None when it answers on the platform's reply URL."""
        reply_usable = row.reply_url is not None and (
            row.reply_url_expires_at is None or row.reply_url_expires_at > self.clock.now()
        )
        if reply_usable and not row.mentions:
            return None
        env = chat.webhook_env or self.webhook_envs.get(sender.channel_id, "default")
        return f"{sender.channel_id}:{env}"

    async def _within_budget(self, row: OutboxMessage, chat: ChatConfig, key: str) -> bool:
        """Reserve a slot, or put the row back until the next free slot (and digest a backlog)."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            free_at = await ratelimit.reserve(session, key, now, limit=self.rate_limit, window=self.rate_window)
            if free_at is not None:
                await outbox.finish(session, row.id, worker=self.worker_id, status=outbox.PENDING, now=now,
                                    error="waiting for the webhook's rate budget", retry_at=free_at)
        if free_at is None:
            return True
        self.metrics.rate_limit_waits.inc()
        self.metrics.deliveries.labels("rate_limited").inc()
        await self._digest_if_backlogged(chat, free_at)
        return False

    async def _digest_if_backlogged(self, chat: ChatConfig, until: datetime) -> None:
        async with self.db.transaction() as session:
            if await outbox.count_due_for_chat(session, chat.id, until) <= self.digest_after:
                return
            rows = await outbox.take_pending_for_chat(session, chat.id, until, DIGEST_MAX)
        wanted = [row for row in rows if await self._still_wanted(row)]
        stale = [row.id for row in rows if row not in wanted]
        if len(wanted) < 2:
            # Nothing worth folding: put the rows back as they were.
            async with self.db.transaction() as session:
                await outbox.mark_merged(session, [row.id for row in wanted], outbox.PENDING)
                await outbox.mark_merged(session, stale, outbox.CANCELLED)
            return
        text = "\n".join([DIGEST_HEADER.format(count=len(wanted)), *(_digest_line(r) for r in wanted)])
        mentions = list(dict.fromkeys(p for row in wanted for p in row.mentions))
        async with self.db.transaction() as session:
            await outbox.mark_merged(session, stale, outbox.CANCELLED)
            await outbox.enqueue(
                session, key=f"digest:{chat.id}:{wanted[0].id}-{wanted[-1].id}", chat_id=chat.id, text=text,
                mentions=mentions, now=self.clock.now(), due_at=min(r.due_at for r in wanted),
            )
        self.metrics.digests.inc()
        log.warning("folded %d waiting messages for chat %s into one digest", len(wanted), chat.id)

    async def _deliver(self, row: OutboxMessage) -> None:
        if not await self._still_wanted(row):
            async with self.db.transaction() as session:
                await outbox.finish(session, row.id, worker=self.worker_id, status=outbox.CANCELLED,
                                    now=self.clock.now(), error="clock stopped before sending")
            self.metrics.deliveries.labels("cancelled").inc()
            return
        chat = self.directory.chats.get(row.chat_id)
        if chat is None:
            await self._settle(row, DeliveryResult(ok=False, detail=f"chat {row.chat_id!r} is no longer configured"))
            return
        sender = self.senders.get(chat.id)
        key = self.rate_key(sender, chat, row) if sender is not None else None
        if key is not None and not await self._within_budget(row, chat, key):
            return
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
                self.metrics.deliveries.labels("sent").inc()
                if row.clock is not None:
                    self.metrics.reminder_lateness.observe(max(0.0, (now - row.due_at).total_seconds()))
                if await outbox.finish(session, row.id, worker=self.worker_id, status=outbox.SENT, now=now):
                    await chatlog.append(
                        session, chat_id=row.chat_id, at=now, sender="bot",
                        text=render_mentions(row.text, row.mentions, self.directory),
                        mentions=row.mentions, kind="notice",
                    )
                return
            retry_at = now + backoff(row.attempts, self._rng) if result.retryable else None
            status = outbox.PENDING if result.retryable else outbox.FAILED
            self.metrics.deliveries.labels("retry" if result.retryable else "failed").inc()
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


def _digest_line(row: OutboxMessage) -> str:
    """One line of a digest: the message itself when short, else its first line (which names the item)."""
    text = row.text.replace("\n", " ") if len(row.text) <= DIGEST_LINE_MAX else row.text.splitlines()[0]
    return f"· {text}"
