"""The aiohttp application factory."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from bot.channels import local
from bot.channels.registry import build_channels
from bot.clock import Clock, SystemClock
from bot.config import Config
from bot.runtime import RUNTIME, Runtime
from bot.scheduler import build_scheduler

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


def create_app(
    config: Config, *, clock: Clock | None = None, scheduler: bool = True,
    environ: Mapping[str, str] | None = None, simulator: bool | None = None,
) -> web.Application:
    """Build the app. Raises ChannelStartError when a channel is configured but unsafe to start.

    `simulator` turns the local channel and /sim on or off; by default the config decides.
    """
    app = web.Application(client_max_size=MAX_BODY)
    runtime = Runtime.build(config, clock or SystemClock())
    app[RUNTIME] = runtime
    channels, off = build_channels(runtime, os.environ if environ is None else environ)
    for channel in channels:
        channel.setup_routes(app)
        runtime.outbox.add_senders(channel.senders())

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await runtime.db.upgrade()
        await runtime.open_http()
        for line in off:
            log.warning("%s", line)
        for channel in channels:
            await channel.start()
        jobs = build_scheduler(runtime) if scheduler else None
        if jobs is not None:
            jobs.start()
        log.info("dutybot started: %d chats, %d people, %d channel(s) on", len(config.chats),
                 len(config.people), len(channels))
        yield
        if jobs is not None:
            jobs.shutdown(wait=False)
        for channel in channels:
            await channel.stop()
        await runtime.outbox.drain()
        await runtime.close_http()
        await runtime.db.dispose()

    app.cleanup_ctx.append(lifecycle)
    if config.server.simulator if simulator is None else simulator:
        local.setup(app)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    ok = await runtime.db.ping()
    return web.json_response({"ok": ok, "database": ok}, status=200 if ok else 503)
