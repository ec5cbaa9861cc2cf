"""The facts a 定期通报 needs, summed up by the database (store/records_clocks.py): fast enough for a
month of 100,000 items (issue #16 point 7), by the same rules as facts.py's full replay.

`period_facts` gives each item's `ItemFacts` as far as a notice reads them — the latest grading
only, its lead over time, the 签收 in force, the first 回应, its end, its 涉密 mark — and, instead of
every reminder, the reminders of the window counted per unit (each for the lead of its time); and
the rows the 零报告 rule reads (handlers/ops/zero_report.py status_from_rows). `from_full` makes the
same from facts.py's full replay: the tests hold the two to the same figures.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocab import Grade
from handlers.deadline_rules import ClockName
from handlers.ops.zero_report import ACTION as ZERO_REPORT
from handlers.records.facts import Ending, Grading, ItemFacts, Lead, Step, parse_reminder
from store import records_clocks as clocks
from store import records_period as store
from store.records_clocks import GradingRow, LeadRow, ReportRow, StepRow, utc
from store.records_period import AuditRow

_TRUE = (1, "1", "true", True)
_GRADES = {grade.value: grade for grade in Grade}
_DAY_ORDER = {"reported": 0, "assigned": 1, ZERO_REPORT: 2}


@dataclass
class PeriodFacts:
    """What a notice of the window is computed from."""

    items: list[ItemFacts]
    reminders: dict[str | None, list[int]] = field(default_factory=dict)  # unit → [提醒, 催办]
    day_rows: list[AuditRow] = field(default_factory=list)  # reported / assigned / zero_report, in order

    def count(self, unit: str | None, overdue: bool, times: int = 1) -> None:
        self.reminders.setdefault(unit, [0, 0])[int(overdue)] += times


async def period_facts(session: AsyncSession, start: datetime, end: datetime, *, cut: datetime,
                       lookback: timedelta, tz: tzinfo) -> PeriodFacts:
    """The facts, as of `cut`, of the items reported at `start - lookback` ≤ … < min(`end`, `cut`), the
    reminders delivered at `start` ≤ … < `cut` and the 零报告 rows of the window (its days in `tz`)."""
    first, until = start - lookback, min(end, cut)
    reports = await clocks.report_rows(session, first, until)
    steps = await clocks.step_rows(session, reports[0].item_id, reports[-1].item_id, cut) if reports else []
    gradings = await clocks.grading_rows(session, first, cut)
    counts = await clocks.reminder_counts(session, start, cut)
    older = set(counts) - {report.item_id for report in reports}  # reminded in the window, reported long before
    if older:
        reports += await clocks.report_rows_of(session, older)
        steps += await clocks.step_rows_of(session, older, cut)
        gradings += await clocks.grading_rows_of(session, older, cut)
    moved = [step.item_id for step in steps if step.lead_moves]
    leads: dict[int, list[LeadRow]] = {}
    for lead in await clocks.lead_rows(session, moved, cut):
        leads.setdefault(lead.item_id, []).append(lead)
    facts = _facts(reports, steps, gradings, leads)
    classified = [fact.id for fact in facts.values() if fact.classified]
    for item_id, summary in (await clocks.authorised_summaries(session, classified, cut)).items():
        facts[item_id].authorised_summary = summary
    found = PeriodFacts(list(facts.values()))
    for item_id, (reminders, urges) in counts.items():
        if item_id in facts and item_id not in leads:
            found.count(facts[item_id].lead, False, reminders)
            found.count(facts[item_id].lead, True, urges)
    for reminder in await clocks.reminder_rows(session, [i for i in counts if i in leads], start, cut):
        at = utc(reminder.at)
        parsed = parse_reminder(reminder.key or "", at) if at is not None else None
        if parsed is not None and parsed.clock is not ClockName.GRADE:
            found.count(facts[reminder.item_id].lead_at(parsed.at), parsed.overdue)
    zero = await store.rows_between(session, start, cut, (ZERO_REPORT,))
    found.day_rows = _day_rows(found.items, leads, start, cut, zero, tz)
    return found


async def with_summaries(session: AsyncSession, facts: Iterable[ItemFacts]) -> None:
    """Fill in the reported text of these items (the ones a notice lists)."""
    wanted = {fact.id: fact for fact in facts if not fact.summary}
    for item_id, summary in (await clocks.summaries(session, wanted)).items():
        wanted[item_id].summary = summary


def from_full(facts: Iterable[ItemFacts], zero_rows: Sequence[AuditRow], start: datetime, cut: datetime) -> PeriodFacts:
    """The same from facts.py's full replay (facts_for_window) and the window's 零报告 rows."""
    items = list(facts)
    found = PeriodFacts(items)
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


# -- from the database's sums ------------------------------------------------------------------------------


def _facts(reports: Sequence[ReportRow], steps: Sequence[StepRow], gradings: Sequence[GradingRow],
           leads: dict[int, list[LeadRow]]) -> dict[int, ItemFacts]:
    """Each item's facts from the database's sums (the rules of facts.py, applied to them). The
    summary is left empty: the few the notice lists are read afterwards (`with_summaries`)."""
    facts: dict[int, ItemFacts] = {}
    for report in reports:
        at = utc(report.at)
        assert at is not None
        lead = report.lead
        fact = facts[report.item_id] = ItemFacts(report.item_id, int(report.number), "", "", at, "")
        fact.leads = [Lead(at, lead, (lead,) if lead else (), "", "reported")]
        fact.classified = report.classified in _TRUE
    latest: dict[int, GradingRow] = {}
    for grading in gradings:
        if grading.item_id in facts and (grading.item_id not in latest or grading.id > latest[grading.item_id].id):
            latest[grading.item_id] = grading
    for item_id, grading in latest.items():
        at = utc(grading.at)
        if grading.grade and at is not None:
            facts[item_id].gradings = [Grading(at, _GRADES[grading.grade], "", _iso(grading.pass_on_due),
                                               _iso(grading.response_due), regrade=False)]
    for step in steps:
        if step.item_id in facts:
            _apply(facts[step.item_id], step, leads.get(step.item_id, []))
    return facts


def _apply(fact: ItemFacts, step: StepRow, leads: list[LeadRow]) -> None:
    fact.leads += _moves(leads)
    fact.acknowledged_at = _ack_in_force(fact, utc(step.first_ack), utc(step.last_ack))
    responded = utc(step.responded)
    if responded is not None:
        fact.responses = [Step(responded, "")]
    endings = [(at, kind) for kind, at in (("closed", utc(step.closed)), ("no_response", utc(step.no_response)),
                                            ("merged", utc(step.merged))) if at is not None]
    if endings:
        at, kind = min(endings)
        fact.ending = Ending(at, kind, "")
    if step.classified_at is not None or step.declassified_at is not None:
        fact.classified = _classified(fact, utc(step.classified_at), utc(step.declassified_at))


def _iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _moves(rows: list[LeadRow]) -> list[Lead]:
    """The 转办 and 退回 of an item: its lead from each on."""
    found = []
    for moved in rows:
        at = utc(moved.at)
        if moved.action == "reported" or at is None:
            continue
        units = tuple(str(u) for u in _units(moved.units))
        found.append(Lead(at, units[0] if units else None, units, "", moved.action))
    return found


def _units(value: Any) -> list[Any]:
    """The units of a 转办 / 退回 row: JSON text, or already a list (the driver's own decoding)."""
    if isinstance(value, str):
        return list(json.loads(value))
    return list(value or [])


def _ack_in_force(item: ItemFacts, first: datetime | None, last: datetime | None) -> datetime | None:
    """The 签收 in force: the first, unless the lead changed after it — then the one after the last
    change, if any (a second 签收 is refused while one is in force, so there is at most one)."""
    if first is None or len(item.leads) < 2:
        return first
    changed = [b.at for a, b in zip(item.leads, item.leads[1:], strict=False) if a.unit != b.unit]
    if not changed:
        return first
    return last if last is not None and last >= changed[-1] else None


def _classified(fact: ItemFacts, classified_at: datetime | None, declassified_at: datetime | None) -> bool:
    """Marked 涉密 at the cut: the latest of the report's mark, 标记涉密 and 解除涉密 decides."""
    marks = [(fact.reported_at, 0, fact.classified)]
    marks += [(at, 1, True) for at in (classified_at,) if at is not None]
    marks += [(at, 1, False) for at in (declassified_at,) if at is not None]
    return max(marks)[2]


def _reported_row(item_id: int, number: int, at: datetime, lead: str | None) -> AuditRow:
    return AuditRow(0, item_id, at, "", "reported", "", {"number": number, "lead_unit_id": lead})


def _day_rows(facts: Sequence[ItemFacts], leads: dict[int, list[LeadRow]], start: datetime, cut: datetime,
              zero: Sequence[AuditRow], tz: tzinfo) -> list[AuditRow]:
    """The rows the 零报告 rule reads: each item reported in the window (its lead at the report), its
    转办 (a unit given an item the day it was reported has an item that day), and the 零报告."""
    found: list[AuditRow] = list(zero)
    # One item per unit and day says as much as all of them (the rule asks whether a unit had one):
    # the first of each, and every item transferred, with its report (the rule reads both).
    seen: set[tuple[date, str | None]] = set()
    for fact in facts:
        if not start <= fact.reported_at < cut:
            continue
        lead = fact.leads[0].unit if fact.leads else None
        day = (fact.reported_at.astimezone(tz).date(), lead)
        moved = [lead_row for lead_row in leads.get(fact.id, []) if lead_row.action == "assigned"]
        if day in seen and not moved:
            continue
        seen.add(day)
        found.append(_reported_row(fact.id, fact.number, fact.reported_at, lead))
        for lead_row in moved:
            at = utc(lead_row.at)
            if at is not None:
                found.append(AuditRow(0, fact.id, at, "", "assigned", "", {"units": _units(lead_row.units)}))
    return sorted(found, key=_day_key)


def _day_key(row: AuditRow) -> tuple[datetime, int, int]:
    return row.at, _DAY_ORDER.get(row.action, 3), row.id
