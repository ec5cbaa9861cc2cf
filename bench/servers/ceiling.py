"""The ceiling: a bare aiohttp handler that reads the same callback body, parses its JSON and
answers 200 `{}` — no signature, no database. Every ratio in RESULTS.md divides by its rate.

Run as: python -m bench.servers.ceiling --host 127.0.0.1 --port N
It runs like `dutybot serve`: the same Python, the same aiohttp AppRunner without an access log,
logging at WARNING, on the default asyncio event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal

from aiohttp import web


async def callback(request: web.Request) -> web.Response:
    data = json.loads(await request.read())
    if not isinstance(data, dict):
        return web.json_response({"error": "not an object"}, status=400)
    return web.json_response({})


async def serve(host: str, port: int) -> None:
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/callback/dingtalk/dingtalk", callback)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"ceiling listening on http://{host}:{port}", flush=True)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
