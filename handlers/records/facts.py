"""What happened to each item, derived from the audit trail in bulk (issue #16).

Every figure of the records is computed from the append-only audit trail (item_events), never from
counters kept on the side, so any figure can be checked by reading the trail. This module reads the
rows of many items at once (store/records_period.py: a few queries for any window, none per item)
and turns each item's rows into `ItemFacts`: when it was reported and by whom, its gradings (the
first and every regrade, each with the 签收 and 回应 deadlines it set), its lead unit over time
(转办, 退回), the lead's 签收 in force, its responses, how it ended (办结, 不予回应, 合并), whether it is
涉密, and every reminder (提醒) and 催办 delivered about it.

Facts are as of a cut: only the rows written before it count, so a notice about a past week says
the same whenever it is made.

Two ways to the facts of a window, one set of rules: `facts_for_window` replays every row (the whole
story: every grading, 签收, response and reminder); period_facts.py reads each kind of row in bulk
and keeps per item only what a notice counts (the latest grading, the 签收 in force, the first 回应,
…) — what a 定期通报 over a month of a busy province needs, many times faster. The tests hold the two
to the same figures.

The rules a figure needs, in one place:
- A deadline in force is the one the latest grading set; when that grading came after it (a
  regrade, or a first grade, that put the deadline in the past), it runs from the grading — the
  same rule as the deadline sweep (handlers/ops/grade.py `overdue_from`).
- The 签收 in force is the lead unit's; a change of lead (转办 to another lead, the lead's 退回)
  voids it, since the new lead has acknowledged nothing (handlers/ops/assign.py).
- The 回应 is the first response; later ones are 续报.
- A clock stopped by the end of the item (合并, 不予回应; 办结 needs a response first) before its
  deadline asks nothing more: `ClockResult.judged` is False.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from domain.config import PolicySection
from domain.vocab import Grade
from handlers.deadline_rules import ClockName
from handlers.items import CLASSIFIED_SUMMARY
from store import records_period as store
from store.records_period import AuditRow, ItemRow

# The rows the facts are made of.
ACTIONS = ("reported", "graded", "regraded", "assigned", "returned", "acknowledged", "responded", "closed",
           "no_response", "merged", "classified", "declassified", "notice")
ENDINGS = ("closed", "no_response", "merged")
OVERDUE_STAGE = "overdue"


class Grading(NamedTuple):
    """A 定级 or 调整等级, with the deadlines it set (None: the policy sets none)."""

    at: datetime
    grade: Grade
    by: str
    pass_on_due: datetime | None
    response_due: datetime | None
    regrade: bool
    reason: str = ""


class Lead(NamedTuple):
    """The lead unit from `at` on (None: no lead, after the lead's 退回), and all the units."""

    at: datetime
    unit: str | None
    units: tuple[str, ...]
    by: str
    action: str  # reported | assigned | returned


class Step(NamedTuple):
    """Something done at a time by someone: a 签收, a 回应."""

    at: datetime
    by: str


class Ending(NamedTuple):
    at: datetime
    kind: str  # closed (办结) | no_response (不予回应) | merged (合并)
    by: str
    merged_into: int | None = None  # the target's number


class Reminder(NamedTuple):
    """A reminder delivered about the item (the notice's own key says which): a 提醒 before the
    deadline, a 催办 at or after it. The coordinators' copies are not counted apart."""

    at: datetime
    clock: ClockName
    stage: str  # 50pct, 80pct … or overdue
    occurrence: int

    @property
    def overdue(self) -> bool:
        """A 催办 (at or after the deadline), not a 提醒."""
        return self.stage == OVERDUE_STAGE


class Deadline(NamedTuple):
    due: datetime  # as the grading set it
    set_at: datetime  # when that grading was made

    @property
    def in_force(self) -> datetime:
        """The deadline the unit is held to: a deadline already past when it was set runs from then."""
        return max(self.due, self.set_at)


class ClockResult(NamedTuple):
    """A 签收 or 回应 clock of an item, as of the cut."""

    clock: ClockName
    due: datetime  # in force
    done: datetime | None  # the 签收 in force / the first 回应, before the cut
    stopped: datetime | None  # the item ended (合并, 不予回应) without it

    @property
    def judged(self) -> bool:
        """Whether the clock counts: done, or still owed at its deadline."""
        return self.done is not None or self.stopped is None or self.stopped > self.due

    @property
    def on_time(self) -> bool:
        return self.done is not None and self.done <= self.due

    def late_by(self, cut: datetime) -> timedelta | None:
        """How late (done late, or still owed at the cut: until the cut); None when on time or not yet due."""
        if self.on_time:
            return None
        until = self.done or self.stopped or cut
        return until - self.due if until > self.due else None


@dataclass(slots=True)
class ItemFacts:
    """One item's story from its audit rows (see the module docstring for the rules)."""

    id: int
    number: int
    chat_id: str
    summary: str
    reported_at: datetime
    reported_by: str
    gradings: list[Grading] = field(default_factory=list)
    leads: list[Lead] = field(default_factory=list)  # the first is the lead at the report
    acknowledgements: list[Step] = field(default_factory=list)  # the lead's 签收, each after a change of lead
    responses: list[Step] = field(default_factory=list)  # the first stops the 回应 clock; then 续报
    ending: Ending | None = None
    classified: bool = False
    authorised_summary: str | None = None
    reminders: list[Reminder] = field(default_factory=list)
    acknowledged_at: datetime | None = None  # the 签收 in force (None after a change of lead)

    @property
    def grade(self) -> Grade | None:
        return self.gradings[-1].grade if self.gradings else None

    @property
    def lead(self) -> str | None:
        return self.leads[-1].unit if self.leads else None

    def lead_at(self, when: datetime) -> str | None:
        """The lead unit at `when` (the lead at the report before anything else)."""
        unit = self.leads[0].unit if self.leads else None
        for lead in self.leads:
            if lead.at > when:
                break
            unit = lead.unit
        return unit

    @property
    def responded_at(self) -> datetime | None:
        return self.responses[0].at if self.responses else None

    @property
    def public_summary(self) -> str:
        """The summary any group may see (`public_summary`)."""
        return public_summary(self.summary, self.classified, self.authorised_summary)

    def deadline(self, clock: ClockName) -> Deadline | None:
        """The 签收 (PASS_ON) or 回应 (RESPONSE) deadline the latest grading set."""
        if not self.gradings:
            return None
        latest = self.gradings[-1]
        due = latest.pass_on_due if clock is ClockName.PASS_ON else latest.response_due
        return None if due is None else Deadline(due, latest.at)

    def result(self, clock: ClockName) -> ClockResult | None:
        """The 签收 or 回应 clock as of the cut (None: not graded, no such deadline)."""
        deadline = self.deadline(clock)
        if deadline is None:
            return None
        done = self.acknowledged_at if clock is ClockName.PASS_ON else self.responded_at
        stopped = self.ending.at if self.ending is not None and done is None else None
        return ClockResult(clock, deadline.in_force, done, stopped)


def public_summary(summary: str, classified: bool, authorised: str | None) -> str:
    """The summary any group may see (涉密: the authorised summary or the standard wording)."""
    if classified:
        return authorised or CLASSIFIED_SUMMARY
    return summary


# -- reading ---------------------------------------------------------------------------------------------------


async def facts_for_window(
    session: AsyncSession, start: datetime, end: datetime, *, cut: datetime | None = None,
    lookback: timedelta = timedelta(0),
) -> dict[int, ItemFacts]:
    """The facts, as of `cut` (default `end`), of the items reported at `start - lookback` ≤ … < `end`
    and of any item a reminder was delivered about at `start` ≤ … < `end` (however old). Keyed by item id.

    `lookback`: how far before the window an item may be reported and still have a deadline in it
    (`max_clock(policy)` for a periodic notice)."""
    cut = end if cut is None else cut
    items = await store.items_reported(session, start - lookback, end)
    rows = await store.rows_of_reported(session, start - lookback, end, cut, ACTIONS)
    known = {item.id for item in items}
    older = await store.reminded_item_ids(session, start, min(end, cut)) - known
    if older:
        items += await store.items_by_ids(session, older)
        rows += await store.rows_of_items(session, older, cut, ACTIONS)
    return build(items, rows)


async def facts_of(session: AsyncSession, item_ids: Iterable[int], cut: datetime) -> dict[int, ItemFacts]:
    """The facts of these items as of `cut`."""
    ids = set(item_ids)
    return build(await store.items_by_ids(session, ids), await store.rows_of_items(session, ids, cut, ACTIONS))


def max_clock(policy: PolicySection) -> timedelta:
    """The longest 签收 or 回应 clock of any grade: how long after its report an item's deadline may fall."""
    minutes = max(max(policy.for_grade(g).pass_on_minutes, policy.for_grade(g).response_minutes) for g in Grade)
    return timedelta(minutes=minutes)


# -- building (pure) -----------------------------------------------------------------------------------------


def build(items: Sequence[ItemRow], rows: Sequence[AuditRow]) -> dict[int, ItemFacts]:
    """Each item's facts from its rows (in any order: they are put in the order they were written)."""
    facts = {item.id: ItemFacts(item.id, item.number, item.chat_id, item.summary, item.reported_at, item.reported_by)
             for item in items}
    by_item: dict[int, list[AuditRow]] = {}
    for row in rows:
        if row.item_id in facts:
            by_item.setdefault(row.item_id, []).append(row)
    for item_id, item_rows in by_item.items():
        item_rows.sort(key=lambda r: (r.at, r.id))
        fact = facts[item_id]
        for row in item_rows:
            _READERS[row.action](fact, row)
    return facts


def _after(row: AuditRow) -> dict[str, Any]:
    return row.after or {}


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _change_lead(fact: ItemFacts, row: AuditRow, unit: str | None, units: tuple[str, ...]) -> None:
    if fact.leads and fact.leads[-1].unit != unit:
        fact.acknowledged_at = None  # the new lead has acknowledged nothing
    fact.leads.append(Lead(row.at, unit, units, row.actor, row.action))


def _reported(fact: ItemFacts, row: AuditRow) -> None:
    after = _after(row)
    lead = after.get("lead_unit_id")
    fact.leads.append(Lead(row.at, str(lead) if lead else None, (str(lead),) if lead else (), row.actor, row.action))
    fact.classified = bool(after.get("classified"))


def _graded(fact: ItemFacts, row: AuditRow) -> None:
    after = _after(row)
    fact.gradings.append(Grading(
        row.at, Grade(after.get("grade") or row.detail), row.actor, _time(after.get("pass_on_due_at")),
        _time(after.get("response_due_at")), regrade=row.action == "regraded", reason=str(after.get("reason") or ""),
    ))


def _assigned(fact: ItemFacts, row: AuditRow) -> None:
    units = tuple(str(u) for u in _after(row).get("units") or ())
    _change_lead(fact, row, units[0] if units else None, units)


def _acknowledged(fact: ItemFacts, row: AuditRow) -> None:
    fact.acknowledgements.append(Step(row.at, row.actor))
    if fact.acknowledged_at is None:
        fact.acknowledged_at = row.at


def _responded(fact: ItemFacts, row: AuditRow) -> None:
    fact.responses.append(Step(row.at, row.actor))


def _ended(fact: ItemFacts, row: AuditRow) -> None:
    if fact.ending is None:
        into = _after(row).get("merged_into") if row.action == "merged" else None
        fact.ending = Ending(row.at, row.action, row.actor, int(into) if into is not None else None)


def _classified(fact: ItemFacts, row: AuditRow) -> None:
    after = _after(row)
    fact.classified = bool(after.get("classified", row.action == "classified"))
    if row.action == "classified":
        summary = after.get("authorised_summary")
        fact.authorised_summary = str(summary) if summary else None


def _notice(fact: ItemFacts, row: AuditRow) -> None:
    reminder = parse_reminder(str(_after(row).get("key") or ""), row.at)
    if reminder is not None:
        fact.reminders.append(reminder)


def parse_reminder(key: str, at: datetime) -> Reminder | None:
    """The reminder a notice's key names (handlers/deadline_rules.Point.key:
    remind:item<id>:<clock>:<stage>:<occurrence>:<deadline>); None for any other notice and for the
    coordinators' copy of a reminder (its key has the chat after it)."""
    parts = key.split(":")
    if len(parts) != 6 or parts[0] != "remind":
        return None
    try:
        return Reminder(at, ClockName(parts[2]), parts[3], int(parts[4]))
    except ValueError:
        return None


_READERS = {
    "reported": _reported, "graded": _graded, "regraded": _graded, "assigned": _assigned, "returned": _assigned,
    "acknowledged": _acknowledged, "responded": _responded, "closed": _ended, "no_response": _ended,
    "merged": _ended, "classified": _classified, "declassified": _classified, "notice": _notice,
}
