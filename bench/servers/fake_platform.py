"""The far end of every reply: a fake DingTalk robot and a fake OneBot v11 HTTP API in one process.

- POST /robot/send, /robot/sendBySession  → {"errcode":0,"errmsg":"ok"}  (dutybot's replies)
- POST /cgi-bin/webhook/send               → {"errcode":0,"errmsg":"ok"}  (dutybot's WeCom group robot:
                                              the intake scenario's announcements in wecom_duty)
- POST /send_msg, /send_group_msg, …       → {"status":"ok","retcode":0,"data":{"message_id":N}}
                                              (the nonebot2 peer's replies, OneBot v11 HTTP API)
- GET  /count                              → {"dingtalk": n, "onebot": m, "wecom": w}: posts received so far

It only counts and answers; the bench reads /count before and after a run to see how many
replies were actually delivered. Runs on the load generator's core.

Run as: python -m bench.servers.fake_platform --port N
"""

from __future__ import annotations

from aiohttp import web

from bench.servers.run import main

COUNTS = web.AppKey("counts", dict)


async def robot(request: web.Request) -> web.Response:
    await request.read()
    request.app[COUNTS]["dingtalk"] += 1
    return web.json_response({"errcode": 0, "errmsg": "ok"})


async def wecom(request: web.Request) -> web.Response:
    await request.read()
    request.app[COUNTS]["wecom"] += 1
    return web.json_response({"errcode": 0, "errmsg": "ok"})


async def onebot(request: web.Request) -> web.Response:
    await request.read()
    counts = request.app[COUNTS]
    counts["onebot"] += 1
    return web.json_response({"status": "ok", "retcode": 0, "data": {"message_id": counts["onebot"]}})


async def count(request: web.Request) -> web.Response:
    return web.json_response(request.app[COUNTS])


def make_app() -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[COUNTS] = {"dingtalk": 0, "onebot": 0, "wecom": 0}
    app.router.add_post("/robot/send", robot)
    app.router.add_post("/robot/sendBySession", robot)
    app.router.add_post("/cgi-bin/webhook/send", wecom)
    app.router.add_post("/{action:send_msg|send_group_msg|send_private_msg}", onebot)
    app.router.add_get("/count", count)
    return app


if __name__ == "__main__":
    main(make_app, "fake platform")
