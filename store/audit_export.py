"""Reading the audit trail for `dutybot audit export` (bot/cli_audit.py): in order and in batches,
the whole trail or one item's rows, and which items were ever a unit's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Item, ItemEvent, ItemUnit

# The actions whose before/after name the units an item had at the time: its lead at 上报, every
# 转办 (before and after), a unit's 退回 and a co-unit's 签收.
_UNIT_ACTIONS = ("reported", "assigned", "returned", "co_acknowledged")


@dataclass(frozen=True)
class ExportedEvent:
    event: ItemEvent
    number: int | None  # the item's number, None for a row about no item (the roster, tokens)
    classified: bool  # the item is 涉密 now: the file that carries its rows must be handled so


def named_units(payload: Mapping[str, Any]) -> set[str]:
    """The units an audit row's before/after names: as the lead, as the unit, among the units."""
    found = {value for key in ("lead_unit_id", "unit") if isinstance(value := payload.get(key), str)}
    units = payload.get("units")
    if isinstance(units, list):
        found.update(unit for unit in units if isinstance(unit, str))
    return found


async def unit_item_ids(session: AsyncSession, unit_id: str) -> set[int]:
    """The items the unit is, or ever was, lead or co-unit of. An item transferred away (转办) or
    handed back (退回) stays the unit's for 考核: its rows of the time are the unit's record."""
    found = set((await session.scalars(select(ItemUnit.item_id).where(ItemUnit.unit_id == unit_id))).all())
    found.update((await session.scalars(select(Item.id).where(Item.lead_unit_id == unit_id))).all())
    rows = await session.execute(
        select(ItemEvent.item_id, ItemEvent.before, ItemEvent.after)
        .where(ItemEvent.action.in_(_UNIT_ACTIONS), ItemEvent.item_id.is_not(None))
    )
    for item_id, before, after in rows:
        if item_id not in found and unit_id in named_units(before or {}) | named_units(after or {}):
            found.add(item_id)
    return found


async def stream(
    session: AsyncSession, since: datetime, *, item_id: int | None = None, batch: int = 1000
) -> AsyncIterator[ExportedEvent]:
    """Rows at or after `since` in the order they were written (id), read in batches (keyset paging,
    so that 100,000 rows never sit in memory at once); only one item's when `item_id` is given."""
    last_id = 0
    query = (
        select(ItemEvent, Item.number, Item.classified)
        .outerjoin(Item, Item.id == ItemEvent.item_id)
        .where(ItemEvent.at >= since)
        .order_by(ItemEvent.id)
        .limit(batch)
    )
    if item_id is not None:
        query = query.where(ItemEvent.item_id == item_id)
    while True:
        result = await session.execute(query.where(ItemEvent.id > last_id))
        rows = [ExportedEvent(row[0], row[1], bool(row[2])) for row in result.all()]
        if not rows:
            return
        for row in rows:
            yield row
        last_id = rows[-1].event.id
