"""The ceiling: a bare aiohttp handler that reads the same callback body, parses its JSON and
answers 200 `{}` — no signature, no database. Every ratio in RESULTS.md divides by its rate.
POST /api/v1/items does the same with the intake API's body and answers 201 `{}` (the intake
scenario's ceiling; no token check).

Run as: python -m bench.servers.ceiling --host 127.0.0.1 --port N
It runs like `dutybot serve`: the same Python, the same aiohttp AppRunner without an access log,
logging at WARNING, on the default asyncio event loop.
"""

from __future__ import annotations

import json

from aiohttp import web

from bench.servers.run import main


async def callback(request: web.Request) -> web.Response:
    data = json.loads(await request.read())
    if not isinstance(data, dict):
        return web.json_response({"error": "not an object"}, status=400)
    return web.json_response({})


async def item(request: web.Request) -> web.Response:
    data = json.loads(await request.read())
    if not isinstance(data, dict):
        return web.json_response({"error": "not an object"}, status=400)
    return web.json_response({}, status=201)


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/callback/dingtalk/dingtalk", callback)
    app.router.add_post("/api/v1/items", item)
    return app


if __name__ == "__main__":
    main(make_app, "ceiling")
