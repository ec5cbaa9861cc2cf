"""The facts a 定期通报 needs, read from the audit trail in bulk (store/records_clocks.py): fast enough
for a month of 100,000 items (issue #16 point 7), by the same rules as facts.py's full replay.

`period_facts` gives each item as a notice counts it — a `Line`: its lead at the cut, its latest
grade, how it ended, the deadlines in force of its 签收 and 回应 and when they were done — and,
instead of every reminder, the reminders of the window counted per unit (each for the lead of its
time); and the rows the 零报告 rule reads (handlers/ops/zero_report.py status_from_rows). `from_full`
makes the same from facts.py's full replay (facts_for_window): the tests hold the two to the same
figures.

A month is a hundred thousand items and most of a million rows, so: each kind of row is read in one
query, in the order written, as the driver's plain tuples; each item becomes one tuple in one pass
(no ItemFacts, no list of rows per item), its times read only when it has them; and only the items
whose lead moved (转办, 退回), a few in a hundred, have their moves and reminders read one by one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocab import Grade
from handlers.deadline_rules import ClockName
from handlers.ops.zero_report import ACTION as ZERO_REPORT
from handlers.records.facts import ItemFacts, public_summary
from store import records_clocks as clocks
from store import records_period as store
from store.records_clocks import ENDINGS, GRADINGS, time_of, times, units_of
from store.records_period import AuditRow

_TRUE = {1, "1", "true"}  # the JSON flag as the database gives it (True == 1)
_GRADES = {grade.value: grade for grade in Grade}
_DAY_ORDER = {"reported": 0, "assigned": 1, ZERO_REPORT: 2}
_NOT_ENDED = (None, None)
# The steps read per action, each row's time: the 签收 in force, the first 回应, the end, the 涉密 marks.
STEPS = ("acknowledged", "responded", *ENDINGS, "classified", "declassified")


class Line(NamedTuple):
    """One item as a notice counts it, as of the cut: facts.ItemFacts, as far as the notice reads
    it (`result()` is the deadline in force, what was done, and the end: see period._count_items)."""

    number: int
    id: int
    reported_at: datetime
    lead: str | None  # the lead unit at the cut
    grade: Grade | None  # the latest grading's (None: not graded)
    ending: str | None  # closed (办结) | no_response (不予回应) | merged (合并), by the cut
    ended_at: datetime | None
    pass_on_due: datetime | None  # the 签收 deadline in force (None: none set)
    acknowledged: datetime | None  # the 签收 in force
    response_due: datetime | None  # the 回应 deadline in force
    responded: datetime | None  # the first 回应


class Move(NamedTuple):
    """A 转办 / 退回: the lead from `at` on (None: no lead), and all the units."""

    at: datetime
    lead: str | None
    action: str
    units: list[Any]


@dataclass
class PeriodFacts:
    """What a notice of the window is computed from."""

    items: list[Line]
    reminders: dict[str | None, list[int]] = field(default_factory=dict)  # unit → [提醒, 催办]
    day_rows: list[AuditRow] = field(default_factory=list)  # reported / assigned / zero_report, in order
    summaries: dict[int, str] = field(default_factory=dict)  # item → public summary, as far as known
    classified: dict[int, str | None] = field(default_factory=dict)  # 涉密 at the cut → authorised summary

    def count(self, unit: str | None, overdue: bool, times: int = 1) -> None:
        self.reminders.setdefault(unit, [0, 0])[int(overdue)] += times


async def period_facts(session: AsyncSession, start: datetime, end: datetime, *, cut: datetime,
                       lookback: timedelta, tz: tzinfo) -> PeriodFacts:
    """The facts, as of `cut`, of the items reported at `start - lookback` ≤ … < min(`end`, `cut`), the
    reminders delivered at `start` ≤ … < `cut` and the 零报告 rows of the window (its days in `tz`).
    The summaries are not read: `with_summaries` reads those of the items a notice lists."""
    await clocks.plan_each_time(session)
    rows = await _read(session, start - lookback, min(end, cut), start, cut)
    found = PeriodFacts([])
    report_leads: dict[int, str | None] = {}  # the lead at the report of each item whose lead moved
    in_window = _lines(found, rows, start, cut, report_leads)
    if found.classified:
        found.classified.update(await clocks.authorised_summaries(session, found.classified, cut))
    if rows.moves:  # a reminder counts for the lead of its time
        moves, per_unit, parse = rows.moves, found.reminders, datetime.fromisoformat
        for item_id, at, overdue in await clocks.reminder_times(session, moves, start, cut):
            lead = _lead_at(report_leads[item_id], moves[item_id], parse(at))
            (per_unit.get(lead) or per_unit.setdefault(lead, [0, 0]))[overdue] += 1
    zero = await store.rows_between(session, start, cut, (ZERO_REPORT,))
    found.day_rows = _day_rows(in_window, rows.moves, zero, tz)
    return found


@dataclass
class _Rows:
    """The rows the facts are made of, each kind in the order written (store/records_clocks.py)."""

    reports: list[Any]
    steps: dict[str, list[Any]]  # per action: gradings (with their JSON) and the rest (item, time)
    moves: dict[int, list[Move]]
    reminders: dict[int, list[int]]  # per item: [提醒, 催办] of the window


async def _read(session: AsyncSession, first: datetime, until: datetime, start: datetime, cut: datetime) -> _Rows:
    """The rows of the items reported at `first` ≤ … < `until` and of any item reminded at `start` ≤ …
    < `cut`, written before `cut`. An item's rows follow its report: those of the window's items are
    the rows written since `first`; the few items reminded in the window but reported before are read
    by id."""
    reports = list(await clocks.report_rows(session, first, until))
    steps = {action: list(await clocks.grading_rows(session, first, cut, action)) for action in GRADINGS}
    steps |= {action: list(await clocks.action_times(session, action, cut, since=first)) for action in STEPS}
    moves = _moves(await clocks.move_rows(session, cut, since=first))
    reminders = await clocks.reminder_counts(session, start, cut)
    older = reminders.keys() - {row[0] for row in reports}
    if older:  # all their rows, not only the window's
        reports += await clocks.report_rows_of(session, older)
        for action, kept in steps.items():
            kept[:] = [row for row in kept if row[0] not in older]
            kept += await (clocks.grading_rows_of(session, older, cut, action) if action in GRADINGS else
                           clocks.action_times(session, action, cut, ids=older))
        moves = {item_id: item_moves for item_id, item_moves in moves.items() if item_id not in older}
        moves.update(_moves(await clocks.move_rows(session, cut, ids=older)))
    return _Rows(reports, steps, moves, reminders)


async def with_summaries(session: AsyncSession, found: PeriodFacts, ids: Iterable[int]) -> None:
    """Fill in the public summary of these items (the ones a notice lists)."""
    wanted = {item_id for item_id in ids if item_id not in found.summaries}
    found.summaries.update(await clocks.summaries(session, wanted))
    for item_id in wanted & found.classified.keys():
        found.summaries[item_id] = public_summary(found.summaries[item_id], True, found.classified[item_id])


def from_full(facts: Iterable[ItemFacts], zero_rows: Sequence[AuditRow], start: datetime, cut: datetime) -> PeriodFacts:
    """The same from facts.py's full replay (facts_for_window) and the window's 零报告 rows."""
    items = list(facts)
    found = PeriodFacts([_line_of(item, cut) for item in items])
    found.summaries = {item.id: item.public_summary for item in items}
    day_rows: list[AuditRow] = [row for row in zero_rows if row.action == ZERO_REPORT]
    for item in items:
        for reminder in item.reminders:
            if start <= reminder.at < cut and reminder.clock is not ClockName.GRADE:
                found.count(item.lead_at(reminder.at), reminder.overdue)
        if start <= item.reported_at < cut:
            day_rows.append(_reported_row(item.id, item.number, item.reported_at, item.leads[0].unit))
            day_rows += [AuditRow(0, item.id, lead.at, "", "assigned", "", {"units": list(lead.units)})
                         for lead in item.leads[1:] if lead.action == "assigned"]
    found.day_rows = sorted(day_rows, key=_day_key)
    return found


def _line_of(item: ItemFacts, cut: datetime) -> Line:
    pass_on, response = item.deadline(ClockName.PASS_ON), item.deadline(ClockName.RESPONSE)
    return Line(item.number, item.id, item.reported_at, item.lead_at(cut), item.grade,
                item.ending.kind if item.ending is not None else None,
                item.ending.at if item.ending is not None else None,
                pass_on.in_force if pass_on is not None else None, item.acknowledged_at,
                response.in_force if response is not None else None, item.responded_at)


# -- from the database's rows ------------------------------------------------------------------------------


def _lines(found: PeriodFacts, rows: _Rows, start: datetime, cut: datetime,
           report_leads: dict[int, str | None]) -> list[tuple[datetime, int, int, str | None]]:
    """Each item's Line from the database's rows (the rules of facts.py, applied to them), into
    `found`, and the reminders of the items whose lead never moved (of the others, their lead at the
    report into `report_leads`); returns the items reported in the window as (at, id, number, lead at
    the report). Times are read only when there."""
    steps, moves, reminders, per_unit = rows.steps, rows.moves, rows.reminders, found.reminders
    latest = _latest(steps["graded"], steps["regraded"])
    # Rows in the order of their time: the first of an item is the one a dict keeps from the reversed rows.
    acknowledged, responded = _first(steps["acknowledged"]), _first(steps["responded"])
    ended: dict[int, tuple[datetime | None, str | None]] = {}  # the first end of each item: (at, kind)
    for kind in ENDINGS:
        for item_id, at in _first(steps[kind]).items():
            known_end = ended.get(item_id)
            if known_end is None or (at, kind) < known_end:
                ended[item_id] = (at, kind)
    last_acknowledged = _last(steps["acknowledged"]) if moves else {}
    marked, unmarked = _last(steps["classified"]), _last(steps["declassified"])
    marks = marked.keys() | unmarked.keys()
    lines, in_window, classified = found.items, [], found.classified
    parse = from_text = datetime.fromisoformat
    new_line = tuple.__new__  # a Line without its keyword-taking __new__: a third of the time
    for item_id, at, number, lead, mark in rows.reports:
        reported_at, number, lead = parse(at), int(number), lead or None  # the text of the JSON value
        if start <= reported_at < cut:
            in_window.append((reported_at, item_id, number, lead))
        grade: Grade | None = None
        pass_on: datetime | None = None
        response: datetime | None = None
        grading = latest.get(item_id)
        if grading is not None:  # the deadlines in force (facts.Deadline.in_force)
            _, graded_at, grade_text, pass_on_text, response_text = grading
            if grade_text:
                grade, graded_at = _GRADES[grade_text], parse(graded_at)
                if pass_on_text:  # as the grading recorded it: ISO text
                    pass_on = from_text(pass_on_text)
                    pass_on = pass_on if pass_on > graded_at else graded_at
                if response_text:
                    response = from_text(response_text)
                    response = response if response > graded_at else graded_at
        ack = acknowledged.get(item_id)
        if item_id in moves:
            item_moves, report_leads[item_id] = moves[item_id], lead
            ack = _ack_in_force(lead, item_moves, ack, last_acknowledged.get(item_id))
            lead = item_moves[-1].lead
        elif item_id in reminders:  # to the lead throughout
            counts, unit = reminders[item_id], per_unit.get(lead)
            if unit is None:
                unit = per_unit[lead] = [0, 0]
            unit[0] += counts[0]
            unit[1] += counts[1]
        ended_at, ending = ended.get(item_id, _NOT_ENDED)
        lines.append(new_line(Line, (number, item_id, reported_at, lead, grade, ending, ended_at, pass_on, ack,
                                     response, responded.get(item_id))))
        if (mark in _TRUE or item_id in marks) and _classified(
                reported_at, mark in _TRUE, marked.get(item_id), unmarked.get(item_id)):
            classified[item_id] = None
    return in_window


def _latest(graded: Sequence[Any], regraded: Sequence[Any]) -> dict[int, Any]:
    """The last grading of each item, which decides (facts.ItemFacts.deadline): an item is graded
    (定级) once, then regraded (调整等级) any number of times. By their time, whose text, of a fixed
    width, compares as the time; on a tie, the 调整等级."""
    latest = {grading[0]: grading for grading in graded}
    later = regraded if len(latest) == len(graded) else (*graded, *regraded)
    for grading in later:
        known = latest.get(grading[0])
        if known is None or grading[1] >= known[1]:
            latest[grading[0]] = grading
    return latest


def _first(rows: Sequence[Any]) -> dict[int, datetime]:
    """(item_id, at) rows in the order of their time → the first time of each item, read."""
    firsts = dict(reversed(rows))
    return dict(zip(firsts, times(firsts.values()), strict=True))


def _last(rows: Sequence[Any]) -> dict[int, datetime]:
    lasts = dict(rows)
    return dict(zip(lasts, times(lasts.values()), strict=True))


def _moves(rows: Iterable[Any]) -> dict[int, list[Move]]:
    moves: dict[int, list[Move]] = {}
    for item_id, at, action, units in rows:
        listed = [str(unit) for unit in units_of(units)]
        move = Move(time_of(at), listed[0] if listed else None, action, listed)
        moves.setdefault(item_id, []).append(move)
    return moves


def _ack_in_force(lead: str | None, moves: list[Move], first: datetime | None,
                  last: datetime | None) -> datetime | None:
    """The 签收 in force: the first, unless the lead changed after it — then the one after the last
    change, if any (a second 签收 is refused while one is in force, so there is at most one)."""
    if first is None:
        return None
    changed = None
    for move in moves:
        if move.lead != lead:
            changed = move.at
        lead = move.lead
    if changed is None:
        return first
    return last if last is not None and last >= changed else None


def _lead_at(lead: str | None, moves: list[Move], when: datetime) -> str | None:
    """The lead at `when` (facts.ItemFacts.lead_at): the lead at the report, then each move's."""
    for move in moves:
        if move.at > when:
            break
        lead = move.lead
    return lead


