"""Resolving a chat's plan into who is on duty when: rotation arithmetic with fair substitutes for
people on leave (within the limits of continuous duty and rest), explicit assignments, and overrides
applied on the time axis. The precedence is described in handlers/roster_rules.py. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from domain.vocab import Role
from handlers.calendar import HolidayCalendar
from handlers.roster_limits import LIMITED_ROLE, DutyLimits
from handlers.roster_rules import (
    DUTY_ROLES,
    Advance,
    Gap,
    Override,
    Plan,
    Resolution,
    Rotation,
    Segment,
    Shift,
    Source,
    days_between,
    shifts_for_day,
)

# -- rotations -----------------------------------------------------------------------------------


def period_of(rotation: Rotation, day: date, shift_count: int | None = None) -> int:
    """Which turn of the rotation a shift on `day` is: days or weeks since the start, or (每班) the
    number of shifts the rotation staffed before this one."""
    if rotation.advance is Advance.DAY:
        return (day - rotation.start).days
    if rotation.advance is Advance.WEEK:
        return (day - rotation.start).days // 7
    if shift_count is None:
        raise ValueError("a 每班 rotation needs the count of its earlier shifts")
    return shift_count


def candidates(people: Sequence[str], period: int, slots: int, slot: int) -> list[str]:
    """Everybody in the rotation, in the order slot `slot` of turn `period` tries them.

    First the person whose turn it is; then the others, starting at a point that moves on by one
    each time the rotation comes round again, so repeated substitutions for the same absent person
    fall on different colleagues in turn.
    """
    count = len(people)
    if count == 0:
        return []
    position = period * slots + slot
    base, cycle = position % count, position // count
    others = [(base + 1 + i) % count for i in range(count - 1)]
    offset = cycle % (count - 1) if count > 1 else 0
    order = [base, *others[offset:], *others[:offset]]
    return [people[i] for i in order]


def staff(slots: int, explicit: Sequence[str], rotation: Rotation | None, period: int | None,
          available: Callable[[str], bool], may_substitute: Callable[[str], bool] | None = None
          ) -> list[str | None]:
    """The people for the slots of one role in one shift; None where nobody can be found.

    The person whose turn it is only has to be available; anybody else standing in for them
    must also pass `may_substitute` (the limits of continuous duty and rest)."""
    chosen: list[str | None] = []
    for person in explicit:
        if available(person) and person not in chosen:
            chosen.append(person)
    for slot in range(len(chosen), slots):
        pool = candidates(rotation.people, period, slots, slot) if rotation and period is not None else []
        turn = pool[0] if pool else None
        chosen.append(next((p for p in pool if p not in chosen and available(p)
                            and (p == turn or may_substitute is None or may_substitute(p))), None))
    return chosen


def rotation_for(rotations: Sequence[Rotation], role: Role, shift: str, day: date) -> Rotation | None:
    """The rotation staffing a shift: one naming the shift beats one for every shift; a later start wins."""
    applying = [r for r in rotations if r.applies(role, shift, day)]
    if not applying:
        return None
    return max(applying, key=lambda r: (bool(r.shifts), r.start))


# -- resolving -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Turn:
    """One shift to staff, its place in time order and the 每班 rotations' turn numbers for it."""

    index: int
    shift: Shift
    periods: dict[int, int]


def resolve(plan: Plan, first: date, last: date, calendar: HolidayCalendar, tz: ZoneInfo,
            limits: DutyLimits | None = None) -> Resolution:
    """Who is on duty in every shift of the dates first..last (inclusive).

    With `limits`, a substitute must fit the limits of continuous duty and rest around what they
    already do and what their own next turns will be; to see those, the day before and the day
    after the window are staffed too (and then left out of the result)."""
    margin = timedelta(days=1) if limits is not None else timedelta(0)
    turns = _turns(plan, first - margin, last + margin, calendar, tz)
    rest = None
    if limits is not None:
        # Everybody's own turns (no substitutes yet): what a substitute must still be fit for later.
        expected, _ = _staff_turns(plan, turns, _Rest(limits, [], closed=True))
        rest = _Rest(limits, expected)
    staffed, unfilled = _staff_turns(plan, turns, rest)
    segments = _cover_absent(plan, turns, apply_overrides([s for _, s in staffed], plan.overrides), limits,
                             unfilled)
    result = Resolution()
    result.shifts = [t.shift for t in turns if first <= t.shift.day <= last]
    result.segments = [s for s in segments if first <= s.day <= last]
    result.unfilled = [g for g in unfilled if g.day is not None and first <= g.day <= last]
    result.unknown_days = [d for d in days_between(first, last) if not calendar.info(d).known]
    return result


