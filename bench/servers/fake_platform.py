"""The far end of every reply: a fake DingTalk robot and a fake OneBot v11 HTTP API in one process.

- POST /robot/send, /robot/sendBySession  → {"errcode":0,"errmsg":"ok"}  (dutybot's replies)
- POST /send_msg, /send_group_msg, …       → {"status":"ok","retcode":0,"data":{"message_id":N}}
                                              (the nonebot2 peer's replies, OneBot v11 HTTP API)
- GET  /count                              → {"dingtalk": n, "onebot": m}: posts received so far

It only counts and answers; the bench reads /count before and after a run to see how many
replies were actually delivered. Runs on the load generator's core.

Run as: python -m bench.servers.fake_platform --port N
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from aiohttp import web

COUNTS = web.AppKey("counts", dict)


async def robot(request: web.Request) -> web.Response:
    await request.read()
    request.app[COUNTS]["dingtalk"] += 1
    return web.json_response({"errcode": 0, "errmsg": "ok"})


async def onebot(request: web.Request) -> web.Response:
    await request.read()
    counts = request.app[COUNTS]
    counts["onebot"] += 1
    return web.json_response({"status": "ok", "retcode": 0, "data": {"message_id": counts["onebot"]}})


async def count(request: web.Request) -> web.Response:
    return web.json_response(request.app[COUNTS])


async def serve(host: str, port: int) -> None:
    app = web.Application(client_max_size=1024 * 1024)
    app[COUNTS] = {"dingtalk": 0, "onebot": 0}
    app.router.add_post("/robot/send", robot)
    app.router.add_post("/robot/sendBySession", robot)
    app.router.add_post("/{action:send_msg|send_group_msg|send_private_msg}", onebot)
    app.router.add_get("/count", count)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake platform listening on http://{host}:{port}", flush=True)
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
