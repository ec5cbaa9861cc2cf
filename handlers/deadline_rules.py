"""Pure rules of the deadline clocks: when each reminder is due, who it reaches, quiet hours.

Each item runs up to three clocks, all counted from the report time (DOMAIN.md):
- 定级 (grade): until the item is graded;
- 通报 (pass-on): from grading until the unit acknowledges (签收);
- 回应 (response): from grading until the public response (回应).
For each running clock the policy of the item's grade names reminder points before the deadline
(fractions of the clock), the overdue notice at the deadline, and repeats after it, escalating.
An ungraded item's grade clock follows the 重大 policy: until someone has judged it, it may be
major, so it is chased day and night.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.config import EscalationPolicy, GradePolicy, PolicySection, QuietHours
from bot.vocab import FINAL_STATUSES, Grade, ItemStatus


class ClockName(StrEnum):
    GRADE = "grade"
    PASS_ON = "pass_on"
    RESPONSE = "response"

    @property
    def word(self) -> str:
        return {ClockName.GRADE: "定级", ClockName.PASS_ON: "通报", ClockName.RESPONSE: "回应"}[self]


@dataclass(frozen=True)
class RunningClock:
    name: ClockName
    started: datetime
    due: datetime


@dataclass(frozen=True)
class Point:
    """One reminder the policy asks for."""

    clock: ClockName
    stage: str  # "50pct", "80pct" … before the deadline; "overdue" at and after it
    occurrence: int  # 0 for the overdue notice, n for the n-th repeat; 0 before the deadline
    intended: datetime  # the moment the policy names
    send_at: datetime  # the same, or the end of the quiet hours it falls in
    due: datetime  # the clock's deadline this point belongs to

    @property
    def overdue(self) -> bool:
        return self.stage == "overdue"

    def key(self, item_id: int) -> str:
        """The idempotency key: item, clock, stage, occurrence — and the deadline, so that a
        re-grade that moves the deadline gets reminders of its own."""
        return f"remind:item{item_id}:{self.clock.value}:{self.stage}:{self.occurrence}:{self.due:%Y%m%dT%H%M%SZ}"


@dataclass(frozen=True)
class ItemClocks:
    """The clock-relevant facts of an item (a plain view of the row, so the rules stay pure)."""

    status: str
    grade: Grade | None
    reported_at: datetime
    grade_due: datetime
    pass_on_due: datetime | None
    response_due: datetime | None
    acknowledged: bool
    responded: bool


def running_clocks(item: ItemClocks) -> list[RunningClock]:
    if ItemStatus(item.status) in FINAL_STATUSES:
        return []
    clocks = []
    if item.grade is None:
        clocks.append(RunningClock(ClockName.GRADE, item.reported_at, item.grade_due))
    if item.pass_on_due is not None and not item.acknowledged:
        clocks.append(RunningClock(ClockName.PASS_ON, item.reported_at, item.pass_on_due))
    if item.response_due is not None and not item.responded:
        clocks.append(RunningClock(ClockName.RESPONSE, item.reported_at, item.response_due))
    return clocks


def policy_for(item: ItemClocks, policy: PolicySection) -> GradePolicy:
    return policy.for_grade(item.grade or Grade.MAJOR)


def _parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def defer_for_quiet(at: datetime, quiet: QuietHours, tz: ZoneInfo) -> datetime:
    """`at`, or the end of the quiet window it falls in (local time; the window may span midnight)."""
    start, end = _parse_hhmm(quiet.start), _parse_hhmm(quiet.end)
    if start == end:
        return at
    local = at.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    spans_midnight = start > end
    inside = (clock >= start or clock < end) if spans_midnight else (start <= clock < end)
    if not inside:
        return at
    end_day = local.date()
    if spans_midnight and clock >= start:
        end_day += timedelta(days=1)
    release = datetime.combine(end_day, end, tzinfo=tz)
    return release.astimezone(at.tzinfo)


def points_for(
    clock: RunningClock, rules: GradePolicy, quiet: QuietHours, tz: ZoneInfo
) -> list[Point]:
    """Every reminder point of one clock, in time order."""
    span = clock.due - clock.started
    raw: list[tuple[str, int, datetime]] = [
        (f"{round(fraction * 100)}pct", 0, clock.started + span * fraction) for fraction in sorted(rules.reminders)
    ]
    raw.append(("overdue", 0, clock.due))
    repeat = timedelta(minutes=rules.repeat_minutes)
    raw += [("overdue", n, clock.due + repeat * n) for n in range(1, rules.max_repeats + 1)]
    points = []
    for stage, occurrence, intended in raw:
        send_at = defer_for_quiet(intended, quiet, tz) if rules.quiet else intended
        points.append(Point(clock.name, stage, occurrence, intended, send_at, clock.due))
    return sorted(points, key=lambda p: (p.send_at, p.intended))


def item_points(item: ItemClocks, policy: PolicySection, tz: ZoneInfo) -> list[Point]:
    """All reminder points of the item's running clocks, in sending order."""
    rules = policy_for(item, policy)
    points = [p for clock in running_clocks(item) for p in points_for(clock, rules, policy.quiet_hours, tz)]
    return sorted(points, key=lambda p: (p.send_at, p.intended, p.clock.value))


def due_points(item: ItemClocks, policy: PolicySection, tz: ZoneInfo, now: datetime) -> list[Point]:
    return [p for p in item_points(item, policy, tz) if p.send_at <= now]


def next_point_at(item: ItemClocks, policy: PolicySection, tz: ZoneInfo, now: datetime) -> datetime | None:
    """When the sweep next needs to look at this item (None: no clock will ask again)."""
    future = [p.send_at for p in item_points(item, policy, tz) if p.send_at > now]
    return min(future) if future else None


@dataclass(frozen=True)
class Audience:
    """Who a reminder reaches, as roles; bot/ turns them into people."""

    unit_roles: tuple[str, ...]  # "联络员", "分管领导", "主要负责人" of the item's lead unit
    duty_officer: bool  # the 值班员 on duty in the item's chat
    reporter: bool
    coordinators_chat: bool  # also post a copy in the coordinators' chat


def audience(point: Point, escalation: EscalationPolicy) -> Audience:
    """Before the deadline: whoever must act next. After it: the escalation chain."""
    if point.clock is ClockName.GRADE:
        return Audience((), duty_officer=True, reporter=True,
                        coordinators_chat=point.overdue and point.occurrence >= escalation.coordinators_after)
    roles: tuple[str, ...]
    if not point.overdue:
        roles = ("联络员",) if point.clock is ClockName.PASS_ON else ("联络员", "分管领导")
        return Audience(roles, duty_officer=point.clock is ClockName.PASS_ON, reporter=False,
                        coordinators_chat=False)
    roles = ("联络员", "分管领导")
    if point.occurrence >= escalation.principal_after:
        roles += ("主要负责人",)
    return Audience(roles, duty_officer=True, reporter=False,
                    coordinators_chat=point.occurrence >= escalation.coordinators_after)
