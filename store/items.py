"""Item repository: numbering, lookup, unit assignment, to-do queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, func, insert, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from domain.vocab import FINAL_STATUSES, ItemStatus
from store.dialect import on_postgresql
from store.models import Counter, Item, ItemUnit, table_of

_COUNTERS = table_of(Counter)
# Built once (see store/dialect.Prepared): both run on every 上报.
_NEXT = (
    update(_COUNTERS)
    .where(_COUNTERS.c.name == bindparam("counter"))
    .values(value=_COUNTERS.c.value + bindparam("step"))
    .returning(_COUNTERS.c.value)
)
_ADD_UNITS = insert(table_of(ItemUnit))
_ITEMS = table_of(Item)
_ITEM_COLUMNS = tuple(column.key for column in _ITEMS.columns)
_ADD_ITEM = insert(_ITEMS).returning(*_ITEMS.columns)
_ADD_ITEMS = insert(_ITEMS).returning(*_ITEMS.columns, sort_by_parameter_order=True)


async def next_number(session: AsyncSession) -> int:
    """Advance the deployment-wide item counter; the row lock serialises concurrent reporters."""
    return (await next_numbers(session, 1))[0]


async def next_numbers(session: AsyncSession, count: int) -> range:
    """Take `count` consecutive item numbers in one statement. The counter's row stays locked until
    the transaction ends (numbers have no gaps), so callers take them as late as they can."""
    result = await session.execute(_NEXT, {"counter": "item", "step": count})
    last = int(result.scalar_one())
    return range(last - count + 1, last + 1)


async def add(session: AsyncSession, item: Item) -> Item:
    """Insert a new item and attach it to the session as persistent and clean.

    One Core INSERT … RETURNING instead of the unit of work's flush (which on every 上报 cost
    more than the statement): the returned row fills in the id and the column defaults, so that
    nothing of the item is left to load lazily, and later changes in the transaction are flushed
    as UPDATEs as usual."""
    values = {key: value for key, value in inspect(item).dict.items() if key in _ITEM_COLUMNS and key != "id"}
    row = (await session.execute(_ADD_ITEM, values)).one()
    for key in _ITEM_COLUMNS:
        set_committed_value(item, key, getattr(row, key))
    make_transient_to_detached(item)
    session.add(item)
    return item


async def add_many(session: AsyncSession, items: Sequence[Item]) -> None:
    """`add` for many items in one INSERT … RETURNING (insertmanyvalues; rows come back in the
    order given), each attached to the session as persistent and clean."""
    if not items:
        return
    rows = [{key: value for key, value in inspect(item).dict.items() if key in _ITEM_COLUMNS and key != "id"}
            for item in items]
    result = await session.execute(_ADD_ITEMS, rows)
    for item, values, row in zip(items, rows, result.all(), strict=True):
        # Only what the INSERT added (the id, column defaults): the rest is what was inserted, and
        # make_transient_to_detached marks every attribute as committed.
        for key in _ITEM_COLUMNS:
            if key not in values:
                set_committed_value(item, key, getattr(row, key))
        make_transient_to_detached(item)
        session.add(item)


async def add_units_many(session: AsyncSession, assignments: Sequence[tuple[Item, Sequence[str]]]) -> None:
    """The units of new items (that have none yet), in one executemany."""
    rows = [
        {"item_id": item.id, "unit_id": unit_id, "is_lead": position == 0, "position": position}
        for item, unit_ids in assignments for position, unit_id in enumerate(unit_ids)
    ]
    if rows:
        await session.execute(_ADD_UNITS, rows)


async def by_number(session: AsyncSession, number: int) -> Item | None:
    result = await session.execute(select(Item).where(Item.number == number))
    return result.scalar_one_or_none()


async def units_of(session: AsyncSession, item_id: int) -> list[str]:
    """Unit ids of an item, the lead first."""
    result = await session.execute(
        select(ItemUnit.unit_id).where(ItemUnit.item_id == item_id).order_by(ItemUnit.position)
    )
    return list(result.scalars())


async def units_of_many(session: AsyncSession, item_ids: Sequence[int]) -> dict[int, list[str]]:
    """`units_of` for many items in one query (items without units are absent)."""
    if not item_ids:
        return {}
    result = await session.execute(
        select(ItemUnit.item_id, ItemUnit.unit_id).where(ItemUnit.item_id.in_(sorted(set(item_ids))))
        .order_by(ItemUnit.item_id, ItemUnit.position)
    )
    units: dict[int, list[str]] = {}
    for item_id, unit_id in result.all():
        units.setdefault(item_id, []).append(unit_id)
    return units


async def set_units(session: AsyncSession, item: Item, unit_ids: Sequence[str], *, new_item: bool = False) -> None:
    """Replace the item's units; `new_item`: it has none yet, so there is nothing to delete (one
    statement less on every 上报)."""
    if not new_item:
        await session.execute(delete(ItemUnit).where(ItemUnit.item_id == item.id))
    lead = unit_ids[0] if unit_ids else None
    if item.lead_unit_id != lead:  # setting the same value would only dirty the session
        item.lead_unit_id = lead  # written by the autoflush before the next statement
    if unit_ids:
        await session.execute(
            _ADD_UNITS,
            [{"item_id": item.id, "unit_id": unit_id, "is_lead": position == 0, "position": position}
             for position, unit_id in enumerate(unit_ids)],
        )


async def open_for_units(session: AsyncSession, unit_ids: Sequence[str]) -> list[Item]:
    """Open items that any of the units leads or co-handles."""
    in_units = select(ItemUnit.item_id).where(ItemUnit.unit_id.in_(unit_ids))
    result = await session.execute(
        select(Item).where(Item.status.not_in([s.value for s in FINAL_STATUSES]), Item.id.in_(in_units))
    )
    return list(result.scalars())


async def open_reported_in_chat(session: AsyncSession, chat_id: str) -> list[Item]:
    result = await session.execute(
        select(Item).where(Item.chat_id == chat_id, Item.status.not_in([s.value for s in FINAL_STATUSES]))
    )
    return list(result.scalars())


def touch(item: Item, now: datetime) -> None:
    if item.updated_at != now:  # the same instant again (a new item) would only dirty the session
        item.updated_at = now


async def open_all(session: AsyncSession) -> list[Item]:
    result = await session.execute(select(Item).where(Item.status.not_in([s.value for s in FINAL_STATUSES])))
    return list(result.scalars())


# The newest item with a link key since a time, not merged away: a merged item is done with, its
# matter is handled under the item it went into. Built once: it runs on every 上报 with a link.
_BY_LINK_KEY = (
    select(Item)
    .where(
        Item.link_key == bindparam("link_key"),
        Item.reported_at >= bindparam("since"),
        Item.status != ItemStatus.MERGED.value,
    )
    .order_by(Item.reported_at.desc(), Item.id.desc())
    .limit(1)
)


async def latest_by_link_key(session: AsyncSession, link_key: str, since: datetime) -> Item | None:
    """The item a report of the same link is a supplement to: the newest one reported at or after
    `since` with this key, whatever its status but 已合并 (ix_items_link_key; the few rows of one
    key are sorted in memory)."""
    result = await session.execute(_BY_LINK_KEY, {"link_key": link_key, "since": since})
    return result.scalar_one_or_none()


async def latest_by_link_keys(session: AsyncSession, keys: Sequence[str], since: datetime) -> dict[str, Item]:
    """`latest_by_link_key` for many keys in one query: key → the newest such item."""
    if not keys:
        return {}
    result = await session.execute(
        select(Item)
        .where(Item.link_key.in_(sorted(set(keys))), Item.reported_at >= since, Item.status != ItemStatus.MERGED.value)
        .order_by(Item.reported_at.desc(), Item.id.desc())
    )
    found: dict[str, Item] = {}
    for item in result.scalars():
        if item.link_key is not None:
            found.setdefault(item.link_key, item)
    return found


async def page(
    session: AsyncSession, *, statuses: Sequence[str] = (), grade: str | None = None, unit: str | None = None,
    since: datetime | None = None, before_number: int | None = None, limit: int = 50,
) -> list[Item]:
    """Items newest first (by number), after the keyset cursor `before_number`: an item reported
    while a client pages is above its first page, never inside a later one (nothing skipped or
    repeated). `unit`: items assigned to that unit, as lead or co-unit."""
    query = select(Item).order_by(Item.number.desc()).limit(limit)
    if statuses:
        query = query.where(Item.status.in_(list(statuses)))
    if grade is not None:
        query = query.where(Item.grade == grade)
    if unit is not None:
        query = query.where(Item.id.in_(select(ItemUnit.item_id).where(ItemUnit.unit_id == unit)))
    if since is not None:
        query = query.where(Item.reported_at >= since)
    if before_number is not None:
        query = query.where(Item.number < before_number)
    return list((await session.execute(query)).scalars())


_OPEN = [s.value for s in FINAL_STATUSES]


async def earliest_reminder(session: AsyncSession) -> datetime | None:
    """When the earliest reminder point of an open item falls (None when there is none)."""
    result = await session.execute(select(func.min(Item.next_reminder_at)).where(Item.status.not_in(_OPEN)))
    return result.scalar_one()


async def due_for_reminders(session: AsyncSession, now: datetime, limit: int) -> list[Item]:
    """Open items whose next reminder point has come, earliest first. On PostgreSQL the rows are
    locked and rows another replica holds are skipped (its sweep is on them); SQLite has one writer."""
    statement = (
        select(Item).where(Item.next_reminder_at <= now, Item.status.not_in(_OPEN))
        .order_by(Item.next_reminder_at).limit(limit)
    )
    if on_postgresql(session):
        statement = statement.with_for_update(skip_locked=True)
    return list((await session.execute(statement)).scalars())


async def by_ids(session: AsyncSession, ids: Iterable[int]) -> dict[int, Item]:
    wanted = set(ids)
    if not wanted:
        return {}
    result = await session.execute(select(Item).where(Item.id.in_(wanted)))
    return {item.id: item for item in result.scalars()}


async def lock(session: AsyncSession, item: Item) -> None:
    """Hold the item's row until the transaction ends (re-reading it): two changes that must not
    both see the old state — two 回应 both taken for the first — wait for each other. (PostgreSQL;
    SQLite has one writer anyway and ignores FOR UPDATE.)"""
    await session.refresh(item, with_for_update=True)
