"""Everything one running bot holds, built once by the app factory and kept under one AppKey."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.clock import Clock
from bot.deadlines import DeadlineSweep
from bot.dispatch import MessageHandler
from bot.metrics import Metrics
from bot.outbox import OutboxWorker
from bot.spool import Spool
from bot.spool_keeper import SpoolKeeper
from domain.config import Config
from domain.directory import Directory
from handlers import assignment, classify, grading, offer, query, report, roster, workflow
from handlers import help as help_feature
from handlers.duty import DutyLookup
from handlers.roster_service import RosterDuty
from handlers.router import Dispatcher
from store.db import Database

# A write probe's answer is reused this long (seconds): /healthz may be polled every second.
PROBE_EVERY = 5.0


def build_dispatcher() -> Dispatcher:
    # Order matters only for fallbacks: a pending grade answer first; the offer to register a
    # verb-less report (and its answer) before the unknown-command hint, last.
    return Dispatcher(grading.router, report.router, assignment.router, classify.router, workflow.router,
                      query.router, roster.router, offer.router, help_feature.router)


@dataclass
class Runtime:
    config: Config
    clock: Clock
    db: Database
    directory: Directory
    duty: DutyLookup
    handler: MessageHandler
    outbox: OutboxWorker
    deadlines: DeadlineSweep
    metrics: Metrics
    spool: Spool
    keeper: SpoolKeeper
    scheduler_running: bool = False
    _http: aiohttp.ClientSession | None = field(default=None, repr=False)
    _probed: tuple[float, bool] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, config: Config, clock: Clock) -> Runtime:
        db = Database(config.database.url, lock_wait_seconds=config.spool.write_budget_seconds)
        directory = Directory(config)
        duty = RosterDuty(directory)  # the roster; chats without one keep their configured people
        duty.watch(db.engine)
        worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(db):x}"
        metrics = Metrics()
        webhook_envs = {channel.id: channel.webhook_env for channel in config.channels}
        delivery = config.delivery
        worker = OutboxWorker(
            db=db, clock=clock, directory=directory, senders={}, worker_id=worker_id, metrics=metrics,
            webhook_envs=webhook_envs, lease=timedelta(seconds=delivery.lease_seconds), rate_limit=delivery.rate_limit,
            rate_window=timedelta(seconds=delivery.rate_window_seconds), digest_after=delivery.digest_after,
            post_timeout=timedelta(seconds=delivery.timeout_seconds),
        )
        spool = Spool(Path(config.spool.directory), max_bytes=config.spool.max_bytes,
                      tag=f"{socket.gethostname()}-{os.getpid()}-{id(db):x}")
        handler = MessageHandler(db=db, config=config, directory=directory, clock=clock, duty=duty,
                                 dispatcher=build_dispatcher(), delivery=worker, spool=spool,
                                 write_budget=config.spool.write_budget_seconds)
        keeper = SpoolKeeper(spool=spool, db=db, clock=clock, directory=directory, metrics=metrics,
                             senders=worker.senders)
        handler.on_spooled = keeper.spooled
        sweep = DeadlineSweep(db=db, clock=clock, config=config, directory=directory, duty=duty, metrics=metrics)
        return cls(config, clock, db, directory, duty, handler, worker, sweep, metrics, spool, keeper)

    async def write_probe(self) -> bool:
        """The database's write probe, at most once per PROBE_EVERY (health checks may come often)."""
        now = time.monotonic()
        if self._probed is None or now - self._probed[0] >= PROBE_EVERY:
            self._probed = (now, await self.db.write_probe())
            self.metrics.write_probe_ok.set(1 if self._probed[1] else 0)
        return self._probed[1]

    @property
    def http(self) -> aiohttp.ClientSession:
        """The shared HTTP client for webhooks; exists while the app runs."""
        if self._http is None:
            raise RuntimeError("the HTTP client exists only while the app is running")
        return self._http

    async def open_http(self) -> None:
        seconds = self.config.delivery.timeout_seconds
        timeout = aiohttp.ClientTimeout(total=seconds, connect=min(5.0, seconds))
        self._http = aiohttp.ClientSession(timeout=timeout, trust_env=False)

    async def close_http(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


RUNTIME = web.AppKey("runtime", Runtime)
