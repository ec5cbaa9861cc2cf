"""How one lane of the outbox worker posts its rows (bot/outbox.py runs the lanes).

A lane works through its rows in as few transactions as the posts allow: a step records the post
just made and takes rows until one needs a post — rows whose clock stopped are cancelled and rows
for a chat no channel serves are recorded on the way. A post is re-checked (its claim renewed when
the lease might not cover it, its robot's rate slots reserved) just before it goes out and
recorded right after, so a kill loses at most the post in flight.

Every post that reaches a robot goes through the budget: notices, each part of a split message,
retries, and replies whose reply URL the platform refused — the lane tries the reply URL alone
(RepliesDirectly.send_reply) and, when refused, posts on the robot itself after reserving. A
robot that refuses for a configuration reason has the message held (bot/outbox_held.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.channels.base import DeliveryResult, Sender
from bot.clock import Clock
from bot.logs import FailureLog
from bot.outbox_digest import fold_in, folded
from bot.outbox_outcomes import LaneOutcomes
from bot.outbox_parts import (
    Endpoint,
    Lane,
    Outgoing,
    Posted,
    RepliesDirectly,
    Slots,
    Waiting,
    items_of,
    log_fields,
    message_of,
    posts_needed,
    wanted,
)
from domain.config import ChatConfig
from store import outbox, ratelimit
from store.db import Database
from store.models import Item, OutboxMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("bot.outbox")

POST_GRACE = timedelta(seconds=1)  # beyond the senders' own timeouts, before the worker gives up on a post
STOPPED = "released at shutdown"
REPLY_UNUSABLE = "reply URL unusable for this message"
RATE_WAIT = "waiting for the webhook's rate budget"


class LaneSteps(LaneOutcomes):
    """The posting half of OutboxWorker (LaneOutcomes records): its state is set up by OutboxWorker.__init__."""

    db: Database
    clock: Clock
    lease: timedelta
    post_timeout: timedelta
    rate_limit: int
    rate_window: timedelta
    rate_skew: timedelta
    digest_after: int
    digest_log: FailureLog
    _spent: dict[str, datetime]
    _stopping: bool

    def kick(self, *, until_idle: bool = False) -> None:
        raise NotImplementedError

    def rate_key(self, sender: Sender, chat: ChatConfig, row: OutboxMessage) -> str | None:
        """The robot webhook this row will use, or None when it goes to the platform's reply URL.
        A sender that can post on the reply URL alone (RepliesDirectly) tries it first whenever the
        row has one; another sender is trusted to use it for a fresh reply that @-mentions nobody."""
        if row.reply_url is not None and isinstance(sender, RepliesDirectly):
            return None
        reply_usable = row.reply_url is not None and (
            row.reply_url_expires_at is None or row.reply_url_expires_at > self.clock.now()
        )
        if reply_usable and not row.mentions and not isinstance(sender, RepliesDirectly):
            return None
        return self.robot_key(sender, chat)


    async def _work(self, lane: Lane) -> None:
        """Post the lane's rows one by one; put back what waits for the robot's budget."""
        waiting: dict[str, Waiting] = {}
        try:
            outgoing = self._ready_at_once(lane.queue) if lane.fast else None
            if outgoing is None and lane.queue:
                outgoing = await self._step(lane, None, waiting)
            while outgoing is not None:
                lane.in_flight = outgoing.row.id
                posted = await self._post(outgoing)
                lane.in_flight = None
                outgoing = await self._step(lane, posted, waiting)
        finally:
            await self._put_back(lane.run, waiting)

    def _ready_at_once(self, queue: deque[OutboxMessage]) -> Outgoing | None:
        """The first row, if it can be posted with nothing to check in the database: a reply just
        claimed (its lease covers the post), not about an item, answered on the platform's reply
        URL (no robot budget to reserve). Anything else goes through a step."""
        row = queue[0] if queue else None
        chat, sender = self._chat_and_sender(row) if row is not None else (None, None)
        if row is None or chat is None or sender is None or row.item_id is not None:
            return None
        if self.rate_key(sender, chat, row) is not None:
            return None
        message = message_of(row, chat)
        if not self._covers(row, self.clock.now(), 1):
            return None
        queue.popleft()
        return Outgoing(row, chat, sender, message, log_fields(row, {}), via_reply=isinstance(sender, RepliesDirectly))

    def _covers(self, row: OutboxMessage, now: datetime, slots: int) -> bool:
        """Whether the row's lease outlasts its posts (one timeout each, and one to spare)."""
        return row.lease_until is not None and row.lease_until - now >= self.post_timeout * (slots + 1)

    def _post_limit(self, posts: int) -> timedelta:
        """The longest a message of `posts` posts may take before the worker gives up on it."""
        return self.post_timeout * posts + POST_GRACE

    async def _put_back(self, run: str, waiting: Mapping[str, Waiting]) -> None:
        """Rows over their robot's budget wait for the next free slot (one UPDATE per robot, not
        a transaction per row), and a chat whose backlog outgrew the budget gets a digest in the
        same transaction (one turn of SQLite's single writer, not two)."""
        for robot, wait in waiting.items():
            self._spent[robot] = max(wait.free_at, self._spent.get(robot, wait.free_at))
            # A webhook's JSON events are never folded into a chat's digest.
            chats = [(chat, sender) for chat, sender in wait.chats.values() if chat.id not in self.targets]
            async with self.db.transaction() as session:
                await outbox.release(session, wait.row_ids, worker=run, due_at=wait.free_at, error=RATE_WAIT)
                counts = [await fold_in(session, now=self.clock.now(), directory=self.directory, chat=chat,
                                        until=wait.free_at, sender=sender, digest_after=self.digest_after)
                          for chat, sender in chats]
            self.metrics.rate_limit_waits.inc(len(wait.row_ids))
            self.metrics.deliveries.labels("rate_limited").inc(len(wait.row_ids))
            for (chat, _), count in zip(chats, counts, strict=True):
                folded(self.metrics, self.digest_log, chat, count)

    async def _release(self, run: str, row_ids: Sequence[int]) -> None:
        async with self.db.transaction() as session:
            await outbox.release(session, row_ids, worker=run, error=STOPPED)

    # -- one step: record a post, take rows until the next post -------------------------------------

    async def _step(self, lane: Lane, posted: Posted | None, waiting: dict[str, Waiting]) -> Outgoing | None:
        """One transaction: record the post just made, then take rows off the lane until one needs
        a post (returned, its claim kept and its rate slots reserved) or the lane is empty. While
        stopping, the rows not yet posted are released instead."""
        now = self.clock.now()
        run, queue = lane.run, lane.queue
        failures: list[tuple[OutboxMessage, DeliveryResult, dict[str, object]]] = []
        unheld: list[str] = []
        async with self.db.transaction() as session:
            if posted is not None and posted.refused:
                await self._to_robot(session, run, posted)
                queue.appendleft(posted.row)
            elif posted is not None and not await self._settle(session, run, posted, now, unheld):
                failures.append((posted.row, posted.result, posted.log_fields))
            items: dict[int, Item] = {}
            cancelled: list[OutboxMessage] = []
            recorded: list[OutboxMessage] = []
            unused: list[OutboxMessage] = []
            outgoing = None
            while queue and outgoing is None:
                if self._stopping:
                    unused += queue
                    queue.clear()
                    break
                if queue[0].item_id is not None and queue[0].item_id not in items:
                    # The items of the rows this step will take, read together (an item deleted
                    # meanwhile stays missing, and its reminder is cancelled).
                    items.update(await items_of(session, self._this_step(queue, waiting), known=items))
                row = queue.popleft()
                chat, sender = self._chat_and_sender(row)
                key = self.rate_key(sender, chat, row) if sender is not None and chat is not None else None
                if key is not None and key in waiting:
                    # The robot's budget ran out earlier in this lane: no need to ask again.
                    waiting[key].add(row, chat, sender)
                elif not wanted(row, items):
                    cancelled.append(row)
                elif chat is None:
                    gone = DeliveryResult(ok=False, detail=f"chat {row.chat_id!r} is no longer configured")
                    fields = log_fields(row, items)
                    await self._settle(session, run, Posted(row, gone, "", fields), now)
                    failures.append((row, gone, fields))
                elif sender is None:
                    recorded.append(row)  # no channel serves this chat: recording it is the delivery
                else:
                    outgoing = await self._prepare(session, run, row, chat, sender, key, waiting, now, items)
            if outgoing is not None and self._stopping:  # the stop came while this step prepared it
                unused.append(outgoing.row)
                outgoing = None
            await self._finish_unposted(session, run, cancelled, recorded, now, items)
            if unused:
                await outbox.release(session, [row.id for row in unused], worker=run, error=STOPPED)
        if unheld:  # a robot accepted again: its held rows are due now (and committed)
            self.kick(until_idle=True)
        for row, result, fields in failures:
            outcome = "retry" if result.retryable else ("held" if result.config_error else "failed")
            log.warning("outbox row %s not delivered: %s", row.id, result.detail, extra={**fields, "outcome": outcome})
        return outgoing

    def _this_step(self, queue: Iterable[OutboxMessage], waiting: Mapping[str, Waiting]) -> list[OutboxMessage]:
        """The rows a step will take: up to the first one that needs a post."""
        taken = []
        for row in queue:
            taken.append(row)
            chat, sender = self._chat_and_sender(row)
            if chat is not None and sender is not None and self.rate_key(sender, chat, row) not in waiting:
                break
        return taken

    async def _to_robot(self, session: AsyncSession, run: str, posted: Posted) -> None:
        """The reply URL refused the row (used, expired, closed, or unfit for it): it goes to the
        chat's robot next, through the budget like any notice."""
        row = posted.row
        await outbox.drop_reply_url(session, row.id, worker=run)
        row.reply_url = row.reply_url_expires_at = None
        # A reply URL that cannot carry the message (one that @-mentions people, on WeCom) is routine.
        level = logging.DEBUG if posted.result.detail == REPLY_UNUSABLE else logging.INFO
        log.log(level, "outbox row %s: the reply URL refused it (%s); posting on the robot", row.id,
                posted.result.detail, extra={**posted.log_fields, "outcome": "reply_refused"})

    async def _prepare(
        self, session: AsyncSession, run: str, row: OutboxMessage, chat: ChatConfig, sender: Sender,
        key: str | None, waiting: dict[str, Waiting], now: datetime, items: Mapping[int, Item],
    ) -> Outgoing | None:
        """Just before posting: keep the claim, then reserve the robot's rate slots. None when
        another worker took the row over after our lease ran out, or the budget is spent (the row
        then waits for the moment it frees up)."""
        via_reply = key is None and isinstance(sender, RepliesDirectly)
        # A robot post never carries the reply URL to a sender that can be told apart: it must
        # not try the URL and fall back to the robot unreserved.
        message = message_of(row, chat, reply=via_reply or not isinstance(sender, RepliesDirectly))
        slots = 1 if key is None else posts_needed(sender, chat, message)
        lease = max(self.lease, self.post_timeout * (slots + 1))
        # A claim taken moments ago already covers the post (no one takes a row over before its
        # lease runs out); later rows of a batch renew, and learn whether they were taken over.
        if not self._covers(row, now, slots) and not await outbox.renew(
            session, row.id, worker=run, now=now, lease=lease
        ):
            log.warning("outbox row %s was taken over by another worker; %s leaves it", row.id, run,
                        extra=log_fields(row, items, outcome="taken_over"))
            return None
        rate = None
        if key is not None:
            lasting = self._post_limit(slots)
            # A webhook receiver's budget is its own, not the platform robots' 20 a minute.
            endpoint = sender if row.chat_id in self.targets and isinstance(sender, Endpoint) else None
            limit, window = ((endpoint.rate_limit, endpoint.rate_window) if endpoint is not None
                             else (self.rate_limit, self.rate_window + self.rate_skew))
            free_at = await ratelimit.reserve(session, key, now, limit=limit, window=window, slots=slots,
                                              lasting=lasting)
            if free_at is not None:
                waiting.setdefault(key, Waiting(free_at)).add(row, chat, sender)
                return None
            rate = Slots(key, now + lasting, slots)
        return Outgoing(row, chat, sender, message, log_fields(row, items), via_reply=via_reply, rate=rate,
                        posts=slots)

    async def _post(self, outgoing: Outgoing) -> Posted:
        sender, chat, message = outgoing.sender, outgoing.chat, outgoing.message
        refused = False
        try:
            # The senders time out on their own; this bounds a sender that would not, so that a
            # lane (and a stop) never waits longer than the rate stamp assumed.
            async with asyncio.timeout(self._post_limit(outgoing.posts).total_seconds()):
                if outgoing.via_reply and isinstance(sender, RepliesDirectly):
                    answer = await sender.send_reply(chat, message)
                    refused = answer is None or not (answer.ok or answer.retryable)
                    result = answer or DeliveryResult(ok=False, detail=REPLY_UNUSABLE)
                else:
                    result = await sender.send(chat, message)
        except TimeoutError:
            result = DeliveryResult(ok=False, retryable=True, detail="发送超时")
        except Exception as exc:  # a channel bug must not stop the worker; retry it later
            log.exception("sending outbox row %s failed", outgoing.row.id, extra=outgoing.log_fields)
            result = DeliveryResult(ok=False, retryable=True, detail=type(exc).__name__)
        return Posted(outgoing.row, result, sender.channel_id, outgoing.log_fields, outgoing.rate, refused)
