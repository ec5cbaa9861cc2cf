"""The deadline sweep: turn due reminder points into outbox notices.

Items carry `next_reminder_at` (indexed) so a sweep touches only items that need it, and
`reminded_until`, the instant up to which their points have been queued. After downtime the
sweep queues every missed point once (its idempotency key is UNIQUE), marked late, with its
original time as the outbox due time so delivery keeps the due order. Replicas on PostgreSQL
split the work with FOR UPDATE SKIP LOCKED; on SQLite the single writer serialises sweeps.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.metrics import Metrics
from domain.config import Config
from domain.directory import Directory
from handlers.deadline_rules import due_points, next_point_at, running_clocks
from handlers.duty import DutyLookup
from handlers.engine import CycleResult, run_cycles
from handlers.items import item_clocks
from handlers.ops.base import Work
from handlers.reminders import Reminding, queue_reminder
from store import items as item_store
from store.db import Database
from store.models import Item

log = logging.getLogger(__name__)


class DeadlineSweep:
    def __init__(
        self, *, db: Database, clock: Clock, config: Config, directory: Directory, duty: DutyLookup,
        batch: int = 500, metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.db = db
        self.clock = clock
        self.config = config
        self.directory = directory
        self.duty = duty
        self.batch = batch

    # An engine module (handlers/engine.py): swept on every beat of the engine loop, and between
    # beats at the moment the next point falls due (the loop's wake-up, see bot/engine.py).
    name = "deadlines"
    interval: timedelta | None = None

    async def run_once(self) -> int:
        """Queue what is due now; returns how many new notices were queued. One transaction per
        batch (cycle), batch after batch until one comes back short."""
        self.metrics.sweeps.inc()
        result = await run_cycles(self.db, self, self._work)
        return result.queued

    async def next_due(self) -> datetime | None:
        """When the earliest reminder point of an open item falls (None when there is none)."""
        async with self.db.read() as session:
            return await item_store.earliest_reminder(session)

    def _work(self, session: AsyncSession) -> Work:
        return Work(session=session, config=self.config, directory=self.directory, duty=self.duty,
                    now=self.clock.now())

    async def cycle(self, work: Work) -> CycleResult:
        """One batch of due items: their missed and due points queued, their next point set."""
        now = work.now
        items = await item_store.due_for_reminders(work.session, now, self.batch)
        ctx = Reminding(session=work.session, now=now, config=self.config, directory=self.directory, duty=self.duty)
        fresh = 0
        for item in items:
            fresh += await self._sweep_item(ctx, item, now)
        if fresh:
            log.info("deadline sweep queued %d reminder(s)", fresh)
        return CycleResult(queued=fresh, more=len(items) >= self.batch)

    async def _sweep_item(self, ctx: Reminding, item: Item, now: datetime) -> int:
        facts = item_clocks(item)
        tz = self.config.tz
        since = item.reminded_until or item.reported_at
        fresh = 0
        for point in due_points(facts, self.config.policy, tz, now):
            if point.send_at > since:
                fresh += int(await queue_reminder(ctx, item, point))
        item.reminded_until = now
        item.next_reminder_at = next_point_at(facts, self.config.policy, tz, now) if running_clocks(facts) else None
        return fresh