def _classified(reported_at: datetime, reported: bool, classified_at: datetime | None,
                declassified_at: datetime | None) -> bool:
    """Marked 涉密 at the cut: the latest of the report's mark, 标记涉密 and 解除涉密 decides."""
    marks = [(reported_at, 0, reported)]
    marks += [(at, 1, True) for at in (classified_at,) if at is not None]
    marks += [(at, 1, False) for at in (declassified_at,) if at is not None]
    return max(marks)[2]


def _reported_row(item_id: int, number: int, at: datetime, lead: str | None) -> AuditRow:
    return AuditRow(0, item_id, at, "", "reported", "", {"number": number, "lead_unit_id": lead})


def _day_rows(items: Sequence[tuple[datetime, int, int, str | None]], moves: dict[int, list[Move]],
              zero: Sequence[AuditRow], tz: tzinfo) -> list[AuditRow]:
    """The rows the 零报告 rule reads: the items reported in the window (their lead at the report),
    their 转办 (a unit given an item the day it was reported has an item that day), and the 零报告.
    The rule asks only whether a unit had an item that day: of the items, only the first to give a
    unit one that day are kept — a month's hundred thousand items make a few hundred rows."""
    found: list[AuditRow] = list(zero)
    seen: set[tuple[date, str | None]] = set()
    day, since, until = date.min, datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)
    for at, item_id, number, lead in items:
        if not since <= at < until:  # items come about in time order: the local day is mostly the last one's
            day = at.astimezone(tz).date()
            since, until = _whole_day(day, tz)
        transfers = [move for move in moves.get(item_id, ()) if move.action == "assigned"
                     and (since <= move.at < until or move.at.astimezone(tz).date() == day)
                     and any((day, unit) not in seen for unit in move.units)] if item_id in moves else []
        if (day, lead) in seen and not transfers:
            continue
        seen.add((day, lead))
        seen.update((day, unit) for move in transfers for unit in move.units)
        found.append(_reported_row(item_id, number, at, lead))
        found += [AuditRow(0, item_id, move.at, "", "assigned", "", {"units": move.units}) for move in transfers]
    return sorted(found, key=_day_key)


def _whole_day(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The local `day` in UTC, [since, until); empty on a day the clocks change (its times are then
    each read in `tz`)."""
    since = datetime.combine(day, time(0), tzinfo=tz)
    until = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    if since.utcoffset() != until.utcoffset():
        return until.astimezone(UTC), since.astimezone(UTC)
    return since.astimezone(UTC), until.astimezone(UTC)


def _day_key(row: AuditRow) -> tuple[datetime, int, int]:
    return row.at, _DAY_ORDER.get(row.action, 3), row.id
