"""The engine-module interface: what every periodic job of the bot is to the one engine loop.

A module (the deadline sweep, the roster's daily jobs, the reports of issue #16, …) is asked for a
`cycle` over one unit of work — one session inside ONE transaction, with the org and the time —
and answers with a `CycleResult`: what it queued, whether it has more to do at once (a batch came
back full), and when it wants to run next. The loop (bot/engine.py) owns the transaction, the
timing, failure logging and metrics; a module owns only what it does to the database, so a cycle
that fails leaves nothing half-done and the next one simply tries again.

Schedule-style modules (daily at a local time, weekly, monthly) get `take_due`: the occurrences of
their schedule that have come and are still worth running, claimed in the database
(store/engine_runs.py) by the transaction that does them. The database, not the process, knows what
has been done, so an occurrence missed while the bot was down runs once on start — flagged late,
for a 补发 — and two replicas never both run it.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.ops.base import Work
from store import engine_runs
from store.db import Database

# A run this long after its occurrence's time counts as late (补发): the bot was down, or stopped.
DEFAULT_GRACE = timedelta(minutes=10)
# How far back a schedule looks for occurrences it has missed. It must stay well under how long
# engine_runs keeps its rows (ENGINE_RUNS_KEEP in bot/engine.py), or a forgotten one would rerun.
LOOKBACK = timedelta(days=40)
# How far ahead `next_after` searches (a monthly schedule's next day is within two months).
SEARCH_DAYS = 63


@dataclass(frozen=True)
class CycleResult:
    """What one cycle did and wants."""

    queued: int = 0  # notices put in the outbox (the loop has the outbox deliver at once)
    more: bool = False  # work is left now (a full batch): the loop runs another cycle straight away
    next_at: datetime | None = None  # when the module wants its next cycle (None: at its interval)
    late: int = 0  # occurrences run after their grace (补发)

    def then(self, later: CycleResult) -> CycleResult:
        """This result followed by a later cycle's: the counts add up, the wishes are the later's."""
        return replace(later, queued=self.queued + later.queued, late=self.late + later.late)


class EngineModule(Protocol):
    """A periodic job. `interval` is how often the loop runs it at least (None: on every beat of
    the loop); `cycle` may ask for an earlier run with `CycleResult.next_at`."""

    @property
    def name(self) -> str: ...

    @property
    def interval(self) -> timedelta | None: ...

    async def cycle(self, work: Work) -> CycleResult: ...


async def run_cycles(db: Database, module: EngineModule, work_for: Callable[[AsyncSession], Work]) -> CycleResult:
    """Cycle the module until it has nothing more to do now, one transaction per cycle.

    `work_for` makes the cycle's unit of work, reading the clock afresh for each cycle."""
    total = CycleResult()
    while True:
        async with db.transaction() as session:
            result = await module.cycle(work_for(session))
        total = total.then(result)
        if not result.more:
            return total


# -- schedules -----------------------------------------------------------------------------------------------


class Schedule(Protocol):
    def occurrences(self, start: datetime, end: datetime) -> list[datetime]:
        """The instants in (start, end], ascending, timezone-aware UTC."""
        ...

    def next_after(self, when: datetime) -> datetime | None:
        """The first instant after `when` (None: the schedule never fires)."""
        ...


@dataclass(frozen=True)
class _Calendar:
    """Local times on the days a rule picks, in a timezone."""

    times: tuple[time, ...]
    tz: tzinfo

    def on(self, day: date) -> bool:
        raise NotImplementedError

    def _instants(self, first: date, last: date) -> Iterator[datetime]:
        day = first
        while day <= last:
            if self.on(day):
                for at in sorted(self.times):
                    yield datetime.combine(day, at, tzinfo=self.tz).astimezone(UTC)
            day += timedelta(days=1)

    def occurrences(self, start: datetime, end: datetime) -> list[datetime]:
        first, last = start.astimezone(self.tz).date(), end.astimezone(self.tz).date()
        return [at for at in self._instants(first, last) if start < at <= end]

    def next_after(self, when: datetime) -> datetime | None:
        first = when.astimezone(self.tz).date()
        return next((at for at in self._instants(first, first + timedelta(days=SEARCH_DAYS)) if at > when), None)


