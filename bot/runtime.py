"""Everything one running bot holds, built once by the app factory and kept under one AppKey."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
from aiohttp import web

from bot.clock import Clock
from bot.config import Config
from bot.deadlines import DeadlineSweep
from bot.directory import Directory
from bot.dispatch import MessageHandler
from bot.metrics import Metrics
from bot.outbox import OutboxWorker
from handlers import assignment, classify, grading, query, report, roster, workflow
from handlers import help as help_feature
from handlers.duty import DutyLookup
from handlers.roster_service import RosterDuty
from handlers.router import Dispatcher
from store.db import Database


def build_dispatcher() -> Dispatcher:
    # Order matters only for fallbacks: a pending grade answer first, the unknown-command hint last.
    return Dispatcher(grading.router, report.router, assignment.router, classify.router, workflow.router,
                      query.router, roster.router, help_feature.router)


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
    scheduler_running: bool = False
    _http: aiohttp.ClientSession | None = field(default=None, repr=False)

    @classmethod
    def build(cls, config: Config, clock: Clock) -> Runtime:
        db = Database(config.database.url)
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
        handler = MessageHandler(db=db, config=config, directory=directory, clock=clock, duty=duty,
                                 dispatcher=build_dispatcher(), delivery=worker)
        sweep = DeadlineSweep(db=db, clock=clock, config=config, directory=directory, duty=duty, metrics=metrics)
        return cls(config, clock, db, directory, duty, handler, worker, sweep, metrics)

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
