"""Everything one running bot holds, built once by the app factory and kept under one AppKey."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.channels.pipeline import ChannelRuntime, Pipeline
from bot.clock import Clock
from bot.deadlines import DeadlineSweep
from bot.dispatch import MessageHandler
from bot.documents.markdown import chat_replies
from bot.metrics import Metrics
from bot.outbox import OutboxWorker
from bot.spool import Spool
from bot.spool_keeper import SpoolKeeper
from bot.webhook_send import read_endpoints, senders
from domain.config import Config
from domain.directory import Directory
from handlers import assignment, classify, grading, offer, query, report, roster, roster_swap, workflow
from handlers import help as help_feature
from handlers.dialogues import Dialogues
from handlers.duty import DutyLookup
from handlers.records import daily_chat, special_chat, stats_chat, zero_chat
from handlers.roster_service import RosterDuty
from handlers.router import Dispatcher
from store.db import Database

# A write probe's answer is reused this long (seconds): /healthz may be polled every second.
PROBE_EVERY = 5.0


def build_dispatcher() -> Dispatcher:
    # A bare answer goes to the question it answers (one resolver, by the kind of the sender's
    # question: handlers/dialogues.py). Order matters only for the fallbacks and the unrecognised
    # handlers: the offer to register a verb-less report before the unknown-command hint, last.
    dialogues = Dialogues(grading.GRADE_QUESTION, roster_swap.SWAP_DIALOGUE, offer.OFFER_DIALOGUE)
    return Dispatcher(grading.router, report.router, assignment.router, classify.router, workflow.router,
                      query.router, roster.router, zero_chat.router, daily_chat.build_router(chat_replies),
                      special_chat.build_router(chat_replies), stats_chat.build_router(chat_replies),
                      offer.router, help_feature.router, dialogues=dialogues)


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
    pipeline: Pipeline  # the shared inbound path of the platform channels
    scheduler_running: bool = False
    webhooks_off: list[str] = field(default_factory=list)  # a line for each outgoing webhook that is off
    _http: aiohttp.ClientSession | None = field(default=None, repr=False)
    _probed: tuple[float, bool] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, config: Config, clock: Clock, environ: Mapping[str, str] | None = None) -> Runtime:
        """Everything the bot holds. `environ` turns on the outgoing webhooks whose variables it
        sets (None, for tools like `doctor`: none); ChannelStartError for one half configured."""
        endpoints, webhooks_off = read_endpoints(config, environ) if environ is not None else ([], [])
        if len(endpoints) != len(config.webhooks):
            # A subscriber that is off gets no events at all: the operations publish to the
            # subscribers of the runtime's config, which keeps only those that are on.
            config = config.model_copy(update={"webhooks": [endpoint.subscriber for endpoint in endpoints]})
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
        pipeline = Pipeline(directory=directory, clock=clock, handler=handler, track=worker.track)
        runtime = cls(config, clock, db, directory, duty, handler, worker, sweep, metrics, spool, keeper, pipeline,
                      webhooks_off=webhooks_off)
        worker.add_senders(senders(endpoints, http=lambda: runtime.http, clock=clock, directory=directory))
        return runtime

    def for_channels(self) -> ChannelRuntime:
        """The part of the runtime a platform channel may use."""
        return ChannelRuntime(directory=self.directory, clock=self.clock, metrics=self.metrics,
                              pipeline=self.pipeline, db=self.db, client=lambda: self.http)

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
