"""The audit trail read in bulk for the 定期通报 over a month of a busy province (100,000 items, most
of a million audit rows; issue #16 point 7): each kind of row in one query, in the order written,
with only the fields a notice reads (handlers/records/period_facts.py gives the rows their meaning).

- `report_rows`, `grading_rows`, `move_rows`: the window's "reported" rows (the number, the lead at
  the report, the 涉密 mark), 定级 / 调整等级 rows (grade, deadlines) and 转办 / 退回 rows (units),
  their JSON read by the database from the partial index of migration 0010 that holds these rows,
  JSON and all (no read of each row where it lies, among the notices).
- `action_times`: the (item, time) of the rows of one kind — the 签收, 回应, ends, 涉密 marks — from
  the index on (action, at, item_id) alone (migration 0010), without a GROUP BY: a sum per item
  over the index on (item_id, …) cost twice as much on SQLite, whose aggregates are slow.
- `reminder_counts`: the reminders delivered in a window, counted per item from the partial indexes
  of migration 0010, which hold the notices whose key is a 提醒's or a 催办's: no JSON is read.
  `reminder_times`: the same rows one by one, for the few items whose lead moved.

Rows come back as the driver's own tuples (fields in the order each query's docstring gives), with
no NamedTuple per row and no SQLAlchemy result layer: at a hundred thousand rows either costs as
much as the query. Times come back as ISO text in UTC (`_At`): datetime.fromisoformat reads it five
times faster than the column type (SQLite) or the driver (PostgreSQL) makes a datetime.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    String,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from store.models import Item, ItemEvent, UTCDateTime, table_of

GRADINGS = ("graded", "regraded")
MOVES = ("assigned", "returned")
ENDINGS = ("closed", "no_response", "merged")
# The partial indexes of migration 0010 (their WHERE, below, must stay word for word theirs: the
# planners use a partial index only for a query that repeats its condition).
REMINDER_INDEXES = {False: "ix_item_events_reminders", True: "ix_item_events_urges"}
# The rows whose JSON a notice reads: 0010 keeps them, JSON and all, in a partial index of their own,
# which a query of them names by repeating its condition.
FACT_ACTIONS = ("reported", "graded", "regraded", "assigned", "returned")
FACTS_CONDITION = f"action IN ({', '.join(repr(action) for action in FACT_ACTIONS)})"
_KEY = {"sqlite": """json_extract("after", '$.key')""", "postgresql": """("after" ->> 'key')"""}
_ITEMS = table_of(Item)
_EVENTS = table_of(ItemEvent)


def reminder_condition(dialect: str, overdue: bool) -> str:
    """The notices whose key is a reminder's (handlers/deadline_rules.Point.key:
    remind:item<id>:<clock>:<stage>:<occurrence>:<deadline>) — not the 定级 clock's, which go to the
    duty officers, and not the coordinators' copies (their key has the chat after it) — that are
    催办 (`overdue`: the stage is "overdue") or 提醒 (not)."""
    key = _KEY[dialect]
    return (f"action = 'notice' AND item_id IS NOT NULL AND {key} LIKE 'remind:%' "
            f"AND {key} NOT LIKE 'remind:item%:grade:%' AND length({key}) - length(replace({key}, ':', '')) = 5 "
            f"AND {key} {'' if overdue else 'NOT '}LIKE '%:overdue:%'")


def times(values: Iterable[str]) -> list[datetime]:
    """Times as the queries here give them (`_At`), read at once: no Python call per time."""
    return list(map(datetime.fromisoformat, values))


def time_of(value: str) -> datetime:
    """One time as the queries here give it (`_At`)."""
    return datetime.fromisoformat(value)


def units_of(value: Any) -> list[Any]:
    """The units of a 转办 / 退回 row: JSON text, or already a list (the driver's own decoding)."""
    if isinstance(value, str):
        return list(json.loads(value))
    return list(value or [])


def _raw(expression: Any) -> ColumnElement[Any]:
    """The value as the driver returns it, without the column type's conversion."""
    return type_coerce(expression, String)


# SQLite: the column type's own text (always with microseconds), in UTC, its zone written after it.
# PostgreSQL: its own text of a time follows DateStyle; to_char does not.
_TEXT = {"sqlite": "({} || '+00:00')",
         "postgresql": """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US"+00:00"')"""}


class _At(FunctionElement[Any]):
    """A stored time as ISO text in UTC with its zone, whatever the database: datetime.fromisoformat
    reads it five times faster than the column type (SQLite) or the driver (PostgreSQL) makes a
    datetime, over the million times of a month (`times`, `time_of`). Of a fixed width: one
    database's texts compare as their times."""

    inherit_cache = True
    type = String()


@compiles(_At)
def _at_text(element: _At, compiler: Any, **kw: Any) -> str:
    return _TEXT["postgresql"].format(compiler.process(element.clauses, **kw))


@compiles(_At, "sqlite")
def _at_zoned(element: _At, compiler: Any, **kw: Any) -> str:
    return _TEXT["sqlite"].format(compiler.process(element.clauses, **kw))


def _at(column_: Any) -> Any:
    return _At(column_)


async def _dialect(session: AsyncSession) -> str:
    return (await session.connection()).dialect.name


def _in(dialect: str, column_: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """`column IN (these ids)` with one parameter, however many: a JSON array on SQLite, an array
    on PostgreSQL (a statement of its own per thousand ids would be compiled and planned each time)."""
    wanted = sorted({int(i) for i in ids})
    if dialect == "sqlite":
        listed: Any = select(literal_column("value")).select_from(func.json_each(bindparam("ids", json.dumps(wanted))))
        condition: ColumnElement[bool] = column_.in_(listed.scalar_subquery())
    else:
        condition = column_ == func.any(bindparam("ids", wanted, type_=ARRAY(BigInteger)))
    return condition


async def plan_each_time(session: AsyncSession) -> None:
    """PostgreSQL, for the rest of the session's transaction: each statement planned for its own
    values. The driver prepares a statement once per connection and runs it again; after five runs
    PostgreSQL may keep a generic plan, made without the values — and for the reminders of a list of
    items it then scans the month's reminders once per item (twenty seconds instead of a tenth)."""
    if await _dialect(session) == "postgresql":  # through the session: it begins the transaction
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


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
        return await driver.fetch(str(compiled), *params)  # type: ignore[no-any-return]
    cursor = await driver.execute(str(compiled), params)
    try:
        return await cursor.fetchall()  # type: ignore[no-any-return]
    finally:
        await cursor.close()


def _bind(processor: Any, value: Any) -> Any:
    return processor(value) if processor is not None and value is not None else value


async def action_times(session: AsyncSession, action: str, cut: datetime, *, since: datetime | None = None,
                       ids: Iterable[int] | None = None) -> Sequence[Any]:
    """(item_id, at) of the rows of `action` before `cut`, in the order of their time: those written
    since `since` (the rows of a window's items: an item's rows follow its report), read from the
    index on (action, at, item_id) alone; or those of these items."""
    e = _EVENTS
    where = e.c.at >= since if since is not None else _in(await _dialect(session), e.c.item_id, ids or ())
    return await _all(session, select(e.c.item_id, _at(e.c.at)).where(e.c.action == action, e.c.at < cut, where)
                      .order_by(e.c.at))


_FACTS = text(FACTS_CONDITION)
_REPORT_FIELDS = ("number", "lead_unit_id", "classified")
_GRADING_FIELDS = ("grade", "pass_on_due_at", "response_due_at")


def _fields(dialect: str, names: Sequence[str]) -> Any:
    """SELECT item_id, at and these fields of the JSON `after` (their text), FROM item_events. On
    PostgreSQL the json text is read into jsonb once per row: `->>` on json parses the whole text
    again for each field (a month's gradings: a third slower)."""
    e = _EVENTS
    if dialect != "postgresql":
        return select(e.c.item_id, _at(e.c.at), *(e.c.after[name].as_string() for name in names))
    document = select(cast(e.c.after, JSONB).label("document")).correlate(e).offset(0).lateral("read")
    return (select(e.c.item_id, _at(e.c.at), *(document.c.document[name].astext for name in names))
            .select_from(e.join(document, true())))


async def report_rows(session: AsyncSession, start: datetime, end: datetime) -> Sequence[Any]:
    """The items reported at `start` ≤ at < `end`: their "reported" rows, as (item_id, at, number,
    lead at the report, 涉密 mark as the database gives it: 1, "true", …)."""
    e = _EVENTS
    statement = _fields(await _dialect(session), _REPORT_FIELDS)
    return await _all(session, statement.where(_FACTS, e.c.action == "reported", e.c.at >= start, e.c.at < end))


async def report_rows_of(session: AsyncSession, ids: Iterable[int]) -> Sequence[Any]:
    e = _EVENTS
    dialect = await _dialect(session)
    statement = _fields(dialect, _REPORT_FIELDS)
    return await _all(session, statement.where(_FACTS, e.c.action == "reported", _in(dialect, e.c.item_id, ids)))


async def grading_rows(session: AsyncSession, start: datetime, end: datetime, action: str) -> Sequence[Any]:
    """The rows of `action` (定级 graded, 调整等级 regraded) written at `start` ≤ at < `end`: (item_id, at,
    grade, 签收 deadline, 回应 deadline), the deadlines as the ISO text the grading recorded."""
    e = _EVENTS
    statement = _fields(await _dialect(session), _GRADING_FIELDS)
    return await _all(session, statement.where(_FACTS, e.c.action == action, e.c.at >= start, e.c.at < end))


async def grading_rows_of(session: AsyncSession, ids: Iterable[int], cut: datetime, action: str) -> Sequence[Any]:
    e = _EVENTS
    dialect = await _dialect(session)
    statement = _fields(dialect, _GRADING_FIELDS)
    return await _all(session, statement.where(_FACTS, e.c.action == action, e.c.at < cut,
                                               _in(dialect, e.c.item_id, ids)))


def _reminders(dialect: str, overdue: bool, columns: str, start: datetime, end: datetime, *,
               ids: Iterable[int] | None = None, tail: str = "") -> Any:
    """SELECT `columns` of the reminders (`overdue`: the 催办) delivered at `start` ≤ at < `end`, from
    their partial index (migration 0010): as text, since its condition must be the index's word for
    word, and since SQLite's planner cannot tell that this condition on a JSON field keeps a third of
    the notices, the index is named there (PostgreSQL's estimates it)."""
    hint = f" INDEXED BY {REMINDER_INDEXES[overdue]}" if dialect == "sqlite" else ""
    condition = reminder_condition(dialect, overdue).replace(":", "\\:")  # a colon would start a parameter
    params: list[Any] = [bindparam("start", start, type_=UTCDateTime), bindparam("end", end, type_=UTCDateTime)]
    if ids is not None:
        wanted = sorted({int(i) for i in ids})
        if dialect == "sqlite":
            condition += " AND item_id IN (SELECT value FROM json_each(:ids))"
            params.append(bindparam("ids", json.dumps(wanted)))
        else:
            condition += " AND item_id = ANY(:ids)"
            params.append(bindparam("ids", wanted, type_=ARRAY(BigInteger)))
    return text(f"SELECT {columns} FROM item_events{hint} WHERE {condition} AND at >= :start AND at < :end{tail}"
                ).bindparams(*params)


async def reminder_counts(session: AsyncSession, start: datetime, end: datetime) -> dict[int, list[int]]:
    """Per item: [提醒, 催办] delivered at `start` ≤ at < `end`. Counted here from the items of the rows,
    read as one text: a GROUP BY (SQLite sorts the hundreds of thousands of rows first) or a row per
    item (the drivers' cost per row) takes twice as long."""
    dialect = await _dialect(session)
    found: dict[int, list[int]] = {}
    for overdue in (False, True):
        concat = "group_concat(item_id)" if dialect == "sqlite" else "string_agg(item_id::text, ',')"
        listed = (await _all(session, _reminders(dialect, overdue, concat, start, end)))[0][0]
        for item_id, count in Counter(map(int, listed.split(","))).items() if listed else ():
            found.setdefault(item_id, [0, 0])[overdue] = count
    return found


async def reminder_times(session: AsyncSession, ids: Iterable[int], start: datetime,
                         end: datetime) -> list[tuple[int, Any, bool]]:
    """The reminders delivered at `start` ≤ at < `end` about these items: (item_id, at, 催办)."""
    dialect = await _dialect(session)
    wanted = list(ids)
    found: list[tuple[int, Any, bool]] = []
    for overdue in (False, True):
        statement = _reminders(dialect, overdue, f"item_id, {_TEXT[dialect].format('at')}", start, end, ids=wanted)
        found += [(item_id, at, overdue) for item_id, at in await _all(session, statement)]
    return found


async def move_rows(session: AsyncSession, cut: datetime, *, since: datetime | None = None,
                    ids: Iterable[int] | None = None) -> list[Any]:
    """The 转办 / 退回 rows before `cut` (written since `since`, or of these items), item by item in the
    order written: (item_id, at, action, units as the driver gives them — see units_of()). One action
    at a time: SQLite's planner seeks (item_id, action) on the index for one action, but for a list
    of two reads every row of the items."""
    e = _EVENTS
    dialect, wanted = await _dialect(session), list(ids or ())
    where = e.c.at >= since if since is not None else _in(dialect, e.c.item_id, wanted)
    found: list[Any] = []
    for action in MOVES:
        found += await _all(session, select(e.c.id, e.c.item_id, _at(e.c.at), e.c.action, _raw(e.c.after["units"]))
                            .where(_FACTS, e.c.action == action, e.c.at < cut, where))
    found.sort(key=lambda row: (row[1], row[2], row[0]))
    return [row[1:] for row in found]


async def summaries(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    """The reported text of these items (only the few a notice lists are asked for)."""
    statement = select(_ITEMS.c.id, _ITEMS.c.summary).where(_in(await _dialect(session), _ITEMS.c.id, ids))
    return {int(item_id): str(summary) for item_id, summary in await _all(session, statement)}


async def authorised_summaries(session: AsyncSession, ids: Iterable[int], cut: datetime) -> dict[int, str | None]:
    """The authorised summary of the latest 涉密 mark before `cut` of each of these items."""
    e = _EVENTS
    statement = (
        select(e.c.item_id, e.c.after["authorised_summary"].as_string())
        .where(_in(await _dialect(session), e.c.item_id, ids), e.c.action == "classified", e.c.at < cut)
        .order_by(e.c.at, e.c.id)
    )
    return {int(item_id): summary for item_id, summary in await _all(session, statement)}
