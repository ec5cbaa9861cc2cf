"""The audit rows the records' facts are replayed from (handlers/records/facts.py): every row that
matters of the items of a window, for anyone who wants each item's whole story (the daily log, a
专报, the tests' cross-check of the 定期通报). The 定期通报 itself reads the database's sums instead
(store/records_clocks.py): a month of 100,000 items is most of a million rows.

Read in bulk, in a few queries whatever the number of items: the items reported in a window, every
row of theirs written before a cut, and the items that got a reminder in a window (one reported long
before). Rows come back as plain tuples (no ORM objects: building those costs more than the query),
the JSON `after` only for the actions whose meaning is in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Item, ItemEvent, table_of

# The actions whose `after` the facts read; the other rows need only who, what and when.
WITH_AFTER = ("reported", "graded", "regraded", "assigned", "returned", "classified", "declassified", "notice",
              "merged", "zero_report")
REMINDER_PREFIX = "remind:"
_CHUNK = 1000  # ids per IN (…) list


class ItemRow(NamedTuple):
    """What an item is (not what became of it: that is in its audit rows)."""

    id: int
    number: int
    chat_id: str
    summary: str
    reported_at: datetime
    reported_by: str


class AuditRow(NamedTuple):
    """One audit row, as the facts read it."""

    id: int
    item_id: int | None
    at: datetime
    actor: str
    action: str
    detail: str
    after: dict[str, Any]  # empty for the actions whose `after` is not read (WITH_AFTER)


def _audit_rows(rows: Sequence[Any]) -> list[AuditRow]:
    return [AuditRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6] or {}) for row in rows]


# Core columns, run on the session's connection: the ORM would turn every row into its own
# result object on the way, which costs more than the query on a month of rows.
_ITEMS = table_of(Item)
_EVENTS = table_of(ItemEvent)
_ITEM_COLUMNS = (_ITEMS.c.id, _ITEMS.c.number, _ITEMS.c.chat_id, _ITEMS.c.summary, _ITEMS.c.reported_at,
                 _ITEMS.c.reported_by)
_AFTER = case((_EVENTS.c.action.in_(WITH_AFTER), _EVENTS.c.after), else_=None).label("after")
_ROW_COLUMNS = (_EVENTS.c.id, _EVENTS.c.item_id, _EVENTS.c.at, _EVENTS.c.actor, _EVENTS.c.action,
                _EVENTS.c.detail, _AFTER)


async def _all(session: AsyncSession, statement: Any) -> Sequence[Any]:
    connection = await session.connection()
    return (await connection.execute(statement)).all()


async def items_reported(session: AsyncSession, start: datetime, end: datetime) -> list[ItemRow]:
    """The items reported at `start` ≤ reported_at < `end`."""
    rows = await _all(session, select(*_ITEM_COLUMNS).where(_ITEMS.c.reported_at >= start, _ITEMS.c.reported_at < end))
    return [ItemRow(*row) for row in rows]


async def items_by_ids(session: AsyncSession, ids: Iterable[int]) -> list[ItemRow]:
    wanted = sorted(set(ids))
    found: list[ItemRow] = []
    for first in range(0, len(wanted), _CHUNK):
        rows = await _all(session, select(*_ITEM_COLUMNS).where(_ITEMS.c.id.in_(wanted[first:first + _CHUNK])))
        found += [ItemRow(*row) for row in rows]
    return found


async def rows_of_reported(
    session: AsyncSession, start: datetime, end: datetime, cut: datetime, actions: Sequence[str]
) -> list[AuditRow]:
    """The rows of these actions, written before `cut`, of the items reported at `start` ≤ reported_at
    < `end` (one query: a join on the items' report time)."""
    return _audit_rows(await _all(session, (
        select(*_ROW_COLUMNS)
        .join(_ITEMS, _ITEMS.c.id == _EVENTS.c.item_id)
        .where(_ITEMS.c.reported_at >= start, _ITEMS.c.reported_at < end, _EVENTS.c.at < cut,
               _EVENTS.c.action.in_(list(actions)))
    )))


async def rows_of_items(
    session: AsyncSession, ids: Iterable[int], cut: datetime, actions: Sequence[str]
) -> list[AuditRow]:
    """The rows of these actions, written before `cut`, of these items."""
    wanted = sorted(set(ids))
    rows: list[AuditRow] = []
    for first in range(0, len(wanted), _CHUNK):
        rows += _audit_rows(await _all(session, (
            select(*_ROW_COLUMNS)
            .where(_EVENTS.c.item_id.in_(wanted[first:first + _CHUNK]), _EVENTS.c.at < cut,
                   _EVENTS.c.action.in_(list(actions)))
        )))
    return rows


async def reminded_item_ids(session: AsyncSession, start: datetime, end: datetime) -> set[int]:
    """The items a reminder (提醒 or 催办) was delivered about at `start` ≤ at < `end`."""
    key = _EVENTS.c.after["key"].as_string()
    rows = await _all(session, (
        select(_EVENTS.c.item_id).distinct()
        .where(_EVENTS.c.at >= start, _EVENTS.c.at < end, _EVENTS.c.action == "notice",
               _EVENTS.c.item_id.is_not(None), key.startswith(REMINDER_PREFIX))
    ))
    return {int(row[0]) for row in rows if row[0] is not None}


async def rows_between(session: AsyncSession, start: datetime, end: datetime, actions: Sequence[str]) -> list[AuditRow]:
    """The rows of these actions at `start` ≤ at < `end` (e.g. the 零报告 of a period)."""
    return _audit_rows(await _all(session, (
        select(*_ROW_COLUMNS).where(_EVENTS.c.at >= start, _EVENTS.c.at < end, _EVENTS.c.action.in_(list(actions)))
    )))

