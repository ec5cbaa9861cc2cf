"""The one clock. Everything that needs "now" receives a Clock; tests move a ManualClock.

Times are timezone-aware and in UTC inside the program and the database; the configured
timezone (Asia/Shanghai by default) is applied only when talking to people.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current instant, timezone-aware UTC."""
        ...

    def wall_seconds(self, span: timedelta) -> float:
        """How many seconds of wall time pass while this clock moves by `span` (to arm timers)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wall_seconds(self, span: timedelta) -> float:
        return span.total_seconds()


class ManualClock:
    """A clock that only moves when told to: for tests and deterministic tools."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def wall_seconds(self, span: timedelta) -> float:
        # It moves only when told to; a timer armed on it fires after the nominal span.
        return span.total_seconds()

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock.set needs a timezone-aware time")
        self._now = when.astimezone(UTC)


class ScaledClock:
    """Drill mode: the bot's time runs `speed` times faster than the wall clock, from now on.

    A trainer can show a whole 重大 lifecycle — the 15-minute grade question, the 30-minute
    pass-on, reminders, escalation, the 24-hour response deadline — in minutes.
    """

    def __init__(self, speed: float, base: Clock | None = None) -> None:
        if speed < 1:
            raise ValueError("speed must be at least 1")
        self.speed = speed
        self._base = base or SystemClock()
        self._anchor = self._base.now()

    def now(self) -> datetime:
        return self._anchor + (self._base.now() - self._anchor) * self.speed

    def wall_seconds(self, span: timedelta) -> float:
        return self._base.wall_seconds(span) / self.speed
