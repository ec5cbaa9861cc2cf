"""A fake DingTalk on 127.0.0.1 that plays both sides of the protocol.

As DingTalk calling the bot: signed robot-message callbacks (its own HMAC code, independent of the
bot's), and a Stream gateway (open-connection POST + WebSocket) that pushes CALLBACK frames and
collects the acks.
As DingTalk receiving from the bot: the custom robot (`/robot/send`) and sessionWebhooks
(`/robot/sendBySession`). It checks what a real DingTalk checks — access_token, timestamp within an
hour, the sign recomputed from the secret (310000 otherwise), the 20,000-byte limit on the body —
plus what DingTalk silently gets wrong for you: an `at.atUserIds`/`atMobiles` entry without the
matching "@…" in the text (it would not notify anybody). Anything odd lands in `problems`.

Answers are configurable per request: queue `Answer`s for "robot" or "session".

Facts from /work/shared/protocols/PROTOCOLS.md sections C, D and H. The errcode for an oversized or
malformed body is not documented; the fake uses 460101 / 40035 (any non-zero code will do).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

from aiohttp import ClientResponse, WSMsgType, web
from aiohttp.test_utils import TestClient

from bot.clock import Clock
from domain.config import Config, DingtalkChannelConfig

DUTY_CONVERSATION = "cidQingHeDuty0000000000=="
ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
MAX_BODY = 20_000
HOUR_MS = 3_600_000
SESSION_LIFETIME_MS = 5_400_000  # ≈ 90 min, as in DingTalk's documented example
TOO_LONG = 460101
BAD_PARAMS = 40035


def dingtalk_sign(timestamp: str, secret: str) -> str:
    """DingTalk's construction, written out independently of bot/channels/dingtalk_sign.py."""
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)
    mac.update(timestamp.encode("utf-8"))
    mac.update(b"\n")
    mac.update(secret.encode("utf-8"))
    return base64.standard_b64encode(mac.digest()).decode("ascii")


def now_ms(clock: Clock) -> int:
    return round(clock.now().timestamp() * 1000)


def dingtalk_config(config: Config, **changes: Any) -> Config:
    """The example config with the dingtalk channel changed (e.g. mode="stream")."""
    channels = [
        c.model_copy(update=changes) if isinstance(c, DingtalkChannelConfig) else c for c in config.channels
    ]
    return config.model_copy(update={"channels": channels})


@dataclass
class Answer:
    errcode: int = 0
    errmsg: str = "ok"
    status: int = 200  # an HTTP error status (the body is then an error page)
    redirect: bool = False  # 302, as DingTalk reportedly does for throttled robots
    hang: bool = False  # never answer (until the fake closes): for client timeouts


