"""The engine: one loop that runs every periodic job of the bot as a module.

The modules: the deadline sweep, outbox delivery and the probe of held messages, housekeeping, and
the roster's jobs (horizon, 交接班, tomorrow's reminder, the gap report, 点名); the reports of
issue #16 join them the same way. A module that changes the database is an `EngineModule`
(handlers/engine.py): the engine gives it one transaction per cycle. The outbox's delivery owns
its transactions (a claim, then lanes that outlive the cycle), so it is registered as a plain
coroutine; its internals are bot/outbox*.py's.

One beat of the loop (`Engine.beat`, every [delivery] tick_seconds: bot/scheduler.py drives it
from one APScheduler job) starts every module that is due and not running, each in its own task,
and waits for them: a slow module (a week's gap check) never holds up the deadline sweep or the
outbox, since the next beat starts those again while it runs. A module is due on every beat
(interval None), or once its interval has passed since its last run, or at the instant it asked
for (`CycleResult.next_at`). When that instant comes before the next beat, a timer wakes the module
then — the deadline sweep's reminder at its minute, the 08:30 daily log at 08:30:00, not a beat
later. The timers are only an optimisation: the beats find everything anyway, and the database
stays the only state (what a module has done is in its rows and in engine_runs, never here).

A module that fails is logged once per kind and interval (FailureLog: `job:<name>`), not a
traceback per beat, and tried again at its next run; it never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.documents.markdown import chat_replies
from bot.logs import FailureLog
from bot.metrics import Metrics
from bot.roster_jobs import roster_modules
from bot.runtime import Runtime
from handlers.engine import CycleResult, EngineModule, run_cycles
from handlers.ops.base import Work
from handlers.records.daily_jobs import daily_modules
from handlers.records.period_jobs import period_modules
from store import engine_runs, inbound, pending, ratelimit, replyurls
from store.db import Database

log = logging.getLogger(__name__)

# Shortest wait before a timed run (seconds of wall time): a module whose wish has come while it
# ran (a row another replica holds locked) runs again at once, but never in a busy loop.
REARM_FLOOR = 0.02

Go = Callable[[], Awaitable[CycleResult]]


class Slot:
    """One module in the engine: its runs one at a time, its next run, and its wake-up timer.

    `rerun`: a run asked for while one is going makes that one go round once more (the deadline
    sweep: a point may have come due meanwhile) instead of being dropped."""

    def __init__(self, engine: Engine, name: str, go: Go, *, interval: timedelta | None, rerun: bool) -> None:
        self.engine = engine
        self.name = name
        self.go = go
        self.interval = interval
        self.rerun = rerun
        self.next_at: datetime | None = None  # when a beat runs it next (None: the next beat)
        self._lock = asyncio.Lock()  # held while running: the beat and the timer never overlap
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: datetime | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._again = False

    @property
    def running(self) -> bool:
        return self._lock.locked()

    def due(self, now: datetime) -> bool:
        if self.running and not self.rerun:
            return False
        return self.next_at is None or now >= self.next_at

    async def run(self) -> None:
        """Run now (a beat or the timer). While a run goes on, another call only asks it to go
        round once more (`rerun`) or does nothing, so runs never queue up behind each other."""
        if self._lock.locked():
            self._again = self._again or self.rerun
            return
        async with self._lock:
            started = self.engine.clock.now()
            result: CycleResult | None = None
            self._again = True
            while self._again:
                self._again = False
                result = await self._round()
                if result is None:
                    break
                if result.queued:
                    self.engine.kick()  # what a module queued goes out now, not a beat later
            self._settle(started, result)

    async def _round(self) -> CycleResult | None:
        begun = time.perf_counter()
        try:
            result = await self.go()
        except Exception as exc:
            self.engine.failed(self.name, exc, time.perf_counter() - begun)
            return None
        self.engine.succeeded(self.name, result, time.perf_counter() - begun)
        return result

    def _settle(self, started: datetime, result: CycleResult | None) -> None:
        """When to run next: on every beat, or after the interval; sooner when the module asks."""
        wish = result.next_at if result is not None else None
        if self.interval is None:
            self.next_at = None
            self._arm(wish)
            return
        periodic = started + self.interval
        self.next_at = periodic if wish is None else min(periodic, wish)
        self._arm(self.next_at)

    def wake(self, due: datetime | None) -> None:
        """Run at `due` when that comes before the next beat (a timer); else the beats see to it."""
        self._arm(due)

    def _arm(self, due: datetime | None) -> None:
        if due is None or self._stopped:
            return
        clock = self.engine.clock
        delay = max(REARM_FLOOR, clock.wall_seconds(due - clock.now()))
        if delay >= self.engine.tick:
            return  # the next beat comes first
        if self._timer is not None and self._armed_for is not None and self._armed_for <= due:
            return
        self.cancel()
        self._armed_for = due
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = self._armed_for = None
        task = asyncio.get_running_loop().create_task(self.run())
        self._tasks.add(task)  # the loop holds tasks only weakly
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.engine.failures.failure(f"timed:{self.name}", f"定时任务 {self.name} 出错，下一轮重试",
                                         exc=task.exception())

    def tasks(self) -> set[asyncio.Future[Any]]:
        return set(self._tasks)

    def stop(self) -> None:
        """No more timed runs (at shutdown)."""
        self._stopped = True
        self.cancel()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._armed_for = None


class Engine:
    """The modules and the beat that runs them."""

    def __init__(self, *, clock: Clock, tick: float, metrics: Metrics | None = None,
                 kick: Callable[[], None] = lambda: None) -> None:
        self.clock = clock
        self.tick = tick
        self.metrics = metrics or Metrics()
        self.kick = kick  # have the outbox deliver what a module queued
        self.slots: dict[str, Slot] = {}
        # While the database is away every beat fails: one line per module and interval.
        self.failures = FailureLog(log)
        self._paused = False

    def add(self, name: str, go: Go, *, interval: timedelta | None = None, rerun: bool = False) -> Slot:
        if name in self.slots:
            raise ValueError(f"engine module {name!r} is registered twice")
        slot = self.slots[name] = Slot(self, name, go, interval=interval, rerun=rerun)
        return slot

    def add_module(self, module: EngineModule, db: Database, work_for: Callable[[AsyncSession], Work]) -> Slot:
        """A module that changes the database: cycles in one transaction each, until it has no more."""
        return self.add(module.name, lambda: run_cycles(db, module, work_for), interval=module.interval)

    async def beat(self) -> None:
        """Start every due module that is not running, and wait for those this beat started."""
        if self._paused:
            return
        now = self.clock.now()
        due = []
        for slot in self.slots.values():
            if slot.due(now):
                due.append(slot.run())
            elif not slot.running:
                slot.wake(slot.next_at)  # a wish that falls before the next beat: a timer for it
        if due:
            await asyncio.gather(*due)

    def failed(self, name: str, exc: Exception, seconds: float) -> None:
        self.metrics.engine_runs.labels(module=name, outcome="error").inc()
        self.metrics.engine_seconds.labels(module=name).observe(seconds)
        self.failures.failure(f"job:{name}", f"定时任务 {name} 出错，下一轮重试", exc=exc)

    def succeeded(self, name: str, result: CycleResult, seconds: float) -> None:
        self.metrics.engine_runs.labels(module=name, outcome="ok").inc()
        self.metrics.engine_seconds.labels(module=name).observe(seconds)
        if result.late:
            self.metrics.engine_late.labels(module=name).inc(result.late)
        self.failures.recovered(f"job:{name}")

    def pause(self) -> None:
        """No new runs from now on (the first thing at SIGTERM); running ones go on."""
        self._paused = True
        for slot in self.slots.values():
            slot.stop()

    def tasks(self) -> set[asyncio.Future[Any]]:
        """The timed runs going on (the beats' own runs are the beats' tasks)."""
        return set().union(*(slot.tasks() for slot in self.slots.values()))


# -- the bot's modules -----------------------------------------------------------------------------------------

# Expired questions are kept a day so a late answer still gets "this question has expired".
PENDING_GRACE = timedelta(days=1)
# Platform message ids are kept longer than WeCom's 2-hour nonce window and DingTalk's retries.
SEEN_KEEP = timedelta(hours=3)
# Send records only matter inside the rate window; an hour is plenty.
RATE_EVENTS_KEEP = timedelta(hours=1)
# Done occurrences are kept well beyond how far a schedule looks back (handlers/engine.py LOOKBACK),
# so that none is forgotten while it could still be found missed and run again.
ENGINE_RUNS_KEEP = timedelta(days=90)


class Housekeeping:
    """Forget what has served its time: expired questions, old message ids and send records,
    unused reply URLs, old occurrences."""

    name = "purge-pending"
    interval: timedelta | None = timedelta(minutes=10)

    async def cycle(self, work: Work) -> CycleResult:
        session, now = work.session, work.now
        removed = await pending.purge_expired(session, now - PENDING_GRACE)
        seen = await inbound.purge(session, now - SEEN_KEEP)
        await ratelimit.purge(session, now - RATE_EVENTS_KEEP)
        # Reply URLs that expired unused (a settled row loses its URL as it is settled).
        await replyurls.erase_reply_urls(session, now)
        await engine_runs.purge(session, now - ENGINE_RUNS_KEEP)
        if removed or seen:
            log.info("purged %d expired pending questions and %d old message ids", removed, seen)
        return CycleResult()


def work_for(runtime: Runtime) -> Callable[[AsyncSession], Work]:
    """A cycle's unit of work: its session, the org, and the time when the cycle begins."""
    def make(session: AsyncSession) -> Work:
        return Work(session=session, config=runtime.config, directory=runtime.directory, duty=runtime.duty,
                    now=runtime.clock.now())
    return make


