"""The local channel: the HTTP contract the simulator and the conversation tests use.

POST /local/messages  {"chat", "sender", "text"} → {"replies": [{"text", "mentions"}]}
GET  /local/messages?chat=&after=               → {"messages": [{"seq","at","from","text","mentions"}]}
GET  /local/directory                            → units, chats and people for the pickers
GET  /sim                                        → the browser simulator
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.dispatch import render_mentions
from bot.messages import InboundMessage
from bot.runtime import RUNTIME, Runtime
from store import chatlog

SIM_PAGE = Path(__file__).resolve().parent.parent / "web" / "sim.html"
MAX_BODY = 64 * 1024

BAD_JSON = "请求体不是有效的 JSON 对象。"
MISSING = "缺少字段或类型不对：{fields}（应为字符串）。"
UNKNOWN_CHAT = "未知的群聊“{chat}”，可用的群聊见 /local/directory。"
EMPTY_TEXT = "消息内容不能为空。"
BAD_AFTER = "参数 after 应为非负整数。"
NEED_CHAT = "缺少参数 chat。"
TOO_LARGE = "请求体过大（上限 64 KiB）。"


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def post_message(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _error(TOO_LARGE, 413)
    try:
        body = json.loads(await request.read())
    except web.HTTPRequestEntityTooLarge:
        return _error(TOO_LARGE, 413)
    except (ValueError, UnicodeDecodeError):
        return _error(BAD_JSON)
    if not isinstance(body, dict):
        return _error(BAD_JSON)
    missing = [f for f in ("chat", "sender", "text") if not isinstance(body.get(f), str)]
    if missing:
        return _error(MISSING.format(fields="、".join(missing)))
    chat = runtime.directory.chats.get(body["chat"])
    if chat is None:
        return _error(UNKNOWN_CHAT.format(chat=body["chat"]))
    if not body["text"].strip():
        return _error(EMPTY_TEXT)
    message = InboundMessage(
        platform=chat.platform, chat_id=chat.id, sender_id=body["sender"], text=body["text"],
        received_at=runtime.clock.now(),
    )
    replies = (await runtime.handler.handle(message)).replies
    # Post what this message queued (e.g. the copy to the coordinators' chat) right away, so the
    # simulator and scripted tests see it without waiting for the next scheduler tick.
    await runtime.outbox.run_once()
    payload = [
        {"text": render_mentions(r.text, r.mentions, runtime.directory), "mentions": list(r.mentions)}
        for r in replies
    ]
    return web.json_response({"replies": payload}, dumps=_dumps)


async def get_messages(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    chat_id = request.query.get("chat")
    if not chat_id:
        return _error(NEED_CHAT)
    if chat_id not in runtime.directory.chats:
        return _error(UNKNOWN_CHAT.format(chat=chat_id))
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        return _error(BAD_AFTER)
    if after < 0:
        return _error(BAD_AFTER)
    async with runtime.db.read() as session:
        rows = await chatlog.after(session, chat_id, after)
    tz = runtime.config.tz
    messages = [
        {"seq": r.seq, "at": r.at.astimezone(tz).isoformat(), "from": r.sender, "text": r.text,
         "mentions": list(r.mentions)}
        for r in rows
    ]
    return web.json_response(
        {"messages": messages, "now": runtime.clock.now().astimezone(tz).isoformat()}, dumps=_dumps
    )


def directory_payload(runtime: Runtime) -> dict[str, Any]:
    config = runtime.config
    return {
        "bot": {"name": config.bot.name},
        "clock": {"now": runtime.clock.now().astimezone(config.tz).isoformat(), "timezone": config.timezone,
                  "speed": getattr(runtime.clock, "speed", 1)},
        "units": [{"id": u.id, "name": u.name, "parent": u.parent, "kind": u.kind.value} for u in config.units],
        "chats": [
            {"id": c.id, "name": c.name, "platform": c.platform.value, "unit": c.unit,
             "platform_chat_id": c.platform_chat_id, "coordinators": c.coordinators}
            for c in config.chats
        ],
        "people": [
            {"id": p.id, "name": p.name, "roles": [{"role": a.role.value, "unit": a.unit} for a in p.roles],
             "wecom_userid": p.wecom_userid, "dingtalk_userid": p.dingtalk_userid}
            for p in config.people
        ],
    }


async def get_directory(request: web.Request) -> web.Response:
    return web.json_response(directory_payload(request.app[RUNTIME]), dumps=_dumps)


async def get_sim(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(SIM_PAGE, headers={"Content-Type": "text/html; charset=utf-8",
                                               "Cache-Control": "no-cache"})


FORBIDDEN = "本地模拟通道只接受本机访问。"


@web.middleware
async def loopback_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Keep the local channel to this machine unless the operator opened it on purpose."""
    if request.path.startswith(("/local/", "/sim")) and not request.app[RUNTIME].config.server.simulator_remote:
        remote = request.remote or ""
        try:
            loopback = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            loopback = remote == ""  # a unix socket or an in-process test transport
        if not loopback:
            return _error(FORBIDDEN, 403)
    return await handler(request)


def setup(app: web.Application) -> None:
    app.middlewares.append(loopback_only)
    app.router.add_post("/local/messages", post_message)
    app.router.add_get("/local/messages", get_messages)
    app.router.add_get("/local/directory", get_directory)
    app.router.add_get("/sim", get_sim)
