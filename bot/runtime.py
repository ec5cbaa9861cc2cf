"""Everything one running bot holds, built once by the app factory and kept under one AppKey."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from bot.clock import Clock
from bot.config import Config
from bot.directory import Directory
from bot.dispatch import MessageHandler
from bot.outbox import OutboxWorker
from handlers import grading, query, report, workflow
from handlers import help as help_feature
from handlers.duty import ConfiguredDuty, DutyLookup
from handlers.router import Dispatcher
from store.db import Database

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)


def build_dispatcher() -> Dispatcher:
    # Order matters only for fallbacks: a pending grade answer first, the unknown-command hint last.
    return Dispatcher(grading.router, report.router, workflow.router, query.router, help_feature.router)


@dataclass
class Runtime:
    config: Config
    clock: Clock
    db: Database
    directory: Directory
    duty: DutyLookup
    handler: MessageHandler
    outbox: OutboxWorker
    _http: aiohttp.ClientSession | None = field(default=None, repr=False)

    @classmethod
    def build(cls, config: Config, clock: Clock) -> Runtime:
        db = Database(config.database.url)
        directory = Directory(config)
        duty = ConfiguredDuty(directory)
        handler = MessageHandler(db=db, config=config, directory=directory, clock=clock, duty=duty,
                                 dispatcher=build_dispatcher())
        worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(db):x}"
        worker = OutboxWorker(db=db, clock=clock, directory=directory, senders={}, worker_id=worker_id)
        return cls(config, clock, db, directory, duty, handler, worker)

    @property
    def http(self) -> aiohttp.ClientSession:
        """The shared HTTP client for webhooks; exists while the app runs."""
        if self._http is None:
            raise RuntimeError("the HTTP client exists only while the app is running")
        return self._http

    async def open_http(self) -> None:
        self._http = aiohttp.ClientSession(timeout=HTTP_TIMEOUT, trust_env=False)

    async def close_http(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


RUNTIME = web.AppKey("runtime", Runtime)
