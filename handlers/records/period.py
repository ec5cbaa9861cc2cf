"""定期通报 (periodic notice, 000 §五; 001 第十一条; 003 §二(七)): the figures of a week, a month or any
run of days, per unit, from the audit trail (handlers/records/facts.py). The document that shows them
is period_doc.py's; the schedule period_jobs.py's.

What each figure means (each checked by hand against tests/records_fixture.py):
- 受理 (items by grade): the items reported in the period, by their grade at its end (未定级: not
  graded yet); per unit by their lead unit at its end. Merged items (合并) are counted apart.
- 应签收 / 应回应: the items whose 签收 / 回应 deadline in force (facts.Deadline.in_force) falls in the
  period — whenever they were reported — less those that ended before it (合并, 不予回应); 按时: done
  by the deadline. The rate is 按时 / 应; a unit with none has no rate (shown "—").
- 超时事项: each of those done late, or still owed at the period's end, with how late.
- 用时 (time to 签收 / 回应): from the report to the 签收 in force / the first 回应, over the items
  counted in 应签收 / 应回应 that have it; the median (the mean of the middle two of an even count) and
  the 90th percentile by nearest rank (the ⌈0.9·n⌉-th smallest).
- 提醒 / 催办: the reminders delivered in the period (audit rows "notice"), each to the unit that led
  the item when it was sent; 催办 are those at or after the deadline. The 定级 clock's go to the duty
  officers, not to a unit, and are not counted per unit.
- 零报告缺报: the days of the period (whole days before its end) on which a unit had neither an item
  of its own nor a 零报告 (handlers/ops/zero_report.py, the daily log's rule).
- 排名: the units with anything in 应签收 or 应回应, by their combined on-time rate (按时签收 + 按时回应
  over 应签收 + 应回应), then the shorter total time overdue, the fewer 催办, the fewer days without
  零报告, and the configuration's order.
- Units below `[records].on_time_threshold` in either rate are named.
A unit answers for an item's clocks when it leads the item at the end of the period (a 转办 hands
the clocks to the new lead, who is held to the same deadlines).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from operator import itemgetter
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from domain.config import Config
from domain.directory import Directory
from domain.vocab import Grade
from handlers.deadline_rules import ClockName
from handlers.ops.zero_report import expected_units, status_from_rows
from handlers.records.facts import max_clock
from handlers.records.period_facts import PeriodFacts, period_facts, with_summaries
from store.records_period import AuditRow

CLOCKS = (ClockName.PASS_ON, ClockName.RESPONSE)
PASS_ON, RESPONSE = CLOCKS
_NUMBER = itemgetter(0)  # Line.number
_OVERDUE_ORDER = itemgetter(5, 1, 4)  # Overdue: due, number, clock (a StrEnum: its value's order)


class Span(StrEnum):
    WEEK = "周"
    MONTH = "月"
    DAYS = ""  # any run of days (统计 11-01 至 11-30)


@dataclass(frozen=True)
class Period:
    """Local days `first` … `last` (inclusive)."""

    first: date
    last: date
    span: Span = Span.DAYS

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC."""
        start = datetime.combine(self.first, time(0), tzinfo=tz)
        end = datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=tz)
        return start.astimezone(UTC), end.astimezone(UTC)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    @property
    def key(self) -> str:
        """Names the period in idempotency keys."""
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


def week_of(day: date) -> Period:
    monday = day - timedelta(days=day.weekday())
    return Period(monday, monday + timedelta(days=6), Span.WEEK)


def month_of(day: date) -> Period:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Period(first, following - timedelta(days=1), Span.MONTH)


def last_week(today: date) -> Period:
    return week_of(today - timedelta(days=7))


def last_month(today: date) -> Period:
    return month_of(today.replace(day=1) - timedelta(days=1))


@dataclass
class ClockFigures:
    """One unit's 签收 or 回应 clocks of the period."""

    owed: int = 0  # 应签收 / 应回应
    on_time: int = 0
    overdue: timedelta = timedelta(0)  # the total time late (done late, or still owed at the cut)
    durations: list[timedelta] = field(default_factory=list)  # report → done

    @property
    def rate(self) -> float | None:
        return self.on_time / self.owed if self.owed else None

    @property
    def median(self) -> timedelta | None:
        return median(self.durations)

    @property
    def p90(self) -> timedelta | None:
        return nearest_rank(self.durations, 0.9)


