"""The outbox worker: claim due messages, post them through the chat's platform, record them.

Claims carry a lease; a worker that dies mid-delivery leaves rows that the next worker takes
over when the lease runs out. Every delivered message is also written to the chat log, which is
what the simulator shows and what the records keep.

Each robot webhook gets at most 20 posts in any 60 seconds, counted in the database so that
replicas share the budget; a message split into several posts reserves one slot per post. A
message over the budget waits for the next free slot; when a chat's backlog outgrows the budget,
its waiting messages are folded into digests that keep every line naming an item and every
mention — nothing is dropped to stay under the limit. A digest is sized to go out as one post
(a part posted before a failed one would be posted again on retry), and is never folded again.

Just before sending, a worker renews its claim on the row: a row it claimed in a batch but whose
lease ran out while earlier rows were being sent may have been taken over, and is then left to
the worker that holds it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy import select

from bot.channels.base import DeliveryResult, Sender
from bot.clock import Clock
from bot.config import ChatConfig
from bot.directory import Directory
from bot.dispatch import render_mentions
from bot.messages import OutboundMessage
from bot.metrics import Metrics
from bot.vocab import Role
from handlers.deadline_rules import running_clocks
from handlers.items import item_clocks
from store import audit, channel_status, chatlog, outbox, ratelimit
from store.db import Database
from store.models import Item, OutboxMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=10)
DIGEST_MAX = 200
DIGEST_HEADER = "【汇总】因发送频率限制，以下{count}条消息合并发送："
DIGEST_LINE_MAX = 160
CLAIM_ID_MAX = 64  # outbox.claimed_by
CONFIG_ALERT = (
    "【系统告警】通道 {channel} 向“{chat}”发送消息失败，原因是配置错误：{detail}。\n"
    "该消息不再重试。请管理员检查该群机器人的 webhook 地址和密钥，并运行 `dutybot doctor` 复查。"
)


@runtime_checkable
class CountsPosts(Protocol):
    """A sender that can tell how many robot posts a message takes (a long one is split)."""

    def posts_needed(self, chat: ChatConfig, message: OutboundMessage) -> int: ...


def posts_needed(sender: Sender, chat: ChatConfig, message: OutboundMessage) -> int:
    return max(1, sender.posts_needed(chat, message)) if isinstance(sender, CountsPosts) else 1


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
        post_timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        # The longest one post may take ([delivery] timeout_seconds): a claim is renewed to cover
        # every post of a message split in parts, whatever the configured lease.
        self.post_timeout = post_timeout
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
        self._runs = itertools.count(1)
        self.lease = lease
        self.batch = batch
        self._rng = random.Random()
        self._tasks: set[asyncio.Task[int]] = set()
        self._draining = False  # run_due in progress
        self._again = False  # …and asked for again meanwhile

    def add_senders(self, senders: Mapping[str, Sender]) -> None:
        """Route the given chats (chat id → sender) through a platform channel."""
        self.senders.update(senders)

    def kick(self, *, until_idle: bool = False) -> None:
        """Deliver soon, without waiting for the next scheduler tick (e.g. a reply just queued);
        `until_idle` keeps claiming batches while there are due rows (a sweep queued many)."""
        self._track(asyncio.get_running_loop().create_task(self.run_due() if until_idle else self.run_once()))

    def _track(self, task: asyncio.Task[int]) -> None:
        self._tasks.add(task)  # keep a reference: the loop holds tasks only weakly
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for kicked deliveries (used at shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def run_due(self) -> int:
        """Deliver batch after batch until a claim comes back short: the scheduler's job. One
        batch per tick would cap a replica at `batch` messages a second, well under a burst of
        reminders falling due together. One drain at a time per process: a call while one runs
        makes that one go round again instead of starting a second. Returns the rows claimed."""
        if self._draining:
            self._again = True
            return 0
        self._draining = True
        claimed = 0
        try:
            while True:
                self._again = False
                count = await self.run_once()
                claimed += count
                if count < self.batch and not self._again:
                    return claimed
        finally:
            self._draining = False

    async def run_once(self) -> int:
        """Deliver what is due now, one claimed batch; returns how many rows were claimed.

        The claimed batch is worked through in as few transactions as the posts allow: the claim
        shares its transaction with the first step, and each later step records the post just
        made; a step then takes rows until one needs a post to a platform — rows whose clock
        stopped are cancelled and rows for a chat no channel serves are recorded on the way. So a
        platform post is re-checked (and its claim renewed when the lease might not cover it)
        just before it goes out and is recorded right after (a kill loses at most the post in
        flight), while a claimed message costs two transactions, and a run of rows without a post
        one. (A reply skips the claim: its message's transaction claims it, see `deliver`.)
        """
        return await self._work(self.claim_id(next(self._runs)), deque(), claim=True)

    def reply_claim(self, now: datetime) -> tuple[str, datetime]:
        """A claim for the replies of one message, taken by the transaction that queues them
        (store.outbox.enqueue_claimed). Its lease covers one post and the moment before it; if this
        process dies before posting, any worker takes the replies over when it runs out."""
        return self.claim_id(next(self._runs)), now + self.post_timeout * 3

    def deliver(self, claim: str, rows: Sequence[OutboxMessage], *, kick: bool) -> None:
        """Post a message's replies, committed already claimed under `claim`, without a claim
        transaction: the first goes out at once and its record shares a transaction with the
        next. `kick`: the message queued other rows too (notices), for a worker to claim."""
        if rows:
            self._track(asyncio.get_running_loop().create_task(self._work(claim, deque(rows), claim=False)))
        if kick:
            self.kick()

    async def _work(self, run: str, queue: deque[OutboxMessage], *, claim: bool) -> int:
        """Claim a batch (`claim`) or take the rows given in `queue`, and post them one by one."""
        waiting: dict[str, _Waiting] = {}
        claimed = 0
        try:
            outgoing = None if claim else self._ready_at_once(queue)
            if outgoing is None and (claim or queue):
                claimed, outgoing = await self._step(run, None, queue, waiting, claim=claim)
            while outgoing is not None:
                posted = await self._post(outgoing)
                _, outgoing = await self._step(run, posted, queue, waiting)
        finally:
            await self._put_back(run, waiting)
        return claimed

    def _ready_at_once(self, queue: deque[OutboxMessage]) -> _Outgoing | None:
        """The first row, if it can be posted with nothing to check in the database: a reply just
        claimed (its lease covers the post), not about an item, answered on the platform's reply
        URL (no webhook budget to reserve). Anything else goes through a step."""
        row = queue[0] if queue else None
        chat = self.directory.chats.get(row.chat_id) if row is not None else None
        sender = self.senders.get(chat.id) if chat is not None else None
        if row is None or chat is None or sender is None or row.item_id is not None:
            return None
        if self.rate_key(sender, chat, row) is not None:
            return None
        message = _message_of(row, chat)
        if not self._covers(row, self.clock.now(), posts_needed(sender, chat, message)):
            return None
        queue.popleft()
        return _Outgoing(row, chat, sender, message, _log_fields(row, {}))

    def _covers(self, row: OutboxMessage, now: datetime, slots: int) -> bool:
        """Whether the row's lease outlasts its posts (one timeout each, and one to spare)."""
        return row.lease_until is not None and row.lease_until - now >= self.post_timeout * (slots + 1)

    def claim_id(self, run: int) -> str:
        """Who holds a claim: this worker and the run. Each run claims under its own id, so that a
        run started while another is still busy (a kick next to the scheduled tick) cannot renew or
        settle the other's rows as if they were its own after taking them over."""
        suffix = f"#{run}"
        # claimed_by holds 64 characters; the end of the worker id (pid, engine) is what tells apart.
        return self.worker_id[-(CLAIM_ID_MAX - len(suffix)):] + suffix

    def rate_key(self, sender: Sender, chat: ChatConfig, row: OutboxMessage) -> str | None:
        """The robot webhook this row will use, or None when it answers on the platform's reply URL."""
        reply_usable = row.reply_url is not None and (
            row.reply_url_expires_at is None or row.reply_url_expires_at > self.clock.now()
        )
        if reply_usable and not row.mentions:
            return None
        env = chat.webhook_env or self.webhook_envs.get(sender.channel_id, "default")
        return f"{sender.channel_id}:{env}"

    async def _put_back(self, run: str, waiting: Mapping[str, _Waiting]) -> None:
        """Rows over their webhook's budget wait for the next free slot (one UPDATE per webhook, not
        a transaction per row), then a chat whose backlog outgrew the budget gets a digest."""
        for wait in waiting.values():
            async with self.db.transaction() as session:
                await outbox.release(session, wait.row_ids, worker=run, due_at=wait.free_at,
                                     error="waiting for the webhook's rate budget")
            self.metrics.rate_limit_waits.inc(len(wait.row_ids))
            self.metrics.deliveries.labels("rate_limited").inc(len(wait.row_ids))
            for chat, sender in wait.chats.values():
                await self._digest_if_backlogged(chat, wait.free_at, sender)

    async def _digest_if_backlogged(self, chat: ChatConfig, until: datetime, sender: Sender | None) -> None:
        """Fold the chat's messages waiting past the budget into a digest, in one transaction: a
        crash leaves either the rows or the digest, never rows folded into nothing."""
        async with self.db.transaction() as session:
            if await outbox.count_due_for_chat(session, chat.id, until) <= self.digest_after:
                return
            rows = await outbox.take_pending_for_chat(session, chat.id, until, DIGEST_MAX)
            items = await _items_of(session, rows)
            wanted = [row for row in rows if _wanted(row, items)]
            stale = [row.id for row in rows if row not in wanted]
            await outbox.mark_merged(session, stale, outbox.CANCELLED)
            folded = self._fitting(wanted, chat, sender)
            if len(folded) < 2:
                # Nothing worth folding: put the rows back as they were.
                await outbox.mark_merged(session, [row.id for row in wanted], outbox.PENDING)
                return
            await outbox.mark_merged(session, [row.id for row in wanted[len(folded):]], outbox.PENDING)
            text, mentions = _digest(folded)
            fresh = await outbox.enqueue(
                session, key=f"{outbox.DIGEST_PREFIX}{chat.id}:{folded[0].id}-{folded[-1].id}", chat_id=chat.id,
                text=text, mentions=mentions, now=self.clock.now(), due_at=min(r.due_at for r in folded),
            )
            if not fresh:  # cannot happen (a row is folded once); never leave rows folded into nothing
                log.error("digest for chat %s already existed; its rows stay queued", chat.id)
                await outbox.mark_merged(session, [row.id for row in folded], outbox.PENDING)
                return
        self.metrics.digests.inc()
        log.warning("folded %d waiting messages for chat %s into one digest", len(folded), chat.id)

    def _fitting(self, rows: Sequence[OutboxMessage], chat: ChatConfig, sender: Sender | None) -> list[OutboxMessage]:
        """The longest run of rows whose digest goes out as one post: a digest split in parts would
        take several rate slots, and a part posted before a failed one would be posted again."""
        if sender is None or not isinstance(sender, CountsPosts):
            return list(rows)

        def fits(count: int) -> bool:
            text, mentions = _digest(rows[:count])
            message = OutboundMessage(chat_id=chat.id, text=text, mentions=tuple(mentions))
            return posts_needed(sender, chat, message) <= 1

        low, high = 1, len(rows)  # fits(1) is not required: a lone row is never a digest
        while low < high:
            middle = (low + high + 1) // 2
            if fits(middle):
                low = middle
            else:
                high = middle - 1
        return list(rows[:low]) if low >= 2 else []

    async def _step(
        self, run: str, posted: _Posted | None, queue: deque[OutboxMessage], waiting: dict[str, _Waiting],
        *, claim: bool = False,
    ) -> tuple[int, _Outgoing | None]:
        """One transaction: claim a batch into the queue (`claim`) or record the post just made,
        then take rows off the queue until one needs a post (returned, its claim kept and its rate
        slots reserved) or the queue is empty. Returns how many rows were claimed, and that row."""
        now = self.clock.now()
        claimed = 0
        failures: list[tuple[OutboxMessage, DeliveryResult, dict[str, object]]] = []
        async with self.db.transaction() as session:
            if claim:
                rows = await outbox.claim(session, worker=run, now=now, lease=self.lease, limit=self.batch)
                queue.extend(rows)
                claimed = len(rows)
            if posted is not None and not await self._settle(session, posted.row, run, posted.result, posted.channel,
                                                             now, posted.log_fields):
                failures.append((posted.row, posted.result, posted.log_fields))
            items: dict[int, Item] = {}
            cancelled: list[OutboxMessage] = []
            recorded: list[OutboxMessage] = []
            outgoing = None
            while queue and outgoing is None:
                if queue[0].item_id is not None and queue[0].item_id not in items:
                    # The items of the rows this step will take, read together (an item deleted
                    # meanwhile stays missing, and its reminder is cancelled).
                    items.update(await _items_of(session, self._this_step(queue, waiting), known=items))
                row = queue.popleft()
                chat = self.directory.chats.get(row.chat_id)
                sender = self.senders.get(chat.id) if chat is not None else None
                key = self.rate_key(sender, chat, row) if sender is not None and chat is not None else None
                if key is not None and key in waiting:
                    # The webhook's budget ran out earlier in this batch: no need to ask again.
                    waiting[key].add(row, chat, sender)
                elif not _wanted(row, items):
                    cancelled.append(row)
                elif chat is None:
                    gone = DeliveryResult(ok=False, detail=f"chat {row.chat_id!r} is no longer configured")
                    fields = _log_fields(row, items)
                    await self._settle(session, row, run, gone, None, now, fields)
                    failures.append((row, gone, fields))
                elif sender is None:
                    recorded.append(row)  # no channel serves this chat: recording it is the delivery
                else:
                    outgoing = await self._prepare(session, run, row, chat, sender, key, waiting, now, items)
            await self._finish_unposted(session, run, cancelled, recorded, now, items)
        for row, result, fields in failures:
            log.warning("outbox row %s not delivered: %s", row.id, result.detail,
                        extra={**fields, "outcome": "retry" if result.retryable else "failed"})
        return claimed, outgoing

    def _this_step(self, queue: Iterable[OutboxMessage], waiting: Mapping[str, _Waiting]) -> list[OutboxMessage]:
        """The rows a step will take: up to the first one that needs a post."""
        taken = []
        for row in queue:
            taken.append(row)
            chat = self.directory.chats.get(row.chat_id)
            sender = self.senders.get(chat.id) if chat is not None else None
            if chat is not None and sender is not None and self.rate_key(sender, chat, row) not in waiting:
                break
        return taken

    async def _prepare(
        self, session: AsyncSession, run: str, row: OutboxMessage, chat: ChatConfig, sender: Sender,
        key: str | None, waiting: dict[str, _Waiting], now: datetime, items: Mapping[int, Item],
    ) -> _Outgoing | None:
        """Just before posting: keep the claim, then reserve the webhook's rate slots. None when
        another worker took the row over after our lease ran out, or the budget is spent (the row
        then waits for the moment it frees up)."""
        message = _message_of(row, chat)
        slots = posts_needed(sender, chat, message)
        lease = max(self.lease, self.post_timeout * (slots + 1))
        # A claim taken moments ago already covers the post (no one takes a row over before its
        # lease runs out); later rows of a batch renew, and learn whether they were taken over.
        if not self._covers(row, now, slots) and not await outbox.renew(
            session, row.id, worker=run, now=now, lease=lease
        ):
            log.warning("outbox row %s was taken over by another worker; %s leaves it", row.id, run,
                        extra=_log_fields(row, items, outcome="taken_over"))
            return None
        if key is not None:
            free_at = await ratelimit.reserve(session, key, now, limit=self.rate_limit, window=self.rate_window,
                                              slots=slots)
            if free_at is not None:
                waiting.setdefault(key, _Waiting(free_at)).add(row, chat, sender)
                return None
        return _Outgoing(row, chat, sender, message, _log_fields(row, items))

    async def _post(self, outgoing: _Outgoing) -> _Posted:
        sender = outgoing.sender
        try:
            result = await sender.send(outgoing.chat, outgoing.message)
        except Exception as exc:  # a channel bug must not stop the worker; retry it later
            log.exception("sending outbox row %s failed", outgoing.row.id, extra=outgoing.log_fields)
            result = DeliveryResult(ok=False, retryable=True, detail=type(exc).__name__)
        return _Posted(outgoing.row, result, sender.channel_id, outgoing.log_fields)

    async def _finish_unposted(
        self, session: AsyncSession, run: str, cancelled: Sequence[OutboxMessage], recorded: Sequence[OutboxMessage],
        now: datetime, items: Mapping[int, Item],
    ) -> None:
        """Settle, in bulk, the rows of this step that needed no post."""
        if cancelled:
            await outbox.finish_many(session, [r.id for r in cancelled], worker=run, status=outbox.CANCELLED, now=now,
                                     error="clock stopped before sending")
            self.metrics.deliveries.labels("cancelled").inc(len(cancelled))
            for row in cancelled:
                log.info("reminder cancelled: its clock stopped before sending",
                         extra=_log_fields(row, items, outcome="cancelled"))
        if recorded:
            mine = set(await outbox.finish_many(session, [r.id for r in recorded], worker=run, status=outbox.SENT,
                                                now=now))
            for row in recorded:
                if row.id in mine:
                    await self._record_sent(session, row, now, _log_fields(row, items))

    async def _settle(
        self, session: AsyncSession, row: OutboxMessage, run: str, result: DeliveryResult, channel: str | None,
        now: datetime, fields: Mapping[str, object],
    ) -> bool:
        """Record a post's outcome in the caller's transaction; True when it was delivered."""
        if channel is not None:
            await channel_status.record(session, channel=channel, chat_id=row.chat_id, now=now, ok=result.ok,
                                        error=result.detail, config_error=result.config_error)
        if result.ok:
            if await outbox.finish(session, row.id, worker=run, status=outbox.SENT, now=now):
                await self._record_sent(session, row, now, fields)
            return True
        retry_at = now + backoff(row.attempts, self._rng) if result.retryable else None
        status = outbox.PENDING if result.retryable else outbox.FAILED
        self.metrics.deliveries.labels("retry" if result.retryable else "failed").inc()
        await outbox.finish(session, row.id, worker=run, status=status, now=now,
                            error=result.detail, retry_at=retry_at)
        if result.config_error and channel is not None:
            await self._alert_admins(session, channel, row, result, now)
        return False

    async def _record_sent(
        self, session: AsyncSession, row: OutboxMessage, now: datetime, fields: Mapping[str, object]
    ) -> None:
        """A delivered row goes into the chat log (what the simulator shows) and, when it is about
        an item, into the item's audit trail."""
        self.metrics.deliveries.labels("sent").inc()
        late_by = max(0.0, (now - row.due_at).total_seconds())
        if row.clock is not None:
            self.metrics.reminder_lateness.observe(late_by)
        await chatlog.append(
            session, chat_id=row.chat_id, at=now, sender="bot", mentions=row.mentions, kind="notice",
            text=render_mentions(row.text, row.mentions, self.directory),
        )
        if row.item_id is not None:
            await self._audit_notice(session, row, now)
        log.info("outbox row %s sent", row.id,
                 extra={**fields, "outcome": "sent", "late_by_s": round(late_by, 3)})

    async def _audit_notice(self, session: AsyncSession, row: OutboxMessage, now: datetime) -> None:
        """Every reminder and notice sent about an item goes into its audit trail (考核 needs it)."""
        first_line = row.text.splitlines()[0] if row.text else ""
        await audit.record(
            session, at=now, actor="bot", action="notice", item_id=row.item_id, chat_id=row.chat_id,
            detail=first_line[:200],
            after={"key": row.key, "due_at": row.due_at.isoformat(), "late": row.late, "mentions": list(row.mentions)},
        )

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


@dataclass(frozen=True)
class _Outgoing:
    """A row ready to be posted: its claim renewed and its rate slots reserved."""

    row: OutboxMessage
    chat: ChatConfig
    sender: Sender
    message: OutboundMessage
    log_fields: dict[str, object]


@dataclass(frozen=True)
class _Posted:
    """A post made and not yet recorded."""

    row: OutboxMessage
    result: DeliveryResult
    channel: str
    log_fields: dict[str, object]


@dataclass
class _Waiting:
    """Rows of one batch whose webhook has no slot left until `free_at`, and the chats they are for."""

    free_at: datetime
    row_ids: list[int] = field(default_factory=list)
    chats: dict[str, tuple[ChatConfig, Sender | None]] = field(default_factory=dict)

    def add(self, row: OutboxMessage, chat: ChatConfig | None, sender: Sender | None) -> None:
        self.row_ids.append(row.id)
        if chat is not None:
            self.chats[chat.id] = (chat, sender)


def _message_of(row: OutboxMessage, chat: ChatConfig) -> OutboundMessage:
    return OutboundMessage(
        chat_id=chat.id, text=row.text, mentions=tuple(row.mentions), key=row.key,
        reply_url=row.reply_url, reply_url_expires_at=row.reply_url_expires_at,
    )


def _wanted(row: OutboxMessage, items: Mapping[int, Item]) -> bool:
    """Still to be sent? A notice that is not a reminder always is; a reminder while its clock
    still runs with the deadline it was queued for (its item gone: no longer)."""
    if row.clock is None or row.item_id is None:
        return True
    item = items.get(row.item_id)
    if item is None:
        return False
    running = {c.name.value: c.due for c in running_clocks(item_clocks(item))}
    return row.clock in running and running[row.clock] == row.clock_due


async def _items_of(
    session: AsyncSession, rows: Iterable[OutboxMessage], known: Mapping[int, Item] | None = None
) -> dict[int, Item]:
    """The items the rows are about (but not yet `known`), read in one query (to re-check clocks,
    and to log their numbers)."""
    ids = {row.item_id for row in rows if row.item_id is not None} - set(known or ())
    if not ids:
        return {}
    result = await session.execute(select(Item).where(Item.id.in_(ids)))
    return {item.id: item for item in result.scalars()}


def _log_fields(row: OutboxMessage, items: Mapping[int, Item], **more: object) -> dict[str, object]:
    """Fields for structured logs: which row, which intent (idempotency key), which item (#number)."""
    item = items.get(row.item_id) if row.item_id is not None else None
    return {"outbox_id": row.id, "key": row.key, "item": item.number if item is not None else None,
            "chat": row.chat_id, **more}


def _digest(rows: Sequence[OutboxMessage]) -> tuple[str, list[str]]:
    """A digest's text (a header and one line per message) and its mentions (the union, in order)."""
    text = "\n".join([DIGEST_HEADER.format(count=len(rows)), *(_digest_line(r) for r in rows)])
    return text, list(dict.fromkeys(p for row in rows for p in row.mentions))


def _digest_line(row: OutboxMessage) -> str:
    """One line of a digest: the message itself when short, else its first line (which names the
    item) — and, for a late message, its last line, the note that it is sent late (补发)."""
    if len(row.text) <= DIGEST_LINE_MAX:
        text = row.text.replace("\n", " ")
    else:
        lines = row.text.splitlines()
        text = f"{lines[0]} {lines[-1]}" if row.late and len(lines) > 1 else lines[0]
    return f"· {text}"
