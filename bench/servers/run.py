"""How every bench server process runs: an aiohttp AppRunner without access log (as `dutybot
serve`), logging at WARNING, until SIGINT or SIGTERM; `--host`/`--port` on the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web


async def serve(app: web.Application, host: str, port: int, name: str) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"{name} listening on http://{host}:{port}", flush=True)
    await stop.wait()
    await runner.cleanup()


def main(make_app: Callable[[], web.Application], name: str) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(make_app(), args.host, args.port, name))
