"""The small pieces the outbox worker (bot/outbox.py) passes around: a lane of rows for one robot,
a post about to go out and one just made, rows waiting for a robot's budget, and the lookups
that turn an outbox row into what a sender posts."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.channels.base import DeliveryResult, Sender
from domain.config import ChatConfig
from domain.messages import OutboundMessage
from handlers.deadline_rules import running_clocks
from handlers.items import item_clocks
from store import items as item_store
from store.models import Item, OutboxMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

MAX_BACKOFF = timedelta(minutes=10)


@runtime_checkable
class CountsPosts(Protocol):
    """A sender that can tell how many robot posts a message takes (a long one is split)."""

    def posts_needed(self, chat: ChatConfig, message: OutboundMessage) -> int: ...


@runtime_checkable
class RepliesDirectly(Protocol):
    """A sender that can post on a message's reply URL alone, never falling back to the robot:
    None when the URL cannot carry the message. The worker then posts on the robot itself (with
    `send` and no reply URL), after reserving the robot's rate slots like for any notice."""

    async def send_reply(self, chat: ChatConfig, message: OutboundMessage) -> DeliveryResult | None: ...


@runtime_checkable
class Endpoint(Protocol):
    """A sender for a system, not a chat: a webhook subscriber (bot/webhook_send.py). Its rows are
    addressed to `target.id` (no configured chat has it) and take the same path as a chat's —
    claim, lane, renewal, rate budget, retries with backoff — but with the endpoint's own budget
    (a robot's 20 a minute is not the receiver's), never folded into a digest nor written to a chat
    log, and a permanent refusal is reported by the endpoint (`refused`) instead of held."""

    target: ChatConfig
    rate_limit: int
    rate_window: timedelta

    async def refused(
        self, session: AsyncSession, *, row: OutboxMessage, result: DeliveryResult, now: datetime
    ) -> None: ...


def posts_needed(sender: Sender, chat: ChatConfig, message: OutboundMessage) -> int:
    return max(1, sender.posts_needed(chat, message)) if isinstance(sender, CountsPosts) else 1


def backoff(attempts: int, rng: random.Random) -> timedelta:
    """Exponential backoff with full jitter: 5 s, 10 s, 20 s … capped at 10 minutes."""
    ceiling = min(MAX_BACKOFF.total_seconds(), 5 * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


@dataclass(eq=False)
class Lane:
    """Rows of one claim for one robot, posted one after another by one task. Lanes of different
    robots run side by side, so a robot that hangs holds back only its own rows. `key` is the
    robot ("" for rows that need no robot: replies on their reply URL, chats no channel serves)."""

    run: str
    key: str
    queue: deque[OutboxMessage]
    fast: bool = False  # replies just claimed by their message's transaction (see OutboxWorker.deliver)
    in_flight: int | None = None  # the row whose post is under way


@dataclass(frozen=True)
class Slots:
    """Rate slots reserved for a post: the robot, the events' stamp and how many."""

    key: str
    stamp: datetime
    count: int


@dataclass(frozen=True)
class Outgoing:
    """A row ready to be posted: its claim renewed and (on a robot) its rate slots reserved."""

    row: OutboxMessage
    chat: ChatConfig
    sender: Sender
    message: OutboundMessage
    log_fields: dict[str, object]
    via_reply: bool = False  # on the message's reply URL only (RepliesDirectly.send_reply)
    rate: Slots | None = None
    posts: int = 1


@dataclass(frozen=True)
class Posted:
    """A post made and not yet recorded. `refused`: the reply URL could not take it; the row goes
    to the chat's robot instead."""

    row: OutboxMessage
    result: DeliveryResult
    channel: str
    log_fields: dict[str, object]
    rate: Slots | None = None
    refused: bool = False


@dataclass
class Waiting:
    """Rows of one lane whose robot has no slot left until `free_at`, and the chats they are for."""

    free_at: datetime
    row_ids: list[int] = field(default_factory=list)
    chats: dict[str, tuple[ChatConfig, Sender | None]] = field(default_factory=dict)

    def add(self, row: OutboxMessage, chat: ChatConfig | None, sender: Sender | None) -> None:
        self.row_ids.append(row.id)
        if chat is not None:
            self.chats[chat.id] = (chat, sender)


def message_of(row: OutboxMessage, chat: ChatConfig, *, reply: bool = True) -> OutboundMessage:
    """What the sender posts. Without `reply` the reply URL is left out: the post goes to the robot."""
    return OutboundMessage(
        chat_id=chat.id, text=row.text, mentions=tuple(row.mentions), key=row.key,
        reply_url=row.reply_url if reply else None, reply_url_expires_at=row.reply_url_expires_at if reply else None,
    )


def wanted(row: OutboxMessage, items: Mapping[int, Item]) -> bool:
    """Still to be sent? A notice that is not a reminder always is; a reminder while its clock
    still runs with the deadline it was queued for (its item gone: no longer)."""
    if row.clock is None or row.item_id is None:
        return True
    item = items.get(row.item_id)
    if item is None:
        return False
    running = {c.name.value: c.due for c in running_clocks(item_clocks(item))}
    return row.clock in running and running[row.clock] == row.clock_due


async def items_of(
    session: AsyncSession, rows: Iterable[OutboxMessage], known: Mapping[int, Item] | None = None
) -> dict[int, Item]:
    """The items the rows are about (but not yet `known`), read in one query (to re-check clocks,
    and to log their numbers)."""
    ids = {row.item_id for row in rows if row.item_id is not None} - set(known or ())
    return await item_store.by_ids(session, ids)


def log_fields(row: OutboxMessage, items: Mapping[int, Item], **more: object) -> dict[str, object]:
    """Fields for structured logs: which row, which intent (idempotency key), which item (#number)."""
    item = items.get(row.item_id) if row.item_id is not None else None
    return {"outbox_id": row.id, "key": row.key, "item": item.number if item is not None else None,
            "chat": row.chat_id, **more}