def build_engine(runtime: Runtime) -> Engine:
    delivery = runtime.config.delivery
    engine = Engine(clock=runtime.clock, tick=delivery.tick_seconds, metrics=runtime.metrics,
                    kick=lambda: runtime.outbox.kick(until_idle=True))

    async def sweep() -> CycleResult:
        # Through runtime.deadlines (looked up at each run): the sweep the rest of the bot knows.
        queued = await runtime.deadlines.run_once()
        return CycleResult(queued=queued, next_at=await runtime.deadlines.next_due())

    async def deliver() -> CycleResult:
        # run_due returns once it has handed the due rows to their robots' lanes: a robot that
        # hangs never holds this module, and so never delays the other robots.
        await runtime.outbox.run_due()
        return CycleResult()

    async def probe_held() -> CycleResult:
        # Held messages (a robot refused them for a configuration reason): probed at start — a
        # restart after fixing the webhook sends them at once — and then every held_probe_seconds.
        await runtime.outbox.probe_held()
        return CycleResult()

    engine.add("deadlines", sweep, rerun=True)
    engine.add("outbox", deliver)
    engine.add("probe-held", probe_held, interval=timedelta(seconds=delivery.held_probe_seconds))
    make = work_for(runtime)
    for module in [Housekeeping(), *roster_modules(runtime.config), *daily_modules(runtime.config, chat_replies),
                   *period_modules(runtime.config, chat_replies)]:
        engine.add_module(module, runtime.db, make)
    return engine