def _turns(plan: Plan, first: date, last: date, calendar: HolidayCalendar, tz: ZoneInfo) -> list[_Turn]:
    counting = [i for i, r in enumerate(plan.rotations) if r.advance is Advance.SHIFT]
    counts = dict.fromkeys(counting, 0)
    origin = min([first, *(plan.rotations[i].start for i in counting)])
    if origin < first:
        _count_shifts(plan, origin, first - timedelta(days=1), counting, counts, calendar)
    turns: list[_Turn] = []
    for day in days_between(first, last):
        for shift in shifts_for_day(day, plan.templates, calendar, tz):
            periods = {}
            for i in counting:
                rotation = plan.rotations[i]
                if rotation.start <= day and (not rotation.shifts or shift.name in rotation.shifts):
                    periods[i] = counts[i]
                    counts[i] += 1
            turns.append(_Turn(len(turns), shift, periods))
    return turns


def _count_shifts(plan: Plan, first: date, last: date, counting: list[int], counts: dict[int, int],
                  calendar: HolidayCalendar) -> None:
    """Advance the 每班 counters over days before the window without building the shifts."""
    for day in days_between(first, last):
        day_type = calendar.day_type(day)
        for template in plan.templates:
            if template.day_type is not day_type:
                continue
            for i in counting:
                rotation = plan.rotations[i]
                if rotation.start <= day and (not rotation.shifts or template.name in rotation.shifts):
                    counts[i] += 1


class _Rest:
    """What each person does so far in this resolution, and their own turns still to come."""

    def __init__(self, limits: DutyLimits, expected: list[tuple[int, Segment]], *, closed: bool = False) -> None:
        self.limits = limits
        self.closed = closed  # admit no substitute at all
        self.later: dict[str, list[tuple[int, datetime, datetime]]] = {}
        for index, seg in expected:
            if seg.role is LIMITED_ROLE:
                    self.later.setdefault(seg.person, []).append((index, seg.start, seg.end))
        self.done: dict[str, list[tuple[datetime, datetime]]] = {}

    def record(self, seg: Segment) -> None:
        self.done.setdefault(seg.person, []).append((seg.start, seg.end))

    def allows(self, index: int, person: str, *, start: datetime, end: datetime) -> bool:
        if self.closed:
            return False
        spans = self.done.get(person, []) + [(s, e) for i, s, e in self.later.get(person, []) if i > index]
        return self.limits.allows(spans, start, end)


UNSTAFFED = "无可排人员（均请假、已排或需休息）"


def _free(plan: Plan, start: datetime, end: datetime, person: str) -> bool:
    return not _on_leave(plan, person, start, end)


def _on_leave(plan: Plan, person: str, start: datetime, end: datetime) -> bool:
    return any(leave.person == person and leave.overlaps(start, end) for leave in plan.leaves)


