"""The audit trail summed up in the database, item by item: what a 定期通报 over a month of a busy
province (100,000 items, most of a million audit rows) needs, in a few queries that return about
one row per item (handlers/records/facts.py `period_facts` gives the rows their meaning).

Per item, from its rows written before the cut (one GROUP BY over the run of item ids, read from the
index on (item_id, action, at) alone): the first and last 签收, the first 回应, when it was 办结 /
不予回应 / 合并, when it was marked 涉密 or the mark lifted, how many times its lead may have moved
(转办 / 退回) and its latest grading. Then, by the index on (action, at), the window's "reported" rows
(the lead at the report, the 涉密 mark) and grading rows (grade and deadlines) — every JSON field read
by the database, so Python gets plain values; the lead rows of the items whose lead moved; the
reminders delivered in a window counted per item (the rows themselves only for the items whose lead
moved: a reminder counts for the lead of its time).

Times come back as the driver gives them (text on SQLite, datetimes on PostgreSQL): `utc()` reads
both, much faster than the column type's own conversion over a million values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import String, and_, bindparam, case, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from store.models import Item, ItemEvent, table_of

GRADINGS = ("graded", "regraded")
LEAD_ACTIONS = ("reported", "assigned", "returned")
ENDINGS = ("closed", "no_response", "merged")
# The rows summed up per item (the report's and the gradings' are read apart, for their JSON).
STEP_ACTIONS = (*GRADINGS, "assigned", "returned", "acknowledged", "responded", *ENDINGS, "classified", "declassified")
_CHUNK = 1000
_ITEMS = table_of(Item)
_EVENTS = table_of(ItemEvent)


class StepRow(NamedTuple):
    """Per item, from its rows before the cut (None: no such row)."""

    item_id: int
    grading_id: int | None  # the latest 定级 / 调整等级 row
    first_ack: Any
    last_ack: Any
    responded: Any  # the first 回应
    closed: Any
    no_response: Any
    merged: Any
    lead_moves: int  # 转办 / 退回 rows: 0 means the lead at the report is the lead throughout
    classified_at: Any  # the latest 标记涉密
    declassified_at: Any  # the latest 解除涉密


class ReportRow(NamedTuple):
    """An item's "reported" row: the item as it was reported."""

    item_id: int
    at: Any  # utc() reads it
    number: Any  # the JSON number as the database gives it
    lead: str | None
    classified: Any  # the JSON flag as the database gives it (1, "true", …)


class GradingRow(NamedTuple):
    item_id: int
    id: int
    at: Any
    grade: str | None
    pass_on_due: str | None  # ISO text, as the grading recorded it
    response_due: str | None


class LeadRow(NamedTuple):
    item_id: int
    at: Any
    action: str
    units: Any  # the units (assigned / returned): JSON text or a list, as the driver gives it
    reported_lead: str | None  # the lead at the report (reported)


class ReminderRow(NamedTuple):
    item_id: int
    at: Any
    key: str | None


def utc(value: Any) -> datetime | None:
    """A time as the driver returns it (SQLite: text in UTC; PostgreSQL: an aware datetime)."""
    if value is None:
        return None
    if isinstance(value, str):
        # Parsed with its zone in the text: five times faster than parsing, then replace(tzinfo=…).
        return datetime.fromisoformat(value + "+00:00")
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else datetime.combine(value.date(), value.time(), UTC)
    raise TypeError(f"not a time: {value!r}")


def _raw(expression: Any) -> ColumnElement[Any]:
    """The value as the driver returns it, without the column type's conversion (see utc())."""
    return type_coerce(expression, String)


