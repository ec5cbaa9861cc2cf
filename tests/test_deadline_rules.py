"""Pure tests of the reminder points, quiet hours and escalation."""

from __future__ import annotations

import os
import time as systime
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.config import EscalationPolicy, PolicySection, QuietHours
from domain.vocab import Grade
from handlers.deadline_rules import (
    ClockName,
    ItemClocks,
    audience,
    defer_for_quiet,
    due_points,
    item_points,
    next_point_at,
    repeat_offset,
    running_clocks,
)
from handlers.policy import deadlines

TZ = ZoneInfo("Asia/Shanghai")
POLICY = PolicySection()
REPORTED = datetime(2026, 11, 23, 10, 0, tzinfo=TZ).astimezone(UTC)


def clocks(grade: Grade | None, reported: datetime = REPORTED, *, acknowledged: bool = False,
           responded: bool = False, status: str = "已定级") -> ItemClocks:
    due = deadlines(reported, grade, POLICY)
    return ItemClocks(status=status if grade else "待定级", grade=grade, reported_at=reported,
                      grade_due=due.grade_due, pass_on_due=due.pass_on_due, response_due=due.response_due,
                      acknowledged=acknowledged, responded=responded)


@pytest.fixture
def server_in_utc() -> Iterator[None]:
    """The server's own zone must not matter: run with the process in UTC."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    systime.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    systime.tzset()


def test_major_pass_on_points() -> None:
    points = [p for p in item_points(clocks(Grade.MAJOR), POLICY, TZ) if p.clock is ClockName.PASS_ON]
    offsets = [(p.stage, p.occurrence, (p.send_at - REPORTED) / timedelta(minutes=1)) for p in points]
    assert offsets[:3] == [("50pct", 0, 15), ("80pct", 0, 24), ("overdue", 0, 30)]
    # 重大 is chased until handled (001 第九条): the interval doubles from 30 minutes up to 2 hours.
    assert [o[2] for o in offsets[3:8]] == [60, 120, 240, 360, 480]


def test_stopped_clocks_ask_nothing() -> None:
    assert [c.name for c in running_clocks(clocks(None))] == [ClockName.GRADE]
    graded = running_clocks(clocks(Grade.GENERAL))
    assert [c.name for c in graded] == [ClockName.PASS_ON, ClockName.RESPONSE]
    assert [c.name for c in running_clocks(clocks(Grade.GENERAL, acknowledged=True))] == [ClockName.RESPONSE]
    assert running_clocks(clocks(Grade.GENERAL, acknowledged=True, responded=True)) == []
    assert running_clocks(clocks(Grade.MAJOR, status="已办结")) == []


def test_quiet_hours_hold_general_items_until_morning() -> None:
    quiet = QuietHours(start="22:00", end="07:30")
    late_evening = datetime(2026, 11, 23, 23, 10, tzinfo=TZ)
    assert defer_for_quiet(late_evening, quiet, TZ) == datetime(2026, 11, 24, 7, 30, tzinfo=TZ)
    small_hours = datetime(2026, 11, 24, 3, 0, tzinfo=TZ)
    assert defer_for_quiet(small_hours, quiet, TZ) == datetime(2026, 11, 24, 7, 30, tzinfo=TZ)
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=TZ)
    assert defer_for_quiet(noon, quiet, TZ) == noon
    lunch = QuietHours(start="12:00", end="14:00")
    assert defer_for_quiet(noon, lunch, TZ) == datetime(2026, 11, 24, 14, 0, tzinfo=TZ)
    assert defer_for_quiet(datetime(2026, 11, 24, 7, 30, tzinfo=TZ), quiet, TZ).hour == 7


def test_major_reminders_go_out_at_night() -> None:
    night = datetime(2026, 11, 23, 23, 0, tzinfo=TZ).astimezone(UTC)
    for point in item_points(clocks(Grade.MAJOR, night), POLICY, TZ):
        assert point.send_at == point.intended


def test_due_and_next() -> None:
    item = clocks(Grade.MAJOR)
    now = REPORTED + timedelta(minutes=20)
    due = due_points(item, POLICY, TZ, now)
    assert [(p.clock, p.stage) for p in due] == [(ClockName.PASS_ON, "50pct")]
    assert next_point_at(item, POLICY, TZ, now) == REPORTED + timedelta(minutes=24)


def test_escalation_chain() -> None:
    escalation = EscalationPolicy(principal_after=1, coordinators_after=2)
    points = [p for p in item_points(clocks(Grade.MAJOR), POLICY, TZ) if p.clock is ClockName.RESPONSE]
    by_occurrence = {p.occurrence: audience(p, escalation) for p in points if p.overdue}
    assert by_occurrence[0].unit_roles == ("联络员", "分管领导") and not by_occurrence[0].coordinators_chat
    assert "主要负责人" in by_occurrence[1].unit_roles and not by_occurrence[1].coordinators_chat
    assert by_occurrence[2].coordinators_chat
    before = next(p for p in points if not p.overdue)
    assert audience(before, escalation).unit_roles == ("联络员", "分管领导")


def test_keys_are_unique_and_change_with_the_deadline() -> None:
    keys = [p.key(7) for p in item_points(clocks(Grade.SIGNIFICANT), POLICY, TZ)]
    assert len(keys) == len(set(keys))
    regraded = [p.key(7) for p in item_points(clocks(Grade.MAJOR), POLICY, TZ)]
    assert not set(keys) & set(regraded)


YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    minute=st.integers(min_value=0, max_value=365 * 24 * 60 - 1),
    grade=st.sampled_from([None, *Grade]),
)
def test_every_reminder_at_its_intended_local_time(server_in_utc: None, minute: int, grade: Grade | None) -> None:
    reported = YEAR_START + timedelta(minutes=minute)
    item = clocks(grade, reported)
    rules = POLICY.for_grade(grade or Grade.MAJOR)
    for point in item_points(item, POLICY, TZ):
        fraction_points = point.stage.endswith("pct")
        if fraction_points:
            fraction = int(point.stage[:-3]) / 100
            expected = reported + (point.due - reported) * fraction
            assert abs((point.intended - expected).total_seconds()) < 1
        elif point.overdue:
            assert point.intended == point.due + repeat_offset(rules, point.occurrence)
        local = point.send_at.astimezone(TZ)
        if not rules.quiet:
            assert point.send_at == point.intended
        else:
            assert point.send_at >= point.intended
            hm = local.hour * 60 + local.minute
            assert not (hm >= 22 * 60 or hm < 7 * 60 + 30), local  # never inside 22:00–07:30
            if point.send_at != point.intended:
                assert (local.hour, local.minute) == (7, 30)
        # Shanghai has no DST: local = UTC + 8 h exactly, whatever the server's zone.
        assert local.utcoffset() == timedelta(hours=8)
