"""APScheduler wiring: one job, the engine's beat (bot/engine.py), every [delivery] tick_seconds.

The engine decides what runs when; APScheduler only keeps the beat — its interval trigger, a first
beat at start (missed schedules and held messages are dealt with at once), pause and shutdown. It
holds nothing that a restart could lose: every module reloads its state from the database.

Beats may overlap: a beat waits for the modules it started, and a module still running when the
next beat comes is skipped by that beat (or asked to go round again), so the next beat never waits
for a slow module. `max_instances` is therefore one more than the modules: the most beats that can
be waiting at once, so APScheduler never skips a beat (with a warning) for being busy.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.engine import REARM_FLOOR, Engine, Slot, build_engine
from bot.logs import FailureLog
from bot.runtime import Runtime

__all__ = ["REARM_FLOOR", "STOP_WAIT", "Jobs", "build_scheduler"]

log = logging.getLogger(__name__)

# How long stopping waits for running jobs (seconds); a sweep takes well under one.
STOP_WAIT = 10.0
BEAT = "engine"


class Jobs:
    """The scheduler and the engine, started and stopped together.

    Stopping waits (bounded) for the modules that are running: a sweep or a delivery cut off at
    shutdown would roll back, which is safe, but would also log errors about a closed database.
    """

    def __init__(self, scheduler: AsyncIOScheduler, engine: Engine) -> None:
        self.scheduler = scheduler
        self.engine = engine
        self._running: set[asyncio.Future[Any]] = set()
        # The engine logs each module's failures; this only catches a beat that fails as a whole.
        self.failures = FailureLog(log)
        for job in scheduler.get_jobs():
            job.modify(func=self._tracked(job.id, job.func))

    @property
    def timer(self) -> Slot:
        """The deadline sweep's slot: swept on every beat, and between beats when a point falls due."""
        return self.engine.slots["deadlines"]

    def _tracked(self, job_id: str, func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(func)
        async def run(*args: Any, **kwargs: Any) -> Any:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                result = await func(*args, **kwargs)
            except Exception as exc:
                self.failures.failure(f"job:{job_id}", f"定时任务 {job_id} 出错，下一轮重试", exc=exc)
                return None
            finally:
                self._running.discard(task)
            self.failures.recovered(f"job:{job_id}")
            return result

        return run

    def start(self) -> None:
        self.scheduler.start()

    def pause(self) -> None:
        """No new runs from now on (the first thing at SIGTERM); running ones go on."""
        self.engine.pause()
        if self.scheduler.running:
            self.scheduler.pause()

    async def stop(self, within: float = STOP_WAIT) -> None:
        """Pause, wait up to `within` seconds for the running modules, then shut down.

        Pause first: APScheduler's shutdown cancels the jobs still running. The wait is the part of
        the process's stop bound ([delivery] shutdown_seconds) that is left."""
        started = self.scheduler.running
        self.pause()
        busy = {job for job in self._running | self.engine.tasks() if not job.done()}
        if busy and within > 0:
            await asyncio.wait(busy, timeout=within)
        if started:
            self.scheduler.shutdown(wait=False)


def build_scheduler(runtime: Runtime) -> Jobs:
    engine = build_engine(runtime)
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(engine.beat, "interval", seconds=engine.tick, id=BEAT, next_run_time=datetime.now(UTC),
                      max_instances=len(engine.slots) + 1, coalesce=True, misfire_grace_time=30)
    return Jobs(scheduler, engine)