@dataclass(frozen=True)
class Daily(_Calendar):
    """Every day at each of `times` (local)."""

    def on(self, day: date) -> bool:
        return True


@dataclass(frozen=True)
class Weekly(_Calendar):
    """Every week on `weekday` (0 = Monday) at each of `times`."""

    weekday: int = 0

    def on(self, day: date) -> bool:
        return day.weekday() == self.weekday


@dataclass(frozen=True)
class Monthly(_Calendar):
    """Every month on day `day` at each of `times`; a month shorter than `day` uses its last day."""

    day: int = 1

    def on(self, day: date) -> bool:
        return day.day == min(self.day, calendar.monthrange(day.year, day.month)[1])


def daily(at: time | Sequence[time], tz: tzinfo) -> Daily:
    return Daily(tuple(at) if isinstance(at, Sequence) else (at,), tz)


# -- occurrences ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Occurrence:
    """One due instant of a schedule (or of something else a module keys, like a shift's start)."""

    at: datetime  # when it was due
    key: str  # unique within the module: what engine_runs keys it by
    late: bool = False  # found after its grace: the module says so (补发)

    def part(self, name: str) -> Occurrence:
        """The same occurrence for one chat (or person): claimed apart, so each is done once."""
        return replace(self, key=f"{self.key}|{name}")


# When an occurrence stops being worth running, from its time (None: at the next occurrence).
Expiry = Callable[[datetime], datetime]


def within(span: timedelta) -> Expiry:
    """Worth running for `span` after its time (a roll call: while its answer time runs)."""
    return lambda at: at + span


def same_day(tz: tzinfo) -> Expiry:
    """Worth running until the local day it belongs to ends (tomorrow's reminder, a daily report)."""
    def end(at: datetime) -> datetime:
        local = at.astimezone(tz)
        return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return end


def occurrence_key(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


async def due_occurrences(
    session: AsyncSession, module: str, schedule: Schedule, now: datetime, *, expires: Expiry | None = None,
    grace: timedelta = DEFAULT_GRACE, lookback: timedelta = LOOKBACK,
) -> list[Occurrence]:
    """The occurrences that have come by `now`, are not expired and no replica has done, oldest first.

    By default an occurrence expires when the next one comes: after a long outage only the latest
    missed one runs (once), not one per day missed."""
    found = schedule.occurrences(now - lookback, now)
    keys = [occurrence_key(at) for at in found]
    done = await engine_runs.done_keys(session, module, keys)
    due = []
    for index, (at, key) in enumerate(zip(found, keys, strict=True)):
        until = expires(at) if expires is not None else (found[index + 1] if index + 1 < len(found) else None)
        if key in done or (until is not None and now >= until):
            continue
        due.append(Occurrence(at=at, key=key, late=now - at > grace))
    return due


async def claim(session: AsyncSession, module: str, occurrence: Occurrence, now: datetime) -> bool:
    """Take the occurrence for this transaction; False when another run has (or is taking) it."""
    return await engine_runs.claim(session, module=module, key=occurrence.key, due_at=occurrence.at, now=now,
                                   late=occurrence.late)


async def take_due(
    session: AsyncSession, module: str, schedule: Schedule, now: datetime, *, expires: Expiry | None = None,
    grace: timedelta = DEFAULT_GRACE, since_first_run: bool = False,
) -> list[Occurrence]:
    """The due occurrences this transaction has claimed: the caller does each, in this transaction.

    `since_first_run`: occurrences before the module's first cycle on this database are not made
    up for — a new installation does not post yesterday's log or last month's notice as 补发; one
    that was running and then down does."""
    taken = []
    due = await due_occurrences(session, module, schedule, now, expires=expires, grace=grace)
    if since_first_run:  # every cycle: the first one, due or not, sets the marker
        started = await engine_runs.first_run(session, module, now)
        due = [occurrence for occurrence in due if occurrence.at >= started]
    for occurrence in due:
        if await claim(session, module, occurrence, now):
            taken.append(occurrence)
    return taken