@dataclass
class Post:
    """One request the bot made to the robot or a sessionWebhook, and what the fake answered."""

    kind: str  # "robot" or "session"
    query_string: str  # raw, as received
    params: dict[str, str]  # decoded once
    raw: bytes
    body: dict[str, Any] | None
    answer: dict[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None  # the fake's (the bot's injected) clock when it arrived

    @property
    def ok(self) -> bool:
        return self.answer.get("errcode") == 0

    @property
    def text(self) -> str:
        body = self.body or {}
        if body.get("msgtype") == "markdown":
            return str(body["markdown"]["text"])
        return str(body.get("text", {}).get("content", ""))

    @property
    def at(self) -> dict[str, Any] | None:
        at = (self.body or {}).get("at")
        return at if isinstance(at, dict) else None


class FakeDingTalk:
    def __init__(
        self, clock: Clock, *, app_key: str = "dingfakeappkey0001", app_secret: str = "fake-app-secret-Zx81",
        access_token: str = "fa4e0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7",
        robot_secret: str = "SECfake0123456789abcdef0123456789abcdef0123456789abcdef012345",
    ) -> None:
        self.clock = clock
        self.app_key = app_key
        self.app_secret = app_secret
        self.access_token = access_token
        self.robot_secret = robot_secret
        self.posts: list[Post] = []
        self.problems: list[str] = []
        self.answers: dict[str, deque[Answer]] = {"robot": deque(), "session": deque()}
        self.sessions: set[str] = set()
        self.opened: list[dict[str, Any]] = []  # open-connection requests (Stream)
        self.acks: list[dict[str, Any]] = []
        self.ticket = "tk/1+2=3"  # characters that must be URL-encoded in the WebSocket URL
        self.connected = asyncio.Event()
        self.open_requested = asyncio.Event()
        self.connections: asyncio.Queue[int] = asyncio.Queue()  # one entry per WebSocket accepted
        self._connection_count = 0
        self._ids = itertools.count(1)
        self._socket: web.WebSocketResponse | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDingTalk:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/robot/send", self._robot)
        app.router.add_post("/robot/sendBySession", self._session)
        app.router.add_post("/v1.0/gateway/connections/open", self._open_connection)
        app.router.add_get("/gateway/ws", self._websocket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        if self._socket is not None:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook(self) -> str:
        return f"{self.base_url}/robot/send?access_token={self.access_token}"

    def environ(self, *, mode: str = "http", **overrides: str) -> dict[str, str]:
        env = {
            "DUTYBOT_DINGTALK_APP_SECRET": self.app_secret,
            "DUTYBOT_DINGTALK_WEBHOOK": self.webhook,
            "DUTYBOT_DINGTALK_SECRET": self.robot_secret,
        }
        if mode == "stream":
            env["DUTYBOT_DINGTALK_APP_KEY"] = self.app_key
            env["DINGTALK_OPENAPI_ENDPOINT"] = self.base_url
        env.update(overrides)
        return env

    def answer(self, kind: str, *answers: Answer) -> None:
        self.answers[kind].extend(answers)

    def posts_of(self, kind: str) -> list[Post]:
        return [p for p in self.posts if p.kind == kind]

    # -- DingTalk → bot: callbacks -------------------------------------------------------------------------

    def message(
        self, text: str, *, staff_id: str | None = "dt_sunli", conversation_id: str = DUTY_CONVERSATION,
        msg_id: str | None = None, expires_in_ms: int = SESSION_LIFETIME_MS, msgtype: str = "text",
        conversation_type: str = "2",
    ) -> dict[str, Any]:
        """A robot message as DingTalk sends it (HTTP body or Stream `data`), with a fresh session."""
        number = next(self._ids)
        session = f"sess{number:06d}"
        self.sessions.add(session)
        created = now_ms(self.clock)
        message: dict[str, Any] = {
            "msgtype": msgtype,
            "msgId": msg_id or f"msgFAKE{number:08d}",
            "createAt": created,
            "conversationType": conversation_type,  # "1" single chat, "2" group
            "conversationId": conversation_id,
            "conversationTitle": "清河县舆情值班群",
            "senderId": f"$:LWCP_v1:$fake{number}",
            "senderNick": "测试用户",
            "senderCorpId": "dingcorpfake",
            "chatbotCorpId": "dingcorpfake",
            "chatbotUserId": "$:LWCP_v1:$bot",
            "robotCode": self.app_key,
            "isAdmin": False,
            "isInAtList": True,
            "sessionWebhook": f"{self.base_url}/robot/sendBySession?session={session}",
            "sessionWebhookExpiredTime": created + expires_in_ms,
        }
        if staff_id is not None:
            message["senderStaffId"] = staff_id
        if msgtype == "text":
            message["text"] = {"content": f" {text}"}  # DingTalk keeps a space where the @ was
        elif msgtype == "richText":
            message["content"] = {"richText": [{"text": text}]}
        return message

    def headers(self, *, timestamp: int | str | None = None, secret: str | None = None) -> dict[str, str]:
        stamp = str(now_ms(self.clock) if timestamp is None else timestamp)
        return {"timestamp": stamp, "sign": dingtalk_sign(stamp, self.app_secret if secret is None else secret)}

    async def call(
        self, client: TestClient[web.Request, web.Application], message: Mapping[str, Any] | bytes, *,
        headers: Mapping[str, str] | None = None, channel: str = "dingtalk",
    ) -> ClientResponse:
        """POST a robot message to the bot's callback, signed now unless headers are given."""
        body = message if isinstance(message, bytes) else json.dumps(message, ensure_ascii=False).encode()
        sent = {"Content-Type": "application/json; charset=utf-8", **(self.headers() if headers is None else headers)}
        return await client.post(f"/callback/dingtalk/{channel}", data=body, headers=sent)

    # -- bot → DingTalk: the custom robot and sessionWebhooks --------------------------------------------------

    async def _robot(self, request: web.Request) -> web.StreamResponse:
        post = await self._record("robot", request)
        errcode, errmsg = self._check_robot_query(post)
        if errcode == 0:
            errcode, errmsg = self._check_body(post)
        return await self._reply(post, errcode, errmsg)

    async def _session(self, request: web.Request) -> web.StreamResponse:
        post = await self._record("session", request)
        errcode, errmsg = 0, "ok"
        if "sign" in post.params or "timestamp" in post.params:
            self.problems.append("a sessionWebhook post carried timestamp/sign")
        if post.params.get("session") not in self.sessions:
            errcode, errmsg = 300001, "session is not exist"
        if errcode == 0:
            errcode, errmsg = self._check_body(post)
        return await self._reply(post, errcode, errmsg)

    async def _record(self, kind: str, request: web.Request) -> Post:
        raw = await request.read()
        params = {k: v[0] for k, v in parse_qs(request.query_string, keep_blank_values=True).items()}
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        post = Post(kind, request.query_string, params, raw, body if isinstance(body, dict) else None,
                    received_at=self.clock.now())
        self.posts.append(post)
        if not request.content_type.startswith("application/json"):
            self.problems.append(f"{kind} post with Content-Type {request.content_type}")
        return post

    def _check_robot_query(self, post: Post) -> tuple[int, str]:
        if post.params.get("access_token") != self.access_token:
            return 300001, "token is not exist"
        stamp, signature = post.params.get("timestamp"), post.params.get("sign")
        if stamp is None or signature is None:
            return 310000, "sign not match, more: [https://open.dingtalk.com/document/robots/customize-robot-security-settings]"
        if not stamp.isdigit() or abs(int(stamp) - now_ms(self.clock)) > HOUR_MS:
            return 310000, "invalid timestamp"
        if not hmac.compare_digest(signature, dingtalk_sign(stamp, self.robot_secret)):
            return 310000, "sign not match"
        return 0, "ok"

    def _check_body(self, post: Post) -> tuple[int, str]:
        if len(post.raw) > MAX_BODY:
            self.problems.append(f"{post.kind} body of {len(post.raw)} bytes (limit {MAX_BODY})")
            return TOO_LONG, f"body 大小不合法，不能超过 {MAX_BODY}bytes"
        problem = _shape_problem(post.body)
        if problem is not None:
            self.problems.append(f"{post.kind} body: {problem}")
            return BAD_PARAMS, problem
        at = post.at or {}
        for key in ("atUserIds", "atMobiles"):
            for who in at.get(key, []):
                if f"@{who}" not in post.text:
                    self.problems.append(f"{key} has {who} but the text has no @{who}")
        return 0, "ok"

    async def _reply(self, post: Post, errcode: int, errmsg: str) -> web.StreamResponse:
        queued = self.answers[post.kind].popleft() if errcode == 0 and self.answers[post.kind] else None
        if queued is not None and queued.hang:
            await self._closing.wait()
        if queued is not None and queued.redirect:
            post.answer = {"status": 302}
            raise web.HTTPFound("https://www.dingtalk.com/")
        if queued is not None and queued.status != 200:
            post.answer = {"status": queued.status}
            return web.Response(status=queued.status, text="<html>server error</html>", content_type="text/html")
        if queued is not None:
            errcode, errmsg = queued.errcode, queued.errmsg
        post.answer = {"errcode": errcode, "errmsg": errmsg}
        return web.json_response(post.answer)  # DingTalk answers HTTP 200 even for errors

    # -- Stream gateway ---------------------------------------------------------------------------------------------

    async def _open_connection(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.opened.append(body)
        self.open_requested.set()
        if body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
            return web.json_response({"code": "InvalidAuthentication", "message": "鉴权失败"}, status=401)
        topics = [s.get("topic") for s in body.get("subscriptions", [])]
        if ROBOT_TOPIC not in topics:
            self.problems.append(f"stream subscriptions without {ROBOT_TOPIC}: {topics}")
        return web.json_response({"endpoint": f"ws://127.0.0.1:{self.port}/gateway/ws", "ticket": self.ticket})

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") != self.ticket:
            self.problems.append(f"websocket ticket {request.query.get('ticket')!r}")
            raise web.HTTPForbidden()
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._socket = socket
        self._connection_count += 1
        self.connections.put_nowait(self._connection_count)
        self.connected.set()
        async for frame in socket:
            if frame.type != WSMsgType.TEXT:
                continue
            ack = json.loads(frame.data)
            self.acks.append(ack)
            waiter = self._waiting.pop(ack.get("headers", {}).get("messageId", ""), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(ack)
        if self._socket is socket:
            self._socket = None
            self.connected.clear()
        return socket

    async def wait_connected(self, within: float = 10) -> int:
        """Wait for the next WebSocket the bot opens; returns its number (1 for the first)."""
        return await asyncio.wait_for(self.connections.get(), within)

    async def push(
        self, data: Mapping[str, Any] | str, *, kind: str = "CALLBACK", topic: str = ROBOT_TOPIC, within: float = 10
    ) -> dict[str, Any]:
        """Send one frame and wait for its ack (not a sleep: it returns as soon as the ack arrives)."""
        assert self._socket is not None, "the bot has not connected"
        message_id = f"frame-{next(self._ids)}"
        frame = {
            "specVersion": "1.0",
            "type": kind,
            "headers": {
                "appId": "fake-app", "connectionId": "conn-1", "contentType": "application/json",
                "messageId": message_id, "time": str(now_ms(self.clock)), "topic": topic,
            },
            "data": data if isinstance(data, str) else json.dumps(data, ensure_ascii=False),
        }
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = waiter
        await self._socket.send_str(json.dumps(frame, ensure_ascii=False))
        return await asyncio.wait_for(waiter, within)


def _shape_problem(body: dict[str, Any] | None) -> str | None:
    """What DingTalk would reject in a text/markdown robot body, or None."""
    if body is None:
        return "not a JSON object"
    kind = body.get("msgtype")
    if kind == "text":
        if not isinstance(body.get("text"), dict) or not isinstance(body["text"].get("content"), str):
            return "text.content missing"
    elif kind == "markdown":
        markdown = body.get("markdown")
        if not isinstance(markdown, dict) or not all(isinstance(markdown.get(k), str) for k in ("title", "text")):
            return "markdown.title/text missing"
    else:
        return f"unexpected msgtype {kind!r}"
    at = body.get("at")
    if at is not None:
        if not isinstance(at, dict) or set(at) - {"atMobiles", "atUserIds", "isAtAll"}:
            return f"bad at object {at!r}"
        if not all(isinstance(at.get(k, []), list) for k in ("atMobiles", "atUserIds")):
            return "at lists are not lists"
        if at.get("isAtAll", False) is not False:
            return "isAtAll must stay false"
    return None
