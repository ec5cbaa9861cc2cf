"""Events for other systems (outgoing webhooks, [[webhooks]] in the config).

An operation's event becomes one outbox row per subscriber that wants it, queued in the
operation's own transaction: the event exists if and only if the operation committed. Each row
is keyed by (subscriber, the event's identity) — the item and the audit row, or the clock and its
deadline — so a replayed message, a retried request or a second sweep never queues it twice; the
outbox worker posts it signed (bot/webhook_send.py) and retries it until the receiver takes it.

The body is written here, once: the envelope {id, type, created_at, data} with the item as it is
at the event (handlers/ops/item_json.py). Its id is new for each event, shared by the event's
subscribers and kept across retries (the row keeps the body). A 涉密 item's body carries only
the authorised summary, and none of the reason or result texts, unless the subscriber is cleared
for it (`classified = true`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.config import Config, WebhookSubscriber
from domain.config.webhooks import target_of
from domain.directory import Directory
from handlers.ops.base import Actor, Work
from handlers.ops.item_json import iso, item_json
from store import items as item_store
from store import outbox
from store.models import Item

if TYPE_CHECKING:  # the operations call this module: their events are named for the type checker only
    from handlers.ops.close import ItemClosed
    from handlers.ops.grade import ItemGraded


@dataclass(frozen=True)
class Event:
    """What happened to an item, before each subscriber's view of it. `identity` names the event
    within the deployment (the subscriber's idempotency key adds the subscriber); `data` gives the
    fields besides the item, for a reader who sees all of a 涉密 item or not."""

    type: str
    identity: str
    item: Item
    units: Sequence[str]
    data: Callable[[bool], dict[str, Any]]


def actor_json(actor: Actor) -> dict[str, str]:
    return {"id": actor.id, "name": actor.name, "kind": actor.kind.value}


async def reported(work: Work, actor: Actor, items: Sequence[Item]) -> None:
    """item.reported for new items (one, or a batch from the intake API). A new item's units are
    its lead unit alone, so nothing is read for them."""
    if not wanted_by(work.config, "item.reported"):
        return
    events = [
        Event("item.reported", f"item{item.id}:reported", item, [item.lead_unit_id] if item.lead_unit_id else [],
              lambda _: {"actor": actor_json(actor)})
        for item in items
    ]
    await publish(work.session, work.config, work.directory, work.now, events)


async def graded(work: Work, event: ItemGraded) -> None:
    if not wanted_by(work.config, "item.graded"):
        return

    def data(sees_all: bool) -> dict[str, Any]:
        return {"grade": event.grade.value, "previous_grade": event.old.value if event.old else None,
                "reason": (event.reason or None) if sees_all else None, "actor": actor_json(event.by)}

    await publish(work.session, work.config, work.directory, work.now, [
        Event("item.graded", f"item{event.item.id}:graded:{event.event_id}", event.item, event.units, data)
    ])


async def closed(work: Work, event: ItemClosed) -> None:
    if not wanted_by(work.config, "item.closed"):
        return
    item = event.item

    def data(sees_all: bool) -> dict[str, Any]:
        # How it ended is the item's status (closed, no_response, merged); a merged item names its target.
        return {"verdict": item.verdict if sees_all else None, "actor": actor_json(event.by),
                "merged_into": item.merged_into}

    units = await item_store.units_of(work.session, item.id)
    await publish(work.session, work.config, work.directory, work.now, [
        Event("item.closed", f"item{item.id}:closed:{event.event_id}", item, units, data)
    ])


async def overdue(
    session: AsyncSession, config: Config, directory: Directory, now: datetime, item: Item, clock: str, due: datetime
) -> None:
    """item.overdue: the first overdue notice of one of the item's deadlines (grade, pass_on,
    response) was queued. A regrade that moves the deadline makes a new one."""
    if not wanted_by(config, "item.overdue"):
        return
    units = await item_store.units_of(session, item.id)
    identity = f"item{item.id}:overdue:{clock}:{due:%Y%m%dT%H%M%SZ}"
    await publish(session, config, directory, now, [
        Event("item.overdue", identity, item, units, lambda _: {"clock": clock, "due_at": iso(due)})
    ])


def wanted_by(config: Config, event_type: str) -> bool:
    """Whether any subscriber wants this kind of event (else nothing is read nor written)."""
    return any(subscriber.wants(event_type) for subscriber in config.webhooks)


def covers(subscriber: WebhookSubscriber, units: Sequence[str], directory: Directory) -> bool:
    """Whether an item of these units is the subscriber's: one of them, or a unit above one of
    them, is in its `units` filter (no filter: every item)."""
    if subscriber.units is None:
        return True
    wanted = set(subscriber.units)
    return any(wanted.intersection(directory.ancestors(unit)) for unit in units)


async def publish(
    session: AsyncSession, config: Config, directory: Directory, now: datetime, events: Sequence[Event]
) -> int:
    """Queue each event for every subscriber that wants it; returns the rows offered (a key
    queued before is skipped by the outbox)."""
    subscribers = config.webhooks
    if not subscribers or not events:
        return 0
    rows = []
    for event in events:
        bodies: dict[bool, str] = {}  # the event's body for a reader who sees all of it, or not
        envelope_id = str(uuid.uuid4())
        for subscriber in subscribers:
            if not subscriber.wants(event.type) or not covers(subscriber, event.units, directory):
                continue
            sees_all = not event.item.classified or subscriber.classified
            if sees_all not in bodies:
                bodies[sees_all] = _body(envelope_id, event, directory, now, sees_all)
            rows.append({"key": f"webhook:{subscriber.id}:{event.identity}", "chat_id": target_of(subscriber.id),
                         "text": bodies[sees_all], "item_id": event.item.id})
    await outbox.enqueue_documents(session, rows, now=now)
    return len(rows)


def _body(envelope_id: str, event: Event, directory: Directory, now: datetime, sees_all: bool) -> str:
    item = item_json(event.item, event.units, directory, now, sees_all=sees_all)
    envelope = {"id": envelope_id, "type": event.type, "created_at": iso(now),
                "data": {"item": item, **event.data(sees_all)}}
    # Compact UTF-8: the receiver verifies the signature over these exact bytes.
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
