"""Pure roster rules: shifts for a date, rotation arithmetic with fair leave skipping, resolving who
is on duty from templates + rotations + explicit assignments + overrides, and coverage gaps.

No I/O here: the store loads a `Plan`, these functions turn it into `Segment`s (who, which role,
from when to when), and the store materialises them for the fast lookup. Everything is tested
directly and with hypothesis.

Precedence for one slot of one shift (role 值班员 or 带班领导):
1. an explicit assignment for that date and shift names the people (those not on leave);
2. the remaining slots come from the rotation that applies to the shift: the person whose turn it
   is, or — when that person is on leave or already in this shift — the next one in a substitute
   order that itself rotates from cycle to cycle, so that covering for someone's leave is spread
   evenly over everybody instead of always landing on the next name in the list;
3. overrides (a person replaces another for a time range: 换班, 代班, 排班 by an admin) are applied
   last on the time axis, in the order they were made, splitting a shift where they begin or end.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from domain.vocab import Role
from handlers.calendar import DayType, HolidayCalendar
from handlers.roster_limits import LIMITED_ROLE, DutyLimits, Strain, strains

DUTY_ROLES = (Role.DUTY_LEADER, Role.DUTY_OFFICER)


class Advance(StrEnum):
    SHIFT = "每班"
    DAY = "每天"
    WEEK = "每周"


class Source(StrEnum):
    ROTATION = "rotation"
    ASSIGNMENT = "assignment"
    OVERRIDE = "override"


@dataclass(frozen=True)
class ShiftTemplate:
    """白班 08:30–17:30 on 工作日; an end at or before the start means the next day (same = 24 h)."""

    name: str
    day_type: DayType
    start: time
    end: time
    officers: int = 1
    leaders: int = 1

    @property
    def minutes(self) -> int:
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        return end - start if end > start else end - start + 24 * 60

    def slots(self, role: Role) -> int:
        return self.officers if role is Role.DUTY_OFFICER else self.leaders

    def span_text(self) -> str:
        nxt = "次日" if self.minutes + self.start.hour * 60 + self.start.minute > 24 * 60 else ""
        return f"{self.start:%H:%M}—{nxt}{self.end:%H:%M}"


@dataclass(frozen=True)
class Rotation:
    role: Role
    people: tuple[str, ...]
    advance: Advance
    start: date
    shifts: frozenset[str] = frozenset()  # the shift names it staffs; empty: every shift

    def applies(self, role: Role, shift: str, day: date) -> bool:
        return role is self.role and day >= self.start and (not self.shifts or shift in self.shifts)


@dataclass(frozen=True)
class Assignment:
    day: date
    shift: str
    role: Role
    people: tuple[str, ...]


@dataclass(frozen=True)
class Override:
    person: str
    replaces: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Leave:
    person: str
    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True)
class Plan:
    """Everything that decides one chat's roster."""

    templates: tuple[ShiftTemplate, ...] = ()
    rotations: tuple[Rotation, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    overrides: tuple[Override, ...] = ()  # in the order they were made
    leaves: tuple[Leave, ...] = ()


@dataclass(frozen=True)
class Shift:
    """One occurrence of a template on a date."""

    day: date
    name: str
    day_type: DayType
    start: datetime  # UTC
    end: datetime  # UTC
    officers: int
    leaders: int
    known: bool = True  # False: the day type is provisional (year not published)

    def slots(self, role: Role) -> int:
        return self.officers if role is Role.DUTY_OFFICER else self.leaders


@dataclass(frozen=True)
class Segment:
    """A person on duty in a role for a time range, part (or all) of one shift."""

    day: date
    shift: str
    shift_start: datetime
    shift_end: datetime
    role: Role
    slot: int
    person: str
    start: datetime
    end: datetime
    source: Source
    provisional: bool = False


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime
    role: Role
    reason: str
    shift: str | None = None
    day: date | None = None


@dataclass
class Resolution:
    shifts: list[Shift] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    unfilled: list[Gap] = field(default_factory=list)  # slots nobody could take
    unknown_days: list[date] = field(default_factory=list)


# -- shifts ------------------------------------------------------------------------------------


def days_between(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def shift_times(day: date, template: ShiftTemplate, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC start and end; the end is wall-clock time in `tz` (08:30 → 次日08:30 stays 08:30)."""
    start_local = datetime.combine(day, template.start, tzinfo=tz)
    end_local = start_local + timedelta(minutes=template.minutes)  # same tzinfo: wall-clock arithmetic
    return start_local.astimezone(UTC), end_local.astimezone(UTC)


def shifts_for_day(day: date, templates: Sequence[ShiftTemplate], calendar: HolidayCalendar,
                   tz: ZoneInfo) -> list[Shift]:
    info = calendar.info(day)
    result = []
    for template in sorted((t for t in templates if t.day_type is info.day_type), key=lambda t: t.start):
        start, end = shift_times(day, template, tz)
        result.append(Shift(day, template.name, info.day_type, start, end, template.officers, template.leaders,
                            info.known))
    return result


def template_problems(templates: Sequence[ShiftTemplate]) -> list[str]:
    """Overlaps between shifts of one day type (two 白班 at once would make "who is on duty" ambiguous)."""
    problems = []
    for day_type in DayType:
        spans = sorted((t for t in templates if t.day_type is day_type), key=lambda t: t.start)
        for a, b in itertools.pairwise(spans):
            a_end = a.start.hour * 60 + a.start.minute + a.minutes
            if a_end > b.start.hour * 60 + b.start.minute:
                problems.append(f"{day_type.value}的“{a.name}”与“{b.name}”时间重叠")
        if len(spans) > 1:
            first, last = spans[0], spans[-1]
            if last.start.hour * 60 + last.start.minute + last.minutes > 24 * 60 + first.start.hour * 60 + \
                    first.start.minute:
                problems.append(f"{day_type.value}的“{last.name}”与次日“{first.name}”时间重叠")
    return problems


# -- questions about the result ----------------------------------------------------------------------


def on_duty_at(segments: Iterable[Segment], at: datetime) -> dict[Role, list[str]]:
    found: dict[Role, list[tuple[int, str]]] = {role: [] for role in DUTY_ROLES}
    for seg in segments:
        if seg.start <= at < seg.end:
            found[seg.role].append((seg.slot, seg.person))
    return {role: [p for _, p in sorted(found[role])] for role in DUTY_ROLES}


def merge_intervals(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def uncovered(spans: Iterable[tuple[datetime, datetime]], start: datetime, end: datetime
              ) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) no span covers."""
    holes = []
    cursor = start
    for s, e in merge_intervals(spans):
        if e <= cursor:
            continue
        if s >= end:
            break
        if s > cursor:
            holes.append((cursor, s))
        cursor = max(cursor, e)
    if cursor < end:
        holes.append((cursor, end))
    return holes


@dataclass(frozen=True)
class Coverage:
    gaps: list[Gap]
    unreachable: list[Segment]
    unknown_days: list[date]
    strains: list[Strain] = field(default_factory=list)  # stretches of duty over the limit

    @property
    def ok(self) -> bool:
        return not self.gaps


def coverage(resolution: Resolution, start: datetime, end: datetime, reachable: Callable[[str], bool],
             limits: DutyLimits | None = None) -> Coverage:
    """Every gap in [start, end): times with nobody of a role on duty, and shifts short of people;
    plus the shifts whose person cannot be reached, the days whose type is not known yet, and
    (with `limits`) the stretches of duty reaching into [start, end) that are too long."""
    gaps: list[Gap] = []
    for role in DUTY_ROLES:
        spans = [(s.start, s.end) for s in resolution.segments if s.role is role]
        for hole_start, hole_end in uncovered(spans, start, end):
            gaps.append(Gap(hole_start, hole_end, role, "无人值班"))
    holes = {(g.role, g.start, g.end) for g in gaps}
    for slot in resolution.unfilled:
        if slot.end <= start or slot.start >= end:
            continue
        inside = any(role is slot.role and s <= slot.start and slot.end <= e for role, s, e in holes)
        if not inside:  # others of the role are there: the shift is short of people
            gaps.append(replace(slot, reason=f"缺员：{slot.reason}"))
    gaps.sort(key=lambda g: (g.start, DUTY_ROLES.index(g.role)))
    unreachable = [s for s in resolution.segments if s.end > start and s.start < end and not reachable(s.person)]
    unknown = [d for d in resolution.unknown_days]
    too_long = [] if limits is None else [
        s for s in strains(((g.person, g.start, g.end) for g in resolution.segments if g.role is LIMITED_ROLE), limits)
        if s.end > start and s.start < end]
    return Coverage(gaps, unreachable, unknown, too_long)


def window_days(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[date, date]:
    """The shift dates that can touch [start, end): a night shift of the day before reaches into it."""
    return start.astimezone(tz).date() - timedelta(days=1), (end - timedelta(microseconds=1)).astimezone(tz).date()
