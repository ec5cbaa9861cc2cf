"""APScheduler wiring. The scheduler only triggers work; every job reloads its state from the
database, so it holds nothing that a restart could lose."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.logs import FailureLog
from bot.roster_jobs import add_roster_jobs
from bot.runtime import Runtime
from store import inbound, pending, ratelimit, replyurls

log = logging.getLogger(__name__)

# Expired questions are kept a day so a late answer still gets "this question has expired".
PENDING_GRACE = timedelta(days=1)
# Platform message ids are kept longer than WeCom's 2-hour nonce window and DingTalk's retries.
SEEN_KEEP = timedelta(hours=3)
# Send records only matter inside the rate window; an hour is plenty.
RATE_EVENTS_KEEP = timedelta(hours=1)


async def purge_pending(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        removed = await pending.purge_expired(session, runtime.clock.now() - PENDING_GRACE)
        seen = await inbound.purge(session, runtime.clock.now() - SEEN_KEEP)
        await ratelimit.purge(session, runtime.clock.now() - RATE_EVENTS_KEEP)
        # Reply URLs that expired unused (a settled row loses its URL as it is settled).
        await replyurls.erase_reply_urls(session, runtime.clock.now())
    if removed or seen:
        log.info("purged %d expired pending questions and %d old message ids", removed, seen)


# How long stopping waits for running jobs (seconds); a sweep takes well under one.
STOP_WAIT = 10.0
# Shortest wait before a timed sweep (seconds of wall time).
REARM_FLOOR = 0.02


class DeadlineTimer:
    """The deadline sweep, run every tick and, between ticks, at the moment the next point is due.

    Polling alone makes a reminder up to a tick late, and up to a tick more until the outbox's
    own tick posts it. Here each sweep looks up the earliest `next_reminder_at` and, when that
    comes before the next tick, arms a timer for it; what a sweep queues goes to the outbox at
    once. The timer is only an optimisation: the interval tick still finds everything (a new
    item, another replica's change, a clock jump), and the database stays the only state.
    """

    def __init__(self, runtime: Runtime, tick: float) -> None:
        self.runtime = runtime
        self.tick = tick
        self._lock = asyncio.Lock()  # held while sweeping: the tick and the timer never overlap
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: datetime | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._again = False
        self.failures = FailureLog(log)

    async def run(self) -> None:
        """Sweep now (the tick or the timer). While a sweep runs, another call only asks it to go
        round once more, so the tick never queues up behind a timed sweep."""
        if self._lock.locked():
            self._again = True
            return
        async with self._lock:
            self._again = True
            while self._again:
                self._again = False
                if await self.runtime.deadlines.run_once():
                    self.runtime.outbox.kick(until_idle=True)
            self._arm(await self.runtime.deadlines.next_due())

    def _arm(self, due: datetime | None) -> None:
        if due is None or self._stopped:
            return
        # A point that fell due while the sweep ran is swept again at once; the short floor keeps
        # a row that another replica holds locked from turning this into a busy loop.
        delay = max(REARM_FLOOR, self.runtime.clock.wall_seconds(due - self.runtime.clock.now()))
        if delay >= self.tick:
            return  # the next tick comes first
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
            self.failures.failure("timed-sweep", "定时的时限扫描出错，下一轮重试", exc=task.exception())

    def tasks(self) -> set[asyncio.Future[Any]]:
        return set(self._tasks)

    def stop(self) -> None:
        """No more timed sweeps (at shutdown)."""
        self._stopped = True
        self.cancel()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._armed_for = None


class Jobs:
    """The scheduler and the deadline timer, started and stopped together.

    Stopping waits (bounded) for the jobs that are running: a sweep or a delivery cut off at
    shutdown would roll back, which is safe, but would also log errors about a closed database.
    """

    def __init__(self, scheduler: AsyncIOScheduler, timer: DeadlineTimer) -> None:
        self.scheduler = scheduler
        self.timer = timer
        self._running: set[asyncio.Future[Any]] = set()
        # While the database is away every tick fails: one line per job and interval, not
        # APScheduler's traceback twice a second.
        self.failures = FailureLog(log)
        for job in scheduler.get_jobs():
            job.modify(func=self._tracked(job.id, job.func))

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
        self.timer.stop()
        if self.scheduler.running:
            self.scheduler.pause()

    async def stop(self, within: float = STOP_WAIT) -> None:
        """Pause, wait up to `within` seconds for the running jobs, then shut down.

        Pause first: APScheduler's shutdown cancels the jobs still running. The wait is the part of
        the process's stop bound ([delivery] shutdown_seconds) that is left."""
        started = self.scheduler.running
        self.pause()
        busy = {job for job in self._running | self.timer.tasks() if not job.done()}
        if busy and within > 0:
            await asyncio.wait(busy, timeout=within)
        if started:
            self.scheduler.shutdown(wait=False)


def build_scheduler(runtime: Runtime) -> Jobs:
    scheduler = AsyncIOScheduler(timezone=UTC)
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    delivery = runtime.config.delivery
    tick = delivery.tick_seconds
    timer = DeadlineTimer(runtime, tick)
    scheduler.add_job(timer.run, "interval", seconds=tick, id="deadlines", **common)
    # run_due returns once it has handed the due rows to their robots' lanes: a robot that hangs
    # never makes the next tick skip (max_instances) and so never delays the other robots.
    scheduler.add_job(runtime.outbox.run_due, "interval", seconds=tick, id="outbox", **common)
    # Held messages (a robot refused them for a configuration reason): probed at start — a restart
    # after fixing the webhook sends them at once — and then every held_probe_seconds.
    scheduler.add_job(runtime.outbox.probe_held, "interval", seconds=delivery.held_probe_seconds, id="probe-held",
                      next_run_time=datetime.now(UTC), **common)
    scheduler.add_job(purge_pending, "interval", minutes=10, id="purge-pending", args=[runtime], **common)
    add_roster_jobs(scheduler, runtime)
    return Jobs(scheduler, timer)