def median(values: Sequence[timedelta]) -> timedelta | None:
    """The middle value; of an even count, the mean of the middle two."""
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def nearest_rank(values: Sequence[timedelta], fraction: float) -> timedelta | None:
    """The ⌈fraction·n⌉-th smallest value (nearest-rank percentile)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


@dataclass
class UnitFigures:
    unit: str | None  # None: items without a lead unit
    by_grade: dict[Grade | None, int] = field(default_factory=dict)
    pass_on: ClockFigures = field(default_factory=ClockFigures)
    response: ClockFigures = field(default_factory=ClockFigures)
    reminders: int = 0  # 提醒
    urges: int = 0  # 催办
    zero_missed: int = 0  # days without an item or a 零报告
    rank: int | None = None

    @property
    def items(self) -> int:
        return sum(self.by_grade.values())

    @property
    def owed(self) -> int:
        return self.pass_on.owed + self.response.owed

    @property
    def combined_rate(self) -> float | None:
        owed = self.owed
        return (self.pass_on.on_time + self.response.on_time) / owed if owed else None

    def clock(self, name: ClockName) -> ClockFigures:
        return self.pass_on if name is ClockName.PASS_ON else self.response


class Overdue(NamedTuple):
    """A 签收 or 回应 done late, or still owed at the period's end."""

    item_id: int
    number: int
    unit: str | None
    grade: Grade | None
    clock: ClockName
    due: datetime
    done: datetime | None
    stopped: str | None  # the item ended without it: 合并 / 不予回应 (its kind), else None
    late_by: timedelta
    summary: str  # public: a 涉密 item's authorised summary


@dataclass
class PeriodNotice:
    """The figures of one 定期通报."""

    period: Period
    cut: datetime  # the end of the period, or now for a period still running
    partial: bool  # made before the period ended
    units: list[UnitFigures]  # ranked first (by rank), then the others in the configuration's order
    overdue: list[Overdue]
    reported: dict[Grade | None, int]  # every item reported in the period, merged ones too
    merged: int
    closed: int  # of the items reported in the period, 办结 by the cut
    no_response: int
    threshold: float

    @property
    def total(self) -> int:
        return sum(self.reported.values())

    def below(self) -> list[UnitFigures]:
        """The units whose 签收 or 回应 rate is below the threshold."""
        return [u for u in self.units if any(r is not None and r < self.threshold
                                             for r in (u.pass_on.rate, u.response.rate))]

    def totals(self) -> UnitFigures:
        """The sums over all units (rates over all clocks)."""
        total = UnitFigures(None)
        for unit in self.units:
            for name in CLOCKS:
                mine, all_ = unit.clock(name), total.clock(name)
                all_.owed += mine.owed
                all_.on_time += mine.on_time
                all_.overdue += mine.overdue
                all_.durations += mine.durations
            total.reminders += unit.reminders
            total.urges += unit.urges
        return total


async def period_notice(session: AsyncSession, config: Config, directory: Directory, period: Period,
                        now: datetime) -> PeriodNotice:
    """The notice of `period` as the audit trail has it at `now` (a period not over yet: so far)."""
    start, end = period.bounds(config.tz)
    cut = min(end, now)
    with paused_gc():
        found = await period_facts(session, start, end, cut=cut, lookback=max_clock(config.policy), tz=config.tz)
        notice = figures(found, period, config, directory, cut)
        # The summaries of the items listed (overdue), read only for them, then the list's words.
        await with_summaries(session, found, {o.item_id for o in notice.overdue})
        summaries = found.summaries
        notice.overdue = [Overdue(*o[:-1], summaries.get(o.item_id, "")) for o in notice.overdue]
        del found, summaries  # freed before the collector is back: it would look at each of them once more
    return notice


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while a month's facts are built: a hundred thousand items
    make a few hundred thousand small objects at once, and the collector would scan them over and
    over (a third of the time) though none is in a cycle — reference counting frees them all."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def figures(found: PeriodFacts, period: Period, config: Config, directory: Directory, cut: datetime) -> PeriodNotice:
    """The notice from the facts (pure: tested directly)."""
    start, end = period.bounds(config.tz)
    units: dict[str | None, UnitFigures] = {u: UnitFigures(u) for u in expected_units(directory)}
    notice = PeriodNotice(period, cut, cut < end, [], [], {}, 0, 0, 0, config.records.on_time_threshold)
    _count_items(notice, units, found, start, cut)
    for unit, (reminders, urges) in found.reminders.items():
        figures_of = units.setdefault(unit, UnitFigures(unit))
        figures_of.reminders += reminders
        figures_of.urges += urges
    _count_zero_reports(units, found.day_rows, period, config.tz, cut)
    notice.overdue.sort(key=_OVERDUE_ORDER)
    notice.units = _ranked(list(units.values()))
    for unit_figures in notice.units:  # sorted once: the median and percentile of each, and of all, sort again
        unit_figures.pass_on.durations.sort()
        unit_figures.response.durations.sort()
    return notice


