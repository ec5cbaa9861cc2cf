"""Everything one running bot holds, built once by the app factory and kept under one AppKey."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from bot.channels.base import Sender
from bot.clock import Clock
from bot.config import Config
from bot.directory import Directory
from bot.dispatch import MessageHandler
from bot.outbox import OutboxWorker
from bot.vocab import Platform
from handlers import grading, query, report, workflow
from handlers import help as help_feature
from handlers.duty import ConfiguredDuty, DutyLookup
from handlers.router import Dispatcher
from store.db import Database


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

    @classmethod
    def build(cls, config: Config, clock: Clock, senders: Mapping[Platform, Sender] | None = None) -> Runtime:
        db = Database(config.database.url)
        directory = Directory(config)
        duty = ConfiguredDuty(directory)
        handler = MessageHandler(db=db, config=config, directory=directory, clock=clock, duty=duty,
                                 dispatcher=build_dispatcher())
        worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(db):x}"
        worker = OutboxWorker(db=db, clock=clock, directory=directory, senders=senders or {}, worker_id=worker_id)
        return cls(config, clock, db, directory, duty, handler, worker)


RUNTIME = web.AppKey("runtime", Runtime)
