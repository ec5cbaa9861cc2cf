"""Pure roster rules: day types with 调休, shift times in any server timezone, rotations with fair
leave skipping, overrides, coverage — directly and with hypothesis."""

from __future__ import annotations

import csv
import io
import itertools
import os
import time as time_module
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.config import load_config
from domain.vocab import Role
from handlers.calendar import DayType, HolidayCalendar
from handlers.roster_import import validate
from handlers.roster_limits import DutyLimits, Strain, strains
from handlers.roster_parse import DayExpr, take_day, take_mentions, take_range, take_shift
from handlers.roster_resolve import apply_overrides, candidates, resolve, staff
from handlers.roster_rules import (
    Advance,
    Leave,
    Override,
    Plan,
    Rotation,
    ShiftTemplate,
    coverage,
    on_duty_at,
    shifts_for_day,
    template_problems,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parents[1]
OFFICER, LEADER = Role.DUTY_OFFICER, Role.DUTY_LEADER
DAY = ShiftTemplate("白班", DayType.WORKDAY, time(8, 30), time(17, 30))
NIGHT = ShiftTemplate("夜班", DayType.WORKDAY, time(17, 30), time(8, 30))
REST = ShiftTemplate("全天", DayType.RESTDAY, time(8, 30), time(8, 30))
HOLIDAY = ShiftTemplate("全天", DayType.HOLIDAY, time(8, 30), time(8, 30), officers=2)
TEMPLATES = (DAY, NIGHT, REST, HOLIDAY)
START = date(2026, 1, 1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI)


@pytest.fixture(params=["UTC", "America/New_York", "Asia/Shanghai"])
def server_tz(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The process runs in another timezone than the deployment's: nothing may depend on it."""
    monkeypatch.setenv("TZ", request.param)
    time_module.tzset()
    yield request.param
    monkeypatch.undo()
    time_module.tzset()


# -- day types ---------------------------------------------------------------------------------------


def test_day_types_follow_the_published_holidays_and_tiaoxiu() -> None:
    calendar = HolidayCalendar()
    assert calendar.day_type(date(2026, 11, 23)) is DayType.WORKDAY  # a Monday
    assert calendar.day_type(date(2026, 11, 28)) is DayType.RESTDAY  # a plain Saturday
    national = calendar.info(date(2026, 10, 1))
    assert national.day_type is DayType.HOLIDAY and national.holiday == "国庆节"
    assert calendar.day_type(date(2026, 10, 3)) is DayType.HOLIDAY  # a Saturday inside the holiday
    adjusted = calendar.info(date(2026, 1, 4))  # Sunday, a 调休 working day for New Year
    assert adjusted.day_type is DayType.WORKDAY and adjusted.adjusted_workday and adjusted.label() == "工作日（调休）"
    assert calendar.day_type(date(2026, 9, 20)) is DayType.WORKDAY  # Sunday before 国庆, worked


def test_a_year_not_yet_published_is_unknown_not_a_plain_weekday() -> None:
    calendar = HolidayCalendar()
    info = calendar.info(date(2027, 1, 1))
    assert not info.known and info.label() == info.day_type.value  # the answer notes the year once
    assert calendar.unknown_days([date(2026, 12, 31), date(2027, 1, 1)]) == [date(2027, 1, 1)]


def test_config_overrides_and_published_years() -> None:
    calendar = HolidayCalendar({date(2027, 1, 1): DayType.HOLIDAY, date(2026, 11, 23): DayType.HOLIDAY}, [2027])
    assert calendar.info(date(2027, 1, 1)).day_type is DayType.HOLIDAY and calendar.info(date(2027, 1, 1)).known
    assert calendar.info(date(2027, 1, 4)).known and calendar.day_type(date(2027, 1, 4)) is DayType.WORKDAY
    assert calendar.day_type(date(2026, 11, 23)) is DayType.HOLIDAY  # a local special day


# -- shifts and times ----------------------------------------------------------------------------------


def test_shift_times_are_shanghai_times_whatever_the_server_timezone(server_tz: str) -> None:
    assert os.environ["TZ"] == server_tz
    calendar = HolidayCalendar()
    day, night = shifts_for_day(date(2026, 11, 23), TEMPLATES, calendar, SHANGHAI)
    assert (day.name, day.start, day.end) == ("白班", datetime(2026, 11, 23, 0, 30, tzinfo=UTC),
                                            datetime(2026, 11, 23, 9, 30, tzinfo=UTC))
    assert night.end == datetime(2026, 11, 24, 0, 30, tzinfo=UTC)  # 次日08:30 Shanghai
    [holiday] = shifts_for_day(date(2026, 10, 1), TEMPLATES, calendar, SHANGHAI)
    assert holiday.end - holiday.start == timedelta(hours=24) and holiday.officers == 2
    resolved = resolve(Plan(TEMPLATES, (Rotation(OFFICER, ("a", "b"), Advance.DAY, START),)),
                       date(2026, 11, 23), date(2026, 11, 23), calendar, SHANGHAI)
    expected = "ab"[(date(2026, 11, 23) - START).days % 2]  # 每天: one person for the whole day
    assert on_duty_at(resolved.segments, at(date(2026, 11, 23), 20))[OFFICER] == [expected]


def test_template_overlaps_are_found() -> None:
    assert template_problems(TEMPLATES) == []
    long_day = ShiftTemplate("长白班", DayType.WORKDAY, time(8, 0), time(18, 0))
    assert template_problems((long_day, NIGHT))
    assert template_problems((ShiftTemplate("夜", DayType.WORKDAY, time(17, 0), time(9, 0)), DAY))


# -- rotations -------------------------------------------------------------------------------------------


def test_rotation_advances_per_day_week_and_shift() -> None:
    calendar = HolidayCalendar()
    people = ("a", "b", "c")
    plan = Plan(TEMPLATES, (
        Rotation(OFFICER, people, Advance.DAY, START, frozenset({"白班"})),
        Rotation(OFFICER, people, Advance.SHIFT, START, frozenset({"夜班", "全天"})),
        Rotation(LEADER, ("x", "y"), Advance.WEEK, date(2026, 11, 16)),
    ))
    first = date(2026, 11, 23)
    result = resolve(plan, first, first + timedelta(days=6), calendar, SHANGHAI)
    days = [on_duty_at(result.segments, at(first + timedelta(days=i), 10))[OFFICER] for i in range(5)]
    offset = (first - START).days
    assert days == [[people[(offset + i) % 3]] for i in range(5)]
    nights = [on_duty_at(result.segments, at(first + timedelta(days=i), 20))[OFFICER][0] for i in range(7)]
    assert all(nights[i] != nights[i + 1] for i in range(6))  # each shift moves the rotation on
    leaders = {on_duty_at(result.segments, at(first + timedelta(days=i), 10))[LEADER][0] for i in range(7)}
    assert leaders == {"y"}  # the second week of a weekly rotation started 11-16


def test_shift_rotation_counts_from_its_start_so_windows_agree() -> None:
    """Resolving a late window alone gives what resolving everything from the start gives."""
    calendar = HolidayCalendar()
    plan = Plan(TEMPLATES, (Rotation(OFFICER, ("a", "b", "c"), Advance.SHIFT, START),))
    whole = resolve(plan, START, date(2026, 12, 31), calendar, SHANGHAI)
    part = resolve(plan, date(2026, 11, 1), date(2026, 12, 31), calendar, SHANGHAI)
    assert [s for s in whole.segments if s.day >= date(2026, 11, 1)] == part.segments


def test_leave_is_covered_by_substitutes_that_rotate() -> None:
    calendar = HolidayCalendar()
    people = ("a", "b", "c", "d")
    leave = Leave("a", at(START, 0), at(START + timedelta(days=60), 0))
    plan = Plan((DAY, ShiftTemplate("白班", DayType.RESTDAY, time(8, 30), time(17, 30)),
                 ShiftTemplate("白班", DayType.HOLIDAY, time(8, 30), time(17, 30))),
                (Rotation(OFFICER, people, Advance.DAY, START),), leaves=(leave,))
    result = resolve(plan, START, START + timedelta(days=59), calendar, SHANGHAI)
    assert all(s.person != "a" for s in result.segments)
    assert not [g for g in result.unfilled if g.role is OFFICER]
    covering = [s.person for s in result.segments if (s.day - START).days % 4 == 0]  # a's turns
    assert set(covering[:3]) == {"b", "c", "d"}  # spread over everybody, not always the next name
    others = [s for s in result.segments if (s.day - START).days % 4 != 0]
    assert all(s.person == people[(s.day - START).days % 4] for s in others)  # the rest of the roster keeps


def test_candidates_start_with_the_turn_and_list_everybody() -> None:
    assert candidates(("a", "b", "c"), 0, 1, 0) == ["a", "b", "c"]
    assert candidates(("a", "b", "c"), 3, 1, 0) == ["a", "c", "b"]  # next cycle: substitutes rotate
    assert candidates(("a", "b"), 0, 2, 1) == ["b", "a"]
    assert candidates((), 5, 1, 0) == []


def test_explicit_assignment_and_overrides() -> None:
    calendar = HolidayCalendar()
    day = date(2026, 11, 23)
    from handlers.roster_rules import Assignment

    plan = Plan(TEMPLATES, (Rotation(OFFICER, ("a", "b"), Advance.DAY, START),),
                assignments=(Assignment(day, "白班", OFFICER, ("z",)),),
                overrides=(Override("y", "z", at(day, 12), at(day, 14)), Override("q", "y", at(day, 13), at(day, 14))))
    result = resolve(plan, day, day, calendar, SHANGHAI)
    assert on_duty_at(result.segments, at(day, 9))[OFFICER] == ["z"]
    assert on_duty_at(result.segments, at(day, 12, 30))[OFFICER] == ["y"]
    assert on_duty_at(result.segments, at(day, 13, 30))[OFFICER] == ["q"]  # overrides apply in order
    assert on_duty_at(result.segments, at(day, 15))[OFFICER] == ["z"]
    assert apply_overrides([], plan.overrides) == []


# -- hypothesis ---------------------------------------------------------------------------------------------

people_lists = st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=6, unique=True).map(tuple)
advances = st.sampled_from(list(Advance))
first_days = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 20))


