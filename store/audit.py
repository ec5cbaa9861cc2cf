"""The append-only audit trail. Rows are only ever inserted, never updated or deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Item, ItemEvent, table_of

_EVENTS = table_of(ItemEvent)
# Built once: every command that changes something writes an entry.
_RECORD = insert(_EVENTS).returning(_EVENTS.c.id)
_RECORD_MANY = insert(_EVENTS)


async def record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    item_id: int | None = None,
    chat_id: str | None = None,
    detail: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> int:
    """Add an audit entry; returns its id."""
    result = await session.execute(
        _RECORD,
        {
            "item_id": item_id, "at": at, "actor": actor, "chat_id": chat_id, "action": action,
            "detail": detail, "before": before or {}, "after": after or {},
        },
    )
    return int(result.scalar_one())


async def record_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Many audit entries in one executemany; each row has the keys of `record`'s arguments."""
    if rows:
        await session.execute(_RECORD_MANY, [
            {"item_id": row.get("item_id"), "at": row["at"], "actor": row["actor"], "chat_id": row.get("chat_id"),
             "action": row["action"], "detail": row.get("detail", ""), "before": row.get("before") or {},
             "after": row.get("after") or {}}
            for row in rows
        ])


async def last_of(session: AsyncSession, item_id: int, actions: Sequence[str]) -> tuple[str, datetime] | None:
    """Who did the latest of these actions on the item, and when (e.g. the grader a downgrade names)."""
    result = await session.execute(
        select(ItemEvent.actor, ItemEvent.at)
        .where(ItemEvent.item_id == item_id, ItemEvent.action.in_(actions))
        .order_by(ItemEvent.id.desc())
        .limit(1)
    )
    row = result.first()
    return None if row is None else (str(row.actor), row.at)


async def timeline(session: AsyncSession, item_id: int) -> list[ItemEvent]:
    result = await session.execute(
        select(ItemEvent).where(ItemEvent.item_id == item_id).order_by(ItemEvent.at, ItemEvent.id)
    )
    return list(result.scalars())


async def stream_since(
    session: AsyncSession, since: datetime, batch: int = 1000
) -> AsyncIterator[tuple[ItemEvent, int | None]]:
    """Events at or after `since` in order, with the item number, read in batches (keyset paging)."""
    last_id = 0
    while True:
        result = await session.execute(
            select(ItemEvent, Item.number)
            .outerjoin(Item, Item.id == ItemEvent.item_id)
            .where(ItemEvent.at >= since, ItemEvent.id > last_id)
            .order_by(ItemEvent.id)
            .limit(batch)
        )
        rows = [(row[0], row[1]) for row in result.all()]
        if not rows:
            return
        for event, number in rows:
            yield event, number
        last_id = rows[-1][0].id
