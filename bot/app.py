"""The aiohttp application factory."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.api import items as intake
from bot.channels import local
from bot.channels.base import Channel
from bot.channels.registry import build_channels
from bot.clock import Clock, SystemClock
from bot.runtime import RUNTIME, Runtime
from bot.scheduler import Jobs, build_scheduler
from bot.web import home
from domain.config import Config
from domain.messages import NotKept
from store import outbox as outbox_store

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# What `dutybot serve` checks before it starts: the local simulator lets anyone on the machine
# speak as anyone, so it must not run next to a live platform channel unless asked for.
SIMULATOR = web.AppKey("simulator", bool)
LIVE_CHANNELS: web.AppKey[tuple[str, ...]] = web.AppKey("live_channels")


def create_app(
    config: Config, *, clock: Clock | None = None, scheduler: bool = True,
    environ: Mapping[str, str] | None = None, simulator: bool | None = None,
) -> web.Application:
    """Build the app. Raises ChannelStartError when a channel is configured but unsafe to start.

    `simulator` turns the local channel and /sim on or off; by default the config decides.
    """
    app = web.Application(client_max_size=MAX_BODY, middlewares=[not_kept_is_503, intake.api_errors])
    environ = os.environ if environ is None else environ
    runtime = Runtime.build(config, clock or SystemClock(), environ)  # with the webhooks the environment turns on
    app[RUNTIME] = runtime
    channels, off = build_channels(runtime, environ)
    for channel in channels:
        channel.setup_routes(app)
        runtime.outbox.add_senders(channel.senders())
    running: list[Jobs] = []  # the scheduler once started: paused first thing at a stop

    async def begin_stop(app: web.Application) -> None:
        # SIGTERM (or a test server's close), before the callbacks in flight are waited for: take
        # no new work. The stop's bound ([delivery] shutdown_seconds) counts from here.
        runtime.outbox.begin_stop()
        for jobs in running:
            jobs.pause()

    app.on_shutdown.append(begin_stop)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await runtime.db.upgrade()
        await runtime.open_http()
        for line in off:
            log.warning("%s", line)
        if config.server.simulator and simulator is None:
            log.warning("本地模拟通道已开启（[server] simulator = true）：仅供演示与测试，生产环境请关闭。")
        for channel in channels:
            await channel.start()
        # Files left in the spool by a process that died are replayed now, then every few seconds.
        replaying = asyncio.get_running_loop().create_task(runtime.keeper.run(runtime.handler)) if scheduler else None
        jobs = build_scheduler(runtime) if scheduler else None
        if jobs is not None:
            jobs.start()
            running.append(jobs)
            runtime.scheduler_running = True
        log.info("dutybot started: %d chats, %d people, %d channel(s) on", len(config.chats),
                 len(config.people), len(channels))
        yield
        if replaying is not None:
            replaying.cancel()
        # Bounded whatever the platforms do: every wait below takes what is left of the stop's
        # bound, and the outbox then cuts off its posts still in flight and releases its claims.
        runtime.outbox.begin_stop()
        if jobs is not None:
            runtime.scheduler_running = False
            await jobs.stop(within=runtime.outbox.stop_left())
        await _stop_channels(channels, runtime.outbox.stop_left())
        await runtime.pipeline.close(runtime.outbox.stop_left())  # direct answers to strangers still in flight
        await runtime.outbox.shutdown()
        await runtime.close_http()
        await runtime.keeper.close()
        await runtime.db.dispose()

    app.cleanup_ctx.append(lifecycle)
    app[LIVE_CHANNELS] = tuple(channel.id for channel in channels)
    app[SIMULATOR] = config.server.simulator if simulator is None else simulator
    if app[SIMULATOR]:
        local.setup(app)
    intake.setup(app, runtime)  # answers only requests with a valid token: no token, no open door
    app.router.add_get("/", home_page)
    app.router.add_get("/favicon.svg", favicon)
    app.router.add_get("/favicon.ico", favicon)  # asked for by browsers on pages without an icon (/healthz)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def home_page(request: web.Request) -> web.Response:
    """What this service is, instead of a bare 404 for whoever opens the address in a browser."""
    # The simulator is linked only where it would answer: not to another machine, nor through
    # a name that is not this machine's (its guard would refuse the click with a 403).
    simulator = request.app[SIMULATOR] and local.accepts(request)
    return web.Response(text=home.render(home.links(simulator=simulator)), headers=home.HEADERS)


async def favicon(request: web.Request) -> web.FileResponse:
    # /favicon.ico is SVG too: browsers go by the Content-Type, and one drawing is kept, not two.
    return web.FileResponse(home.FAVICON, headers={
        "Content-Type": home.FAVICON_TYPE, "Cache-Control": "public, max-age=86400",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'", "X-Content-Type-Options": "nosniff",
    })


# The least a channel's stop gets at a stop whose bound is spent (a Stream connection's close frame).
CHANNEL_STOP_FLOOR = 0.2


async def _stop_channels(channels: Sequence[Channel], within: float) -> None:
    """Stop the channels, together, for at most `within` seconds (a Stream gateway that does not
    answer must not hold the process)."""
    if not channels:
        return
    try:
        async with asyncio.timeout(max(within, CHANNEL_STOP_FLOOR)):
            await asyncio.gather(*(channel.stop() for channel in channels))
    except TimeoutError:
        log.warning("channels did not stop within the shutdown bound; closing anyway")


@web.middleware
async def not_kept_is_503(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A message neither the database nor the spool could keep: 503, so the platform (or the
    client) sends it again — never a 2xx for what is not kept, never a plain-text 500."""
    try:
        return await handler(request)
    except NotKept as exc:
        return web.json_response({"error": f"{exc}，请稍后重试"}, status=503,
                                 headers={"Retry-After": "5"}, dumps=_dumps_cn)


def _dumps_cn(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


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
    """200 when the database answers and takes writes, the scheduler runs and the outbox is not
    stuck; else 503 with `failed` naming the parts that are not well."""
    runtime = request.app[RUNTIME]
    database = await runtime.db.ping()
    writable = await runtime.write_probe() if database else False
    depth, age = await _outbox_state(runtime) if database else (0, 0.0)
    spool_depth, spool_age = runtime.keeper.state()
    checks = {
        "database": database,
        "database_writable": writable,
        "scheduler": runtime.scheduler_running,
        "outbox_ok": age < OUTBOX_AGE_LIMIT,
    }
    body = {
        **checks,
        "outbox_depth": depth,
        "outbox_oldest_age_seconds": round(age, 1),
        "spool_depth": spool_depth,
        "spool_oldest_age_seconds": round(spool_age, 1),
        "failed": [name for name, ok in checks.items() if not ok],
    }
    ok = all(checks.values())
    return web.json_response({"ok": ok, **body}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if await runtime.db.ping():
        await _outbox_state(runtime)
    runtime.keeper.state()
    return web.Response(body=generate_latest(runtime.metrics.registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})