@st.composite
def tilings(draw: st.DrawFn) -> tuple[ShiftTemplate, ...]:
    """Shifts tiling every day type's 24 hours from one common start: 1 to 3 shifts cut at random points.

    (Day types starting at different times would leave a real gap, or an overlap, where they meet.)
    """
    result = []
    start = draw(st.integers(0, 23 * 60 + 30).map(lambda m: m - m % 30))
    for day_type in DayType:
        # Every shift starts on the shift's own date (a start after midnight would belong to the next date).
        latest = (24 * 60 - start) // 30 - 1
        cuts = sorted(draw(st.sets(st.integers(1, latest).map(lambda h: h * 30), max_size=2))) if latest else []
        bounds = [start, *(start + c for c in cuts), start + 24 * 60]
        for index, (a, b) in enumerate(itertools.pairwise(bounds)):
            result.append(ShiftTemplate(f"班{index}", day_type, time(a // 60 % 24, a % 60), time(b // 60 % 24, b % 60),
                                        officers=draw(st.integers(1, 2)), leaders=draw(st.integers(0, 1))))
        if not any(t.leaders for t in result if t.day_type is day_type):
            result[-1] = ShiftTemplate(result[-1].name, day_type, result[-1].start, result[-1].end,
                                       result[-1].officers, 1)
    return tuple(result)


@settings(max_examples=60, deadline=None)
@given(templates=tilings(), officers=people_lists, leaders=people_lists, advance=advances, first=first_days,
       days=st.integers(1, 10))
def test_a_rotation_covering_every_shift_type_leaves_no_gap(
    templates: tuple[ShiftTemplate, ...], officers: tuple[str, ...], leaders: tuple[str, ...],
    advance: Advance, first: date, days: int,
) -> None:
    officers = officers + tuple(f"{p}2" for p in officers) if len(officers) < 2 else officers
    since = date(2025, 1, 1)
    plan = Plan(templates, (Rotation(OFFICER, officers, advance, since), Rotation(LEADER, leaders, advance, since)))
    calendar = HolidayCalendar()
    last = first + timedelta(days=days)
    resolution = resolve(plan, first - timedelta(days=1), last, calendar, SHANGHAI)
    start, end = at(first, 0), at(last, 0)
    leader_gaps = [g for g in coverage(resolution, start, end, lambda p: True).gaps if g.role is LEADER]
    officer_gaps = [g for g in coverage(resolution, start, end, lambda p: True).gaps if g.role is OFFICER]
    assert officer_gaps == []
    # A shift with no leader slot is a real gap for that role; with a slot in every shift there is none.
    if all(t.leaders for t in templates):
        assert leader_gaps == []


@settings(max_examples=80, deadline=None)
@given(people=st.lists(st.sampled_from("abcdef"), min_size=1, max_size=6, unique=True).map(tuple),
       period=st.integers(0, 500), slots=st.integers(1, 3), away=st.sets(st.sampled_from("abcdef")))
def test_leave_never_leaves_a_slot_empty_when_someone_is_available(
    people: tuple[str, ...], period: int, slots: int, away: set[str],
) -> None:
    rotation = Rotation(OFFICER, people, Advance.DAY, START)
    chosen = staff(slots, (), rotation, period, lambda p: p not in away)
    available = [p for p in people if p not in away]
    filled = [p for p in chosen if p is not None]
    assert len(filled) == min(slots, len(available))  # nobody available is left out of an empty slot
    assert all(p not in away for p in filled) and len(set(filled)) == len(filled)


@settings(max_examples=40, deadline=None)
@given(people=st.lists(st.sampled_from("abcdef"), min_size=2, max_size=6, unique=True).map(tuple),
       first=first_days, days=st.integers(1, 20), leave_days=st.lists(st.integers(0, 20), max_size=6),
       who=st.sampled_from("abcdef"))
def test_resolved_roster_never_puts_someone_on_leave_on_duty(
    people: tuple[str, ...], first: date, days: int, leave_days: list[int], who: str,
) -> None:
    leaves = tuple(Leave(who, at(first + timedelta(days=d), 0), at(first + timedelta(days=d + 1), 0))
                   for d in leave_days)
    plan = Plan(TEMPLATES, (Rotation(OFFICER, people, Advance.SHIFT, START),), leaves=leaves)
    result = resolve(plan, first, first + timedelta(days=days), HolidayCalendar(), SHANGHAI)
    for seg in result.segments:
        assert not any(v.person == seg.person and v.overlaps(seg.start, seg.end) for v in leaves)
    for gap in [g for g in result.unfilled if g.role is OFFICER]:  # only when all are away or busy
        free = [p for p in people if not any(v.person == p and v.overlaps(gap.start, gap.end) for v in leaves)]
        in_shift = {s.person for s in result.segments if s.shift_start == gap.start and s.role is gap.role}
        assert set(free) <= in_shift


# -- parsing ------------------------------------------------------------------------------------------------


def test_day_expressions() -> None:
    today = date(2026, 11, 23)
    for text, expected in [("明天", date(2026, 11, 24)), ("11-25", date(2026, 11, 25)),
                           ("11月25日", date(2026, 11, 25)), ("2026-12-01", date(2026, 12, 1)),
                           ("1-2", date(2027, 1, 2)), ("11/25号", date(2026, 11, 25))]:
        parsed = take_day(text)
        assert parsed is not None and parsed[0].resolve(today) == expected, text
    assert DayExpr(month=2, day=30).resolve(today) is None
    assert take_day("上报 11-25") is None


def test_shift_range_and_mention_expressions() -> None:
    parsed = take_shift("11-25夜班换11-27白班")
    assert parsed is not None and parsed[0].shift == "夜班" and parsed[1] == "换11-27白班"
    assert take_mentions("@孙丽 11-25夜班") == (["孙丽"], "11-25夜班")
    assert take_mentions("@孙丽11-25") == (["孙丽"], "11-25")
    ranged = take_range("11-25 08:30 至 11-26 17:30 培训")
    assert ranged is not None and ranged[0].first_time == time(8, 30) and ranged[0].last_time == time(17, 30)
    assert ranged[1] == "培训"
    assert take_range("11-25到11-27")[0].last == DayExpr(month=11, day=27)  # type: ignore[index]


# -- limits of continuous duty and rest -------------------------------------------------------------------


def test_a_break_shorter_than_the_minimum_rest_is_no_rest() -> None:
    limits = DutyLimits(timedelta(hours=24), timedelta(hours=8))
    day, nxt = date(2026, 11, 23), date(2026, 11, 24)
    white, night = (at(day, 8, 30), at(day, 17, 30)), (at(day, 17, 30), at(nxt, 8, 30))
    assert limits.allows([white], *night)  # 24 hours exactly
    assert not limits.allows([white, night], at(nxt, 8, 30), at(nxt, 17, 30))  # 33 hours
    assert not limits.allows([white], at(nxt, 0, 30), at(nxt, 9, 30))  # a 7-hour break: one 25-hour stretch
    assert limits.allows([white], at(nxt, 1, 30), at(nxt, 9, 30))  # 8 hours off: a new stretch
    assert strains([("a", *white), ("a", *night), ("a", at(nxt, 8, 30), at(nxt, 17, 30))], limits) == [
        Strain("a", white[0], at(nxt, 17, 30))]


def _example_plans() -> dict[str, Plan]:
    config = load_config(ROOT / "config.example.toml")
    rows = list(csv.DictReader(io.StringIO((ROOT / "bot/examples/roster.example.csv").read_text("utf-8-sig"))))
    batch, errors = validate(rows, config, {})
    assert not errors
    return {chat: Plan(tuple(t.template for t in batch.templates if t.chat == chat),
                       tuple(r.rotation for r in batch.rotations if r.chat == chat)) for chat in batch.chats()}


def test_the_example_roster_passes_the_rules() -> None:
    """No gap, and no 值班员 more than 24 hours on duty without 8 hours off, over two years (holidays too)."""
    limits = DutyLimits()
    for chat, plan in _example_plans().items():
        result = resolve(plan, date(2026, 1, 1), date(2027, 12, 31), HolidayCalendar(), SHANGHAI, limits)
        found = coverage(result, at(date(2026, 1, 2), 0), at(date(2027, 12, 31), 0), lambda p: True, limits)
        assert found.gaps == [] and found.strains == [], chat


def test_substitutes_stay_within_the_limits_or_the_slot_is_a_gap() -> None:
    plan = _example_plans()["wecom_duty"]
    leave = Leave("zhao_min", at(date(2026, 11, 25), 0), at(date(2026, 11, 26), 0))
    two = resolve(replace(plan, leaves=(leave,)), date(2026, 11, 23), date(2026, 11, 28), HolidayCalendar(),
                  SHANGHAI, DutyLimits())
    assert all(s.person != "zhao_min" or not leave.overlaps(s.start, s.end) for s in two.segments)
    # 孙丽, the only other officer, works 24 hours on and 24 off: she may take none of 赵敏's shifts.
    assert {(g.day, g.shift) for g in two.unfilled if g.role is OFFICER} == {
        (date(2026, 11, 24), "夜班"), (date(2026, 11, 25), "白班")}
    window = (at(date(2026, 11, 23), 0), at(date(2026, 11, 28), 0))
    assert coverage(two, *window, lambda p: True, DutyLimits()).strains == []
    without = resolve(replace(plan, leaves=(leave,)), date(2026, 11, 23), date(2026, 11, 28), HolidayCalendar(),
                      SHANGHAI)
    assert not [g for g in without.unfilled if g.role is OFFICER]  # without limits: 孙丽 would do 48 hours
