"""The local channel: the HTTP contract the simulator and the conversation tests use.

POST /local/messages  {"chat", "sender", "text"} → {"replies": [{"text", "mentions"}]}
GET  /local/messages?chat=&after=               → {"messages": [{"seq","at","from","text","mentions"}]}
GET  /local/directory                            → units, chats and people for the pickers
GET  /sim                                        → the browser simulator

The channel lets whoever reaches it speak as any configured person, so it answers only this
machine: a loopback peer (unless [server].simulator_remote), a `Host` that names this machine (a
web page on another site cannot rebind its DNS name to 127.0.0.1 and read or post through the
visitor's browser), and no `Origin` of another site (no cross-site POST from a page the operator
happens to open). Refusals are 403 with a Chinese `{"error"}`.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.dispatch import render_mentions
from bot.runtime import RUNTIME, Runtime
from domain.messages import InboundMessage, clean_text
from store import chatlog

SIM_PAGE = Path(__file__).resolve().parent.parent / "web" / "sim.html"
MAX_BODY = 64 * 1024

BAD_JSON = "请求体不是有效的 JSON 对象。"
MISSING = "缺少字段或类型不对：{fields}（应为字符串）。"
UNKNOWN_CHAT = "未知的群聊“{chat}”，可用的群聊见 /local/directory。"
EMPTY_TEXT = "消息内容不能为空。"
BAD_AFTER = "参数 after 应为不大于 9223372036854775807 的非负整数。"
NEED_CHAT = "缺少参数 chat。"
TOO_LARGE = "请求体过大（上限 64 KiB）。"
BAD_KEY = "请求头 Idempotency-Key 应为 1 至 128 个字符。"


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    # An answer may echo what the client sent (an unknown chat name): never a lone surrogate,
    # which could not be encoded as UTF-8 (a 500 instead of the 400 meant).
    return clean_text(json.dumps(value, ensure_ascii=False))


def _shown(value: str) -> str:
    """A client's value echoed in an error: at most 64 characters."""
    return value if len(value) <= 64 else value[:63] + "…"


async def post_message(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _error(TOO_LARGE, 413)
    try:
        body = json.loads(await request.read())
    except web.HTTPRequestEntityTooLarge:
        return _error(TOO_LARGE, 413)
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        return _error(BAD_JSON)
    if not isinstance(body, dict):
        return _error(BAD_JSON)
    missing = [f for f in ("chat", "sender", "text") if not isinstance(body.get(f), str)]
    if missing:
        return _error(MISSING.format(fields="、".join(missing)))
    chat = runtime.directory.chats.get(body["chat"])
    if chat is None:
        return _error(UNKNOWN_CHAT.format(chat=_shown(body["chat"])))
    if not body["text"].strip():
        return _error(EMPTY_TEXT)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 128:
        return _error(BAD_KEY)
    # With an Idempotency-Key a client's retry (after a timeout or a 503) cannot report twice.
    message = InboundMessage(
        platform=chat.platform, chat_id=chat.id, sender_id=body["sender"], text=body["text"],
        received_at=runtime.clock.now(), message_id=key,
    )
    # The same dispatch as the platform channels' (bot/channels/pipeline.py); the simulator names
    # configured chats and people itself, so the platform-id lookup is skipped.
    handled = await runtime.pipeline.dispatch(message)
    if handled.duplicate:
        return web.json_response({"replies": [], "duplicate": True}, dumps=_dumps)
    replies = handled.replies
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
        return _error(UNKNOWN_CHAT.format(chat=_shown(chat_id)))
    raw_after = request.query.get("after", "0")
    # Plain ASCII digits only (int() would take "+1", " 1", "1_0", "١"), within a BIGINT.
    if not (raw_after.isascii() and raw_after.isdigit() and len(raw_after) <= 19 and int(raw_after) <= MAX_SEQ):
        return _error(BAD_AFTER)
    after = int(raw_after)
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
BAD_HOST = "本地模拟通道只接受以本机名称（localhost、127.0.0.1 或 [::1]）访问的请求。"
CROSS_SITE = "本地模拟通道不接受来自其他网站的请求。"
MAX_SEQ = 2**63 - 1  # chat_messages.seq is a BIGINT


@web.middleware
async def loopback_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Keep the local channel to this machine unless the operator opened it on purpose."""
    if request.path.startswith(("/local/", "/sim")):
        runtime = request.app[RUNTIME]
        refusal = _refusal(request, remote_allowed=runtime.config.server.simulator_remote)
        if refusal is not None:
            reason, message = refusal
            runtime.metrics.simulator_refused.labels(reason=reason).inc()
            return _error(message, 403)
    return await handler(request)


def accepts(request: web.Request) -> bool:
    """Whether the simulator would serve this request (the home page links /sim only then)."""
    return _refusal(request, remote_allowed=request.app[RUNTIME].config.server.simulator_remote) is None


def _refusal(request: web.Request, *, remote_allowed: bool) -> tuple[str, str] | None:
    """(reason, message) when the request must be refused, else None."""
    host = request.headers.get("Host")
    if not remote_allowed:
        remote = request.remote or ""
        try:
            loopback = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            loopback = remote == ""  # a unix socket or an in-process test transport
        if not loopback:
            return "remote", FORBIDDEN
        # No Host at all is not a browser (browsers always send it); any other must name this machine.
        if host is not None and not _loopback_name(_hostname(host)):
            return "host", BAD_HOST
    origin = request.headers.get("Origin")
    if origin is not None and (host is None or _origin_host(origin) != _hostname(host, keep_port=True)):
        return "origin", CROSS_SITE
    return None


def _hostname(host: str, *, keep_port: bool = False) -> str:
    """The host of a Host header, lower-case; with keep_port, "host:port" as sent (for Origin)."""
    try:
        parts = urlsplit(f"//{host.strip()}")
        name = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        return "\x00invalid"  # matches no name and no Origin
    if ":" in name:
        name = f"[{name}]"
    return f"{name}:{port}" if keep_port and port is not None else name


def _origin_host(origin: str) -> str | None:
    """An Origin header's "host:port" (as a Host header would say it); None for "null" and junk."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return _hostname(parts.netloc, keep_port=True)


def _loopback_name(name: str) -> bool:
    """localhost, *.localhost (browsers resolve these to loopback themselves), or a loopback IP."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def setup(app: web.Application) -> None:
    app.middlewares.append(loopback_only)
    app.router.add_post("/local/messages", post_message)
    app.router.add_get("/local/messages", get_messages)
    app.router.add_get("/local/directory", get_directory)
    app.router.add_get("/sim", get_sim)
