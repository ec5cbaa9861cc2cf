"""The aiohttp application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from bot.channels import local
from bot.channels.base import Sender
from bot.clock import Clock, SystemClock
from bot.config import Config
from bot.runtime import RUNTIME, Runtime
from bot.scheduler import build_scheduler
from bot.vocab import Platform

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


def create_app(
    config: Config, *, clock: Clock | None = None, scheduler: bool = True,
    senders: Mapping[Platform, Sender] | None = None,
) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    runtime = Runtime.build(config, clock or SystemClock(), senders)
    app[RUNTIME] = runtime

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await runtime.db.upgrade()
        jobs = build_scheduler(runtime) if scheduler else None
        if jobs is not None:
            jobs.start()
        log.info("dutybot started: %d chats, %d people", len(config.chats), len(config.people))
        yield
        if jobs is not None:
            jobs.shutdown(wait=False)
        await runtime.db.dispose()

    app.cleanup_ctx.append(lifecycle)
    local.setup(app)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    ok = await runtime.db.ping()
    return web.json_response({"ok": ok, "database": ok}, status=200 if ok else 503)
