"""The aiohttp application factory."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.channels import local
from bot.channels.registry import build_channels
from bot.clock import Clock, SystemClock
from bot.config import Config
from bot.runtime import RUNTIME, Runtime
from bot.scheduler import build_scheduler
from store import outbox as outbox_store

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
        if config.server.simulator and simulator is None:
            log.warning("本地模拟通道已开启（[server] simulator = true）：仅供演示与测试，生产环境请关闭。")
        for channel in channels:
            await channel.start()
        jobs = build_scheduler(runtime) if scheduler else None
        if jobs is not None:
            jobs.start()
            runtime.scheduler_running = True
        log.info("dutybot started: %d chats, %d people, %d channel(s) on", len(config.chats),
                 len(config.people), len(channels))
        yield
        if jobs is not None:
            runtime.scheduler_running = False
            await jobs.stop()
        for channel in channels:
            await channel.stop()
        await runtime.outbox.drain()
        await runtime.close_http()
        await runtime.db.dispose()

    app.cleanup_ctx.append(lifecycle)
    if config.server.simulator if simulator is None else simulator:
        local.setup(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


# The outbox is swept every second; older than this, something is stuck.
OUTBOX_AGE_LIMIT = 120.0


async def _outbox_state(runtime: Runtime) -> tuple[int, float]:
    now = runtime.clock.now()
    async with runtime.db.read() as session:
        depth, oldest = await outbox_store.backlog(session, now)
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    runtime.metrics.outbox_depth.set(depth)
    runtime.metrics.outbox_oldest_age.set(age)
    return depth, age


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers, the scheduler runs and the outbox is not stuck; else 503."""
    runtime = request.app[RUNTIME]
    database = await runtime.db.ping()
    depth, age = await _outbox_state(runtime) if database else (0, 0.0)
    body = {
        "database": database,
        "scheduler": runtime.scheduler_running,
        "outbox_depth": depth,
        "outbox_oldest_age_seconds": round(age, 1),
        "outbox_ok": age < OUTBOX_AGE_LIMIT,
    }
    ok = database and runtime.scheduler_running and age < OUTBOX_AGE_LIMIT
    return web.json_response({"ok": ok, **body}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if await runtime.db.ping():
        await _outbox_state(runtime)
    return web.Response(body=generate_latest(runtime.metrics.registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})
