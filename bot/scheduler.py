"""APScheduler wiring. The scheduler only triggers work; every job reloads its state from the
database, so it holds nothing that a restart could lose."""

from __future__ import annotations

import logging
from datetime import UTC, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.runtime import Runtime
from store import pending

log = logging.getLogger(__name__)

# Expired questions are kept a day so a late answer still gets "this question has expired".
PENDING_GRACE = timedelta(days=1)


async def purge_pending(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        removed = await pending.purge_expired(session, runtime.clock.now() - PENDING_GRACE)
    if removed:
        log.info("purged %d expired pending questions", removed)


def build_scheduler(runtime: Runtime) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=UTC)
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    scheduler.add_job(runtime.outbox.run_once, "interval", seconds=1, id="outbox", **common)
    scheduler.add_job(purge_pending, "interval", minutes=10, id="purge-pending", args=[runtime], **common)
    return scheduler