def _ids(column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN (…)` with the ids written into the statement: with a parameter each, PostgreSQL
    plans the statement once for all the chunks (a generic plan, after five) and, unable to tell how
    few rows a chunk matches, scans the whole window instead of the index."""
    condition: ColumnElement[bool] = column.in_(
        bindparam("ids", value=[int(i) for i in ids], expanding=True, literal_execute=True))
    return condition


def _when(action: str | Sequence[str], value: Any) -> Any:
    condition = _EVENTS.c.action.in_(list(action)) if not isinstance(action, str) else _EVENTS.c.action == action
    return case((condition, value))


def _first(action: str | Sequence[str]) -> Any:
    return _raw(func.min(_when(action, _EVENTS.c.at)))


def _last(action: str | Sequence[str]) -> Any:
    return _raw(func.max(_when(action, _EVENTS.c.at)))


async def _all(session: AsyncSession, statement: Any) -> Sequence[Any]:
    """The statement's rows, fetched by the driver itself (in the session's transaction): SQLAlchemy's
    result layer doubles the cost of a hundred thousand rows. The statement is compiled by the
    session's dialect as usual, and its parameters go through their types' own bind processing (the
    UTC time, the JSON path), as SQLAlchemy would send them."""
    connection = await session.connection()
    compiled: Any = statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    sqlite = connection.dialect.name == "sqlite"
    processors = compiled._bind_processors  # SQLAlchemy's per-parameter processing, as execute() applies it
    values = compiled.params  # built anew on each access
    params = [_bind(processors.get(name), values[name]) for name in compiled.positiontup or ()]
    driver: Any = (await connection.get_raw_connection()).driver_connection
    if not sqlite:
        return list(await driver.fetch(str(compiled), *params))
    cursor = await driver.execute(str(compiled), params)
    try:
        return list(await cursor.fetchall())
    finally:
        await cursor.close()


def _bind(processor: Any, value: Any) -> Any:
    return processor(value) if processor is not None and value is not None else value


def _steps(where: ColumnElement[bool], cut: datetime) -> Any:
    e = _EVENTS
    return (
        select(
            e.c.item_id, func.max(_when(GRADINGS, e.c.id)),
            _first("acknowledged"), _last("acknowledged"), _first("responded"), _first("closed"),
            _first("no_response"), _first("merged"), func.count(_when(("assigned", "returned"), e.c.id)),
            _last("classified"), _last("declassified"),
        )
        .where(where, e.c.at < cut, e.c.action.in_(list(STEP_ACTIONS)))
        .group_by(e.c.item_id)
    )


async def step_rows(session: AsyncSession, first_id: int, last_id: int, cut: datetime) -> list[StepRow]:
    """Per item with first_id ≤ id ≤ last_id: its steps before `cut`. Items are numbered as they are
    reported, so the items of a window of time are a run of ids: the scan follows the index on
    (item_id, action, at) and reads nothing else."""
    where = and_(_EVENTS.c.item_id >= first_id, _EVENTS.c.item_id <= last_id)
    return [StepRow(*row) for row in await _all(session, _steps(where, cut))]


async def step_rows_of(session: AsyncSession, ids: Iterable[int], cut: datetime) -> list[StepRow]:
    wanted = sorted(set(ids))
    found: list[StepRow] = []
    for first in range(0, len(wanted), _CHUNK):
        statement = _steps(_ids(_EVENTS.c.item_id, wanted[first:first + _CHUNK]), cut)
        found += [StepRow(*row) for row in await _all(session, statement)]
    return found


def _report_columns() -> tuple[Any, ...]:
    e = _EVENTS
    return (e.c.item_id, _raw(e.c.at), e.c.after["number"].as_string(), e.c.after["lead_unit_id"].as_string(),
            e.c.after["classified"].as_string())


async def report_rows(session: AsyncSession, start: datetime, end: datetime) -> list[ReportRow]:
    """The items reported at `start` ≤ at < `end`, in the order of their ids: their "reported" rows (number, lead at
    the report, 涉密 mark)."""
    e = _EVENTS
    statement = select(*_report_columns()).where(e.c.action == "reported", e.c.at >= start, e.c.at < end)
    return sorted((ReportRow(*row) for row in await _all(session, statement)), key=_by_item)


def _by_item(row: ReportRow) -> int:
    return row.item_id


async def grading_rows(session: AsyncSession, start: datetime, end: datetime) -> list[GradingRow]:
    """The 定级 / 调整等级 rows written at `start` ≤ at < `end`, with the grade and deadlines each set."""
    e = _EVENTS
    statement = (select(e.c.item_id, e.c.id, _raw(e.c.at), e.c.after["grade"].as_string(),
                        e.c.after["pass_on_due_at"].as_string(), e.c.after["response_due_at"].as_string())
                 .where(e.c.action.in_(list(GRADINGS)), e.c.at >= start, e.c.at < end))
    return [GradingRow(*row) for row in await _all(session, statement)]


async def report_rows_of(session: AsyncSession, ids: Iterable[int]) -> list[ReportRow]:
    e = _EVENTS
    wanted = sorted(set(ids))
    found: list[ReportRow] = []
    for first in range(0, len(wanted), _CHUNK):
        statement = select(*_report_columns()).where(e.c.action == "reported",
                                                     _ids(e.c.item_id, wanted[first:first + _CHUNK]))
        found += [ReportRow(*row) for row in await _all(session, statement)]
    return found


async def grading_rows_of(session: AsyncSession, ids: Iterable[int], cut: datetime) -> list[GradingRow]:
    e = _EVENTS
    wanted = sorted(set(ids))
    found: list[GradingRow] = []
    for first in range(0, len(wanted), _CHUNK):
        statement = (select(e.c.item_id, e.c.id, _raw(e.c.at), e.c.after["grade"].as_string(),
                            e.c.after["pass_on_due_at"].as_string(), e.c.after["response_due_at"].as_string())
                     .where(e.c.action.in_(list(GRADINGS)), e.c.at < cut,
                            _ids(e.c.item_id, wanted[first:first + _CHUNK])))
        found += [GradingRow(*row) for row in await _all(session, statement)]
    return found


async def lead_rows(session: AsyncSession, ids: Iterable[int], cut: datetime) -> list[LeadRow]:
    """The rows that set these items' units (reported, assigned, returned) before `cut`."""
    e = _EVENTS
    wanted = sorted(set(ids))
    found: list[LeadRow] = []
    for first in range(0, len(wanted), _CHUNK):
        statement = (
            select(e.c.item_id, _raw(e.c.at), e.c.action, _raw(e.c.after["units"]),
                   e.c.after["lead_unit_id"].as_string())
            .where(_ids(e.c.item_id, wanted[first:first + _CHUNK]), e.c.at < cut, e.c.action.in_(list(LEAD_ACTIONS)))
            .order_by(e.c.item_id, e.c.at, e.c.id)
        )
        found += [LeadRow(*row) for row in await _all(session, statement)]
    return found


def _reminder_filter(start: datetime, end: datetime) -> tuple[Any, ColumnElement[bool]]:
    """The reminders (提醒 and 催办 of the 签收 and 回应 clocks) delivered at `start` ≤ at < `end`: notices
    whose key is a reminder's (handlers/deadline_rules.Point.key) — not the 定级 clock's, which go to
    the duty officers, and not the coordinators' copies (their key has the chat after it)."""
    e = _EVENTS
    key = e.c.after["key"].as_string()
    colons = func.length(key) - func.length(func.replace(key, ":", ""))
    return key, and_(e.c.action == "notice", e.c.at >= start, e.c.at < end, e.c.item_id.is_not(None),
                     key.like("remind:%"), ~key.like("remind:item%:grade:%"), colons == 5)


async def reminder_counts(session: AsyncSession, start: datetime, end: datetime) -> dict[int, tuple[int, int]]:
    """Per item: (提醒, 催办) delivered at `start` ≤ at < `end`. The key is read once per row in a
    subquery the planner keeps apart (OFFSET 0): referenced five times, it would be parsed five times."""
    e = _EVENTS
    notices = (select(e.c.item_id.label("item_id"), e.c.after["key"].as_string().label("key"))
               .where(e.c.action == "notice", e.c.at >= start, e.c.at < end, e.c.item_id.is_not(None))
               .offset(0).subquery())
    key = notices.c.key
    colons = func.length(key) - func.length(func.replace(key, ":", ""))
    overdue = key.like("%:overdue:%")
    statement = (
        select(notices.c.item_id, func.sum(case((overdue, 0), else_=1)), func.sum(case((overdue, 1), else_=0)))
        .where(key.like("remind:%"), ~key.like("remind:item%:grade:%"), colons == 5)
        .group_by(notices.c.item_id)
    )
    return {int(row[0]): (int(row[1]), int(row[2])) for row in await _all(session, statement)}


async def reminder_rows(session: AsyncSession, ids: Iterable[int], start: datetime, end: datetime) -> list[ReminderRow]:
    """One row per notice delivered at `start` ≤ at < `end` about these items (those whose lead moved:
    a reminder counts for the lead of its time), with its key — the caller keeps the reminders'
    (facts.parse_reminder). No condition on the key here: the planner cannot guess how many rows one
    on a JSON field keeps, and would scan the window's every notice instead of taking the index on
    (item_id, action, at)."""
    e = _EVENTS
    key = e.c.after["key"].as_string()
    wanted = sorted(set(ids))
    found: list[ReminderRow] = []
    for first in range(0, len(wanted), _CHUNK):
        statement = select(e.c.item_id, _raw(e.c.at), key).where(
            _ids(e.c.item_id, wanted[first:first + _CHUNK]), e.c.action == "notice", e.c.at >= start, e.c.at < end)
        found += [ReminderRow(*row) for row in await _all(session, statement)]
    return found


async def summaries(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    """The reported text of these items (only the few a notice lists are asked for)."""
    items = _ITEMS
    wanted = sorted(set(ids))
    found: dict[int, str] = {}
    for first in range(0, len(wanted), _CHUNK):
        statement = select(items.c.id, items.c.summary).where(_ids(items.c.id, wanted[first:first + _CHUNK]))
        found.update((int(item_id), str(summary)) for item_id, summary in await _all(session, statement))
    return found


async def authorised_summaries(session: AsyncSession, ids: Iterable[int], cut: datetime) -> dict[int, str | None]:
    """The authorised summary of the latest 涉密 mark before `cut` of each of these items."""
    e = _EVENTS
    wanted = sorted(set(ids))
    found: dict[int, str | None] = {}
    for first in range(0, len(wanted), _CHUNK):
        statement = (
            select(e.c.item_id, e.c.after["authorised_summary"].as_string())
            .where(_ids(e.c.item_id, wanted[first:first + _CHUNK]), e.c.action == "classified", e.c.at < cut)
            .order_by(e.c.at, e.c.id)
        )
        for item_id, summary in await _all(session, statement):
            found[int(item_id)] = summary
    return found
