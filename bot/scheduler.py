"""APScheduler wiring. The scheduler only triggers work; every job reloads its state from the
database, so it holds nothing that a restart could lose."""

from __future__ import annotations

import logging
from datetime import UTC, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.roster_jobs import add_roster_jobs
from bot.runtime import Runtime
from store import inbound, pending, ratelimit

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
    if removed or seen:
        log.info("purged %d expired pending questions and %d old message ids", removed, seen)


def build_scheduler(runtime: Runtime) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC)
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    tick = runtime.config.delivery.tick_seconds
    scheduler.add_job(runtime.deadlines.run_once, "interval", seconds=tick, id="deadlines", **common)
    scheduler.add_job(runtime.outbox.run_once, "interval", seconds=tick, id="outbox", **common)
    scheduler.add_job(purge_pending, "interval", minutes=10, id="purge-pending", args=[runtime], **common)
    add_roster_jobs(scheduler, runtime)
    return scheduler
