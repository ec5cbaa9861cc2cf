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

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from domain.config import EscalationPolicy, GradePolicy, PolicySection, QuietHours
from domain.vocab import FINAL_STATUSES, Grade, ItemStatus


class ClockName(StrEnum):
    GRADE = "grade"
    PASS_ON = "pass_on"
    RESPONSE = "response"

    @property
    def word(self) -> str:
        # The pass-on clock is named by what ends it (签收): "签收时限" tells the unit what to do.
        return {ClockName.GRADE: "定级", ClockName.PASS_ON: "签收", ClockName.RESPONSE: "回应"}[self]


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
    held: int = 0  # earlier repeats held back by the quiet hours and folded into this one
    final: bool = False  # the last repeat of a chase with an end (较大 / 一般): 超时未办 from here

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
    # A regrade that put a deadline in the past: that deadline's overdue chain starts here.
    overdue_from: datetime | None = None


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


def repeat_offset(rules: GradePolicy, occurrence: int) -> timedelta:
    """How long after the start of the overdue chain its `occurrence`-th repeat falls: each
    interval is the previous one times repeat_growth, at most repeat_max_minutes."""
    total = 0.0
    interval = float(rules.repeat_minutes)
    cap = float(rules.repeat_max_minutes or rules.repeat_minutes * 1000)
    for _ in range(occurrence):
        total += min(interval, cap)
        interval = min(interval * rules.repeat_growth, cap)
    return timedelta(minutes=total)


def _raw_points(clock: RunningClock, rules: GradePolicy, overdue_from: datetime | None) -> Iterator[Point]:
    """The clock's points in intended order, before quiet hours: the reminders before the
    deadline, the overdue notice and its repeats — without end when the grade is chased until
    handled (001 第九条 不漏报、不迟报)."""
    span = clock.due - clock.started
    for fraction in sorted(rules.reminders):
        at = clock.started + span * fraction
        yield Point(clock.name, f"{round(fraction * 100)}pct", 0, at, at, clock.due)
    # A deadline already past when a regrade set it: the chain starts at the regrade, at once.
    origin = overdue_from if overdue_from is not None and overdue_from > clock.due else clock.due
    occurrence = 0
    while rules.until_handled or occurrence <= rules.max_repeats:
        at = origin + repeat_offset(rules, occurrence)
        final = not rules.until_handled and occurrence == rules.max_repeats
        yield Point(clock.name, "overdue", occurrence, at, at, clock.due, final=final)
        occurrence += 1


def points_for(
    clock: RunningClock, rules: GradePolicy, quiet: QuietHours, tz: ZoneInfo, overdue_from: datetime | None = None
) -> Iterator[Point]:
    """Every reminder point of one clock, in sending order (lazily: a chase may have no end).

    Points that quiet hours move to the same moment are posted as one, which says how many were
    held (the last of them, so its key and its place in the chain stay those of the last)."""
    held: Point | None = None
    count = 0
    for point in _raw_points(clock, rules, overdue_from):
        send_at = defer_for_quiet(point.intended, quiet, tz) if rules.quiet else point.intended
        point = replace(point, send_at=send_at)
        if held is not None and held.send_at == send_at and send_at != held.intended:
            count += 1
            held = replace(point, held=count)
            continue
        if held is not None:
            yield held
        held, count = point, 0
    if held is not None:
        yield held


def _merged(item: ItemClocks, policy: PolicySection, tz: ZoneInfo) -> Iterator[Point]:
    rules = policy_for(item, policy)
    streams = [points_for(clock, rules, policy.quiet_hours, tz, item.overdue_from) for clock in running_clocks(item)]
    return heapq.merge(*streams, key=lambda p: (p.send_at, p.intended, p.clock.value))


# Without an end to look for, a chase without end is listed this far past its last deadline.
LISTING_HORIZON = timedelta(days=7)


def item_points(item: ItemClocks, policy: PolicySection, tz: ZoneInfo, until: datetime | None = None) -> list[Point]:
    """The reminder points of the item's running clocks, in sending order, up to `until`
    (default: a week past the last deadline, for a chase without end)."""
    if until is None:
        dues = [c.due for c in running_clocks(item)]
        until = max(dues) + LISTING_HORIZON if dues else item.reported_at
    return list(itertools.takewhile(lambda p: p.send_at <= until, _merged(item, policy, tz)))


def due_points(item: ItemClocks, policy: PolicySection, tz: ZoneInfo, now: datetime) -> list[Point]:
    return item_points(item, policy, tz, until=now)


def next_point_at(item: ItemClocks, policy: PolicySection, tz: ZoneInfo, now: datetime) -> datetime | None:
    """When the sweep next needs to look at this item (None: no clock will ask again)."""
    return next((p.send_at for p in _merged(item, policy, tz) if p.send_at > now), None)


@dataclass(frozen=True)
class Audience:
    """Who a reminder reaches, as roles; bot/ turns them into people."""

    unit_roles: tuple[str, ...]  # "联络员", "分管领导", "主要负责人" of the item's lead unit
    duty_officer: bool  # the 值班员 on duty in the item's chat
    reporter: bool
    coordinators_chat: bool  # also post a copy in the coordinators' chat
    duty_leader: bool = False  # the 带班领导 on duty (an overdue 重大 item)


def audience(point: Point, escalation: EscalationPolicy, grade: Grade | None = None) -> Audience:
    """Before the deadline: whoever must act next. After it: the escalation chain; the 带班领导
    on duty joins the chase of an overdue 重大 item, and the last repeat of a chase with an end
    goes to the coordinators (超时未办)."""
    copy = point.overdue and (point.occurrence >= escalation.coordinators_after or point.final)
    if point.clock is ClockName.GRADE:
        return Audience((), duty_officer=True, reporter=True, coordinators_chat=copy)
    roles: tuple[str, ...]
    if not point.overdue:
        roles = ("联络员",) if point.clock is ClockName.PASS_ON else ("联络员", "分管领导")
        return Audience(roles, duty_officer=point.clock is ClockName.PASS_ON, reporter=False,
                        coordinators_chat=False)
    roles = ("联络员", "分管领导")
    if point.occurrence >= escalation.principal_after:
        roles += ("主要负责人",)
    return Audience(roles, duty_officer=True, reporter=False, coordinators_chat=copy,
                    duty_leader=grade is Grade.MAJOR)