def _count_items(notice: PeriodNotice, units: dict[str | None, UnitFigures], found: PeriodFacts, start: datetime,
                 cut: datetime) -> None:
    """Each item's figures to its lead at the cut (a unit not configured gets a row when first met, in
    the order of the items' numbers). A clock is facts.ClockResult's, its rules written out here for
    a hundred thousand items: not done, it stops at the item's end; one stopped before its deadline
    is not judged; on time when done by the deadline; else late until done, stopped, or the cut."""
    summaries, overdue = found.summaries, notice.overdue
    kinds: dict[tuple[str | None, Grade | None, str | None], int] = {}  # the items reported in the period
    for line in sorted(found.items, key=_NUMBER):
        number, item_id, reported_at, lead, grade, ending, ended_at, pass_on_due, acknowledged, response_due, \
            responded = line
        unit = units.get(lead)
        if unit is None:
            unit = units[lead] = UnitFigures(lead)
        if start <= reported_at < cut:
            kind = lead, grade, ending
            kinds[kind] = kinds.get(kind, 0) + 1
        for clock, due, done in ((PASS_ON, pass_on_due, acknowledged), (RESPONSE, response_due, responded)):
            if due is None or not start <= due < cut:
                continue
            stopped = ended_at if done is None else None
            if stopped is not None and stopped <= due:  # not judged
                continue
            figures_of = unit.pass_on if clock is PASS_ON else unit.response
            figures_of.owed += 1
            if done is not None:
                figures_of.durations.append(done - reported_at)
                if done <= due:
                    figures_of.on_time += 1
                    continue
            until = done or stopped or cut
            if until <= due:
                continue
            late = until - due
            figures_of.overdue += late
            overdue.append(Overdue(item_id, number, lead, grade, clock, due, done, ending if stopped else None, late,
                                   summaries.get(item_id, "")))
    for (lead, grade, ending), count in kinds.items():
        notice.reported[grade] = notice.reported.get(grade, 0) + count
        notice.merged += count if ending == "merged" else 0
        notice.closed += count if ending == "closed" else 0
        notice.no_response += count if ending == "no_response" else 0
        if ending != "merged":
            by_grade = units[lead].by_grade
            by_grade[grade] = by_grade.get(grade, 0) + count


def _count_zero_reports(units: dict[str | None, UnitFigures], rows: Sequence[AuditRow], period: Period,
                        tz: ZoneInfo, cut: datetime) -> None:
    """Each unit's days without an item or a 零报告 (whole days before the cut)."""
    by_day: dict[date, list[AuditRow]] = {}
    for row in rows:  # in the order written (PeriodFacts.day_rows)
        by_day.setdefault(row.at.astimezone(tz).date(), []).append(row)
    expected = [u for u in units if u is not None]
    for day in period.days():
        if datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz) > cut:
            break
        for unit in status_from_rows(day, by_day.get(day, [])).missing(expected):
            units[unit].zero_missed += 1


def _ranked(units: list[UnitFigures]) -> list[UnitFigures]:
    order = {unit.unit: index for index, unit in enumerate(units)}
    ranked = sorted(
        (u for u in units if u.owed),
        key=lambda u: (-(u.combined_rate or 0.0), u.pass_on.overdue + u.response.overdue, u.urges, u.zero_missed,
                       order[u.unit]),
    )
    for rank, unit in enumerate(ranked, start=1):
        unit.rank = rank
    # Items without a lead unit (after the lead's 退回) get a row only when they count somewhere.
    others = [u for u in units if not u.owed and (u.unit is not None or u.items or u.reminders or u.urges)]
    return ranked + others