def _staff_turns(plan: Plan, turns: Sequence[_Turn], rest: _Rest | None
                 ) -> tuple[list[tuple[int, Segment]], list[Gap]]:
    explicit = {(a.day, a.shift, a.role): a.people for a in plan.assignments}
    staffed: list[tuple[int, Segment]] = []
    unfilled: list[Gap] = []
    for turn in turns:
        shift = turn.shift
        for role in DUTY_ROLES:
            slots = shift.slots(role)
            given = explicit.get((shift.day, shift.name, role), ())
            if slots == 0 and not given:
                continue
            rotation, period = _rotation_period(plan, turn, role)
            people = staff(slots, given, rotation, period, partial(_free, plan, shift.start, shift.end),
                           None if rest is None or role is not LIMITED_ROLE else
                           partial(rest.allows, turn.index, start=shift.start, end=shift.end))
            for slot, person in enumerate(people):
                if person is None:
                    reason = "未设置轮班" if rotation is None and not given else UNSTAFFED
                    unfilled.append(Gap(shift.start, shift.end, role, reason, shift.name, shift.day))
                    continue
                source = Source.ASSIGNMENT if person in given else Source.ROTATION
                seg = Segment(shift.day, shift.name, shift.start, shift.end, role, slot, person,
                              shift.start, shift.end, source, not shift.known)
                staffed.append((turn.index, seg))
                if rest is not None and role is LIMITED_ROLE:
                    rest.record(seg)
    return staffed, unfilled


def _rotation_period(plan: Plan, turn: _Turn, role: Role) -> tuple[Rotation | None, int | None]:
    rotation = rotation_for(plan.rotations, role, turn.shift.name, turn.shift.day)
    if rotation is None:
        return None, None
    if rotation.advance is Advance.SHIFT:
        return rotation, turn.periods.get(plan.rotations.index(rotation))
    return rotation, period_of(rotation, turn.shift.day)


def _cover_absent(plan: Plan, turns: Sequence[_Turn], staffed: list[Segment], limits: DutyLimits | None,
                  unfilled: list[Gap]) -> list[Segment]:
    """Someone put on duty by an override who is on leave then (the leave came later) is replaced
    like anybody on leave: by the next free person of the rotation, or the slot is a gap."""
    by_start = {t.shift.start: t for t in turns}
    result: list[Segment | None] = list(staffed)
    for position, seg in enumerate(staffed):
        if not _on_leave(plan, seg.person, seg.start, seg.end):
            continue
        turn = by_start.get(seg.shift_start)
        current = [s for s in result if s is not None]
        found = None if turn is None else _substitute(plan, turn, seg, current, limits)
        if found is None:
            unfilled.append(Gap(seg.start, seg.end, seg.role, UNSTAFFED, seg.shift, seg.day))
            result[position] = None
        else:
            result[position] = replace(seg, person=found, source=Source.ROTATION)
    return [s for s in result if s is not None]


def _substitute(plan: Plan, turn: _Turn, seg: Segment, current: list[Segment], limits: DutyLimits | None
                ) -> str | None:
    """The first of the rotation's substitute order who is free for `seg` and within the limits."""
    rotation, period = _rotation_period(plan, turn, seg.role)
    if rotation is None or period is None:
        return None
    pool = candidates(rotation.people, period, max(turn.shift.slots(seg.role), seg.slot + 1), seg.slot)
    taken = {s.person for s in current if s.shift_start == seg.shift_start and s.role is seg.role
             and s.start < seg.end and seg.start < s.end}
    for person in pool:
        if person in taken or _on_leave(plan, person, seg.start, seg.end):
            continue
        mine = [(s.start, s.end) for s in current if s.person == person and s.role is LIMITED_ROLE]
        if limits is None or seg.role is not LIMITED_ROLE or limits.allows(mine, seg.start, seg.end):
            return person
    return None


def apply_overrides(segments: list[Segment], overrides: Sequence[Override]) -> list[Segment]:
    """Replace people on the time axis, splitting segments where an override begins or ends."""
    for override in overrides:
        changed: list[Segment] = []
        for seg in segments:
            if seg.person != override.replaces or override.end <= seg.start or override.start >= seg.end:
                changed.append(seg)
                continue
            if seg.start < override.start:
                changed.append(replace(seg, end=override.start))
            changed.append(replace(seg, person=override.person, start=max(seg.start, override.start),
                                   end=min(seg.end, override.end), source=Source.OVERRIDE))
            if override.end < seg.end:
                changed.append(replace(seg, start=override.end))
        segments = changed
    return segments
