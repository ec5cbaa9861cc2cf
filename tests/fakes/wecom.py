"""A fake WeCom that plays both sides of the contract.

- As the sender of callbacks (WecomClient): it builds signed, encrypted AI-bot (JSON) and
  self-built app (XML) callbacks, with its own implementation of the crypto (cryptography's
  PKCS7(256) padder, hashlib) so the bot's module is not tested against itself; the tests check
  this implementation against the published vectors too.
- As the receiver of the bot's posts (FakeWecom): an aiohttp server on 127.0.0.1 serving
  /cgi-bin/webhook/send?key=… (group robot) and /cgi-bin/aibot/response?response_code=…
  (response_url). It records every post, checks its shape and byte limits the way WeCom does
  (answering with the real error codes), and can be told what to answer next.

WecomBot ties the fake to a running bot (tests.conftest.start_bot) for scenario tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import func, select

from bot.clock import ManualClock
from domain.config import Config
from tests.conftest import Bot, start_bot

# The published key pair of the official sample (PROTOCOLS.md G.1 / G.3), AI bot: receive id "".
TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
DUTY_KEY = "duty-robot-key-0001"
COORD_KEY = "coord-robot-key-0002"
OPS_KEY = "ops-robot-key-0003"  # the ops chat's own robot (not in `keys` unless a test adds it)
DUTY_CHATID = "wrkSFfCgAAqinghe0000duty"
COORD_CHATID = "wrkSFfCgAAqinghe0000coord"
VECTORS_FILE = Path(__file__).resolve().parents[3] / "shared" / "protocols" / "test_vectors.json"
TEXT_LIMIT = 2048
MARKDOWN_LIMIT = 4096
REPLY_LIMIT = 20480
# What a used or unknown response_code answers is not documented in our notes; any non-zero code.
REPLY_CODE_USED = 40014


def errmsg(code: int) -> str:
    """Real errmsg strings carry a hint and a help URL; the bot must keep URLs out of its records."""
    text = {0: "ok", 93000: "invalid webhook url", 45009: "api freq out of limit", 40058: "content exceed max length",
            44004: "empty content", 40008: "invalid message type", -1: "system busy"}.get(code, "error")
    if code == 0:
        return text
    return f"{text}, hint: [1700000000_1_abc], from ip: 10.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e={code}"


def load_vectors() -> list[dict[str, Any]]:
    """The "wecom" list of ../shared/protocols/test_vectors.json (published and computed vectors)."""
    vectors: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["wecom"]
    return vectors


# -- the callback side: an independent implementation of the crypto --------------------------------


class WecomClient:
    """Signs and encrypts callbacks the way WeCom does (written apart from bot.channels.wecom_crypto)."""

    def __init__(self, token: str = TOKEN, encoding_aes_key: str = AES_KEY, receive_id: str = "") -> None:
        self.token = token
        self.key = base64.b64decode(encoding_aes_key + "=")
        assert len(self.key) == 32
        self.receive_id = receive_id
        self._nonces = itertools.count(100000)

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return hashlib.sha1("".join(sorted((self.token, timestamp, nonce, encrypt))).encode()).hexdigest()

    def encrypt(self, message: bytes, random16: bytes | None = None, receive_id: str | None = None,
                key: bytes | None = None) -> str:
        rid = (self.receive_id if receive_id is None else receive_id).encode()
        plain = (random16 or os.urandom(16)) + len(message).to_bytes(4, "big") + message + rid
        padder = padding.PKCS7(256).padder()  # 256 bits: WeCom pads to 32-byte blocks
        padded = padder.update(plain) + padder.finalize()
        aes_key = key or self.key
        encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(aes_key[:16])).encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()

    def decrypt(self, encrypt: str) -> tuple[bytes, str, int]:
        """(message, receive id, pad length) — for checking vectors and the bot's passive replies."""
        raw = base64.b64decode(encrypt)
        decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
        padded = decryptor.update(raw) + decryptor.finalize()
        pad = padded[-1]
        unpadder = padding.PKCS7(256).unpadder()
        plain = unpadder.update(padded) + unpadder.finalize()
        length = int.from_bytes(plain[16:20], "big")
        return plain[20 : 20 + length], plain[20 + length :].decode(), pad

    def nonce(self) -> str:
        return str(next(self._nonces))

    def query(self, encrypt: str, timestamp: int | str, nonce: str | None = None, signature: str | None = None,
              **extra: str) -> str:
        """The callback's query string, percent-encoded as WeCom sends it."""
        nonce = nonce or self.nonce()
        params = {
            "msg_signature": signature or self.sign(str(timestamp), nonce, encrypt),
            "timestamp": str(timestamp),
            "nonce": nonce,
            **extra,
        }
        return urlencode(params)

    def verify_url(self, echo: str, timestamp: int | str) -> str:
        encrypt = self.encrypt(echo.encode())
        return self.query(encrypt, timestamp, echostr=encrypt)

    def json_callback(self, payload: dict[str, Any], timestamp: int | str, **options: Any) -> tuple[str, bytes]:
        encrypt = self.encrypt(json.dumps(payload, ensure_ascii=False).encode(), **options)
        return self.query(encrypt, timestamp), json.dumps({"encrypt": encrypt}).encode()

    def xml_callback(self, plaintext: bytes, timestamp: int | str, **options: Any) -> tuple[str, bytes]:
        encrypt = self.encrypt(plaintext, **options)
        body = (f"<xml><ToUserName><![CDATA[{self.receive_id}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>")
        return self.query(encrypt, timestamp), body.encode()


def aibot_message(*, msgid: str, userid: str, text: str | None = None, chatid: str | None = DUTY_CHATID,
                  response_url: str | None = None, msgtype: str = "text", **extra: Any) -> dict[str, Any]:
    """An AI bot message as WeCom sends it (PROTOCOLS.md B.3)."""
    payload: dict[str, Any] = {"msgid": msgid, "aibotid": "AIBOTID", "chattype": "group" if chatid else "single",
                               "from": {"userid": userid}, "msgtype": msgtype}
    if chatid:
        payload["chatid"] = chatid
    if response_url:
        payload["response_url"] = response_url
    if msgtype == "text":
        payload["text"] = {"content": text}
    payload.update(extra)
    return payload


def app_text_xml(user: str, content: str, msgid: str = "1234567890123456", corp_id: str = "ww1436e0e65a779aee",
                 timestamp: int = 1700000000) -> bytes:
    return (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msgid}</MsgId><AgentID>1000002</AgentID></xml>").encode()


# -- the receiving side: webhook and response_url ---------------------------------------------------


@dataclass(frozen=True)
class Answer:
    errcode: int = 0
    http_status: int = 200


@dataclass
class Post:
    kind: str  # "webhook" or "reply"
    target: str  # the webhook key or the response_code
    body: dict[str, Any]
    answer: Answer
    received_at: datetime | None = None  # the injected clock when it arrived (FakeWecom(now=…))
    monotonic: float = 0.0  # the event loop's time when it arrived

    @property
    def msgtype(self) -> str:
        return str(self.body.get("msgtype"))

    @property
    def content(self) -> str:
        return str(self.body.get(self.msgtype, {}).get("content", ""))

    @property
    def mentioned_list(self) -> list[str]:
        return list(self.body.get("text", {}).get("mentioned_list", []))

    @property
    def mentioned_mobile_list(self) -> list[str]:
        return list(self.body.get("text", {}).get("mentioned_mobile_list", []))


@dataclass
class FakeWecom:
    keys: set[str] = field(default_factory=lambda: {DUTY_KEY, COORD_KEY})
    posts: list[Post] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # contract violations seen in the bot's posts
    fetches: list[str] = field(default_factory=list)  # any GET (e.g. an external DTD a parser tried to load)
    _next: dict[str, deque[Answer]] = field(default_factory=lambda: defaultdict(deque))
    _used_codes: set[str] = field(default_factory=set)
    _server: TestServer | None = None
    # The bot's clock, to stamp each post with (for counting posts per window as the platform does).
    now: Callable[[], datetime] | None = None
    # Webhook key → seconds a post to it is held before its answer (a robot that hangs); the post
    # is recorded on arrival, and close() lets any held answer go.
    hang: dict[str, float] = field(default_factory=dict)
    _arrival: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/cgi-bin/webhook/send", self._webhook)
        app.router.add_post("/cgi-bin/aibot/response", self._reply)
        app.router.add_get("/{tail:.*}", self._fetch)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()

    async def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            await self._server.close()

    async def wait_until(self, check: Callable[[], bool], within: float = 30) -> None:
        """Wait (bounded, on the loop's time) until `check()` holds; re-checked at every post."""
        async with asyncio.timeout(within):
            while not check():
                self._arrival.clear()
                await self._arrival.wait()

    def _base(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.port}"

    def webhook_url(self, key: str) -> str:
        return f"{self._base()}/cgi-bin/webhook/send?key={key}"

    def response_url(self, code: str) -> str:
        return f"{self._base()}/cgi-bin/aibot/response?response_code={code}"

    def answer_next(self, target: str, *answers: Answer | int) -> None:
        """What the next posts to this key / response_code get (then errcode 0 again)."""
        for answer in answers:
            self._next[target].append(answer if isinstance(answer, Answer) else Answer(errcode=answer))

    def webhook_posts(self, key: str = DUTY_KEY) -> list[Post]:
        return [p for p in self.posts if p.kind == "webhook" and p.target == key]

    def reply_posts(self, code: str | None = None) -> list[Post]:
        return [p for p in self.posts if p.kind == "reply" and (code is None or p.target == code)]

    def delivered(self, kind: str, target: str) -> list[Post]:
        return [p for p in self.posts if p.kind == kind and p.target == target and p.answer == Answer()]

    async def _fetch(self, request: web.Request) -> web.Response:
        self.fetches.append(request.path_qs)
        return web.Response(text='<!ENTITY leak "fetched">')

    def base_url(self) -> str:
        return self._base()

    async def _read(self, request: web.Request) -> dict[str, Any] | None:
        if request.content_type != "application/json":
            self.problems.append(f"Content-Type {request.content_type}")
        try:
            body = json.loads(await request.read())
        except ValueError:
            self.problems.append("body is not JSON")
            return None
        return body if isinstance(body, dict) else None

    async def _webhook(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        body = await self._read(request)
        code = 93000 if key not in self.keys else self._check_webhook(body)
        response = self._answer("webhook", key, body or {}, code)
        if self.hang.get(key):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.hang[key])
        return response

    def _check_webhook(self, body: dict[str, Any] | None) -> int:
        if body is None:
            return 40008
        msgtype = body.get("msgtype")
        content = body.get(str(msgtype), {}).get("content") if isinstance(body.get(str(msgtype)), dict) else None
        if msgtype not in ("text", "markdown", "markdown_v2") or not isinstance(content, str):
            self.problems.append(f"unexpected message type {msgtype!r}")
            return 40008
        if not content.strip():
            self.problems.append("empty content")
            return 44004
        limit = TEXT_LIMIT if msgtype == "text" else MARKDOWN_LIMIT
        if len(content.encode()) > limit:
            self.problems.append(f"{msgtype} content of {len(content.encode())} bytes")
            return 40058
        if msgtype == "markdown_v2" and "<@" in content:
            self.problems.append("markdown_v2 cannot @-mention")
        if msgtype != "text" and ("mentioned_list" in body[msgtype] or "mentioned_mobile_list" in body[msgtype]):
            self.problems.append("mentioned_list is ignored outside text")
        return 0

    async def _reply(self, request: web.Request) -> web.Response:
        code_param = request.query.get("response_code", "")
        body = await self._read(request) or {}
        content = body.get("markdown", {}).get("content") if body.get("msgtype") == "markdown" else None
        if not isinstance(content, str):
            self.problems.append(f"response_url post is not markdown: {body.get('msgtype')!r}")
            return self._answer("reply", code_param, body, 40008)
        if len(content.encode()) > REPLY_LIMIT:
            self.problems.append("response_url content over 20480 bytes")
            return self._answer("reply", code_param, body, 40058)
        if code_param in self._used_codes:  # usable once
            return self._answer("reply", code_param, body, REPLY_CODE_USED)
        response = self._answer("reply", code_param, body, 0)
        if self.posts[-1].answer == Answer():
            self._used_codes.add(code_param)
        return response

    def _answer(self, kind: str, target: str, body: dict[str, Any], code: int) -> web.Response:
        answer = Answer(errcode=code)
        if code == 0 and self._next[target]:
            answer = self._next[target].popleft()
        self.posts.append(Post(kind, target, body, answer, self.now() if self.now is not None else None,
                               asyncio.get_running_loop().time()))
        self._arrival.set()
        if answer.http_status != 200:
            return web.Response(status=answer.http_status, text="internal error")
        return web.json_response({"errcode": answer.errcode, "errmsg": errmsg(answer.errcode)})


# -- the bot and the fake together ------------------------------------------------------------------


def wecom_environ(fake: FakeWecom, **overrides: str) -> dict[str, str]:
    environ = {
        "DUTYBOT_WECOM_TOKEN": TOKEN,
        "DUTYBOT_WECOM_AES_KEY": AES_KEY,
        "DUTYBOT_WECOM_WEBHOOK": fake.webhook_url(DUTY_KEY),
        "DUTYBOT_WECOM_COORD_WEBHOOK": fake.webhook_url(COORD_KEY),
    }
    environ.update(overrides)
    return {name: value for name, value in environ.items() if value}


@dataclass
class WecomBot:
    bot: Bot
    fake: FakeWecom
    wecom: WecomClient
    path: str = "/callback/wecom/wecom"
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def clock(self) -> ManualClock:
        return self.bot.clock

    def timestamp(self) -> int:
        return int(self.clock.now().timestamp())

    def next_id(self) -> int:
        return next(self._ids)

    async def post(self, query: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
        response = await self.bot.client.post(f"{self.path}?{query}", data=body,
                                              headers={"Content-Type": content_type})
        return response.status, await response.text()

    async def say(self, userid: str, text: str, *, chatid: str | None = DUTY_CHATID, msgid: str | None = None,
                  response_code: str | None = None, **extra: Any) -> tuple[int, str, str]:
        """A user @-mentions the bot; returns (status, body, response_code)."""
        number = self.next_id()
        code = response_code or f"RC{number:06d}"
        payload = aibot_message(msgid=msgid or f"MSG{number:06d}", userid=userid, text=f"@值班助手 {text}",
                                chatid=chatid, response_url=self.fake.response_url(code), **extra)
        query, body = self.wecom.json_callback(payload, self.timestamp())
        status, answer = await self.post(query, body)
        return status, answer, code

    async def deliver(self) -> None:
        """Let the outbox finish what the callbacks kicked off, then deliver anything else due."""
        await self.bot.runtime.outbox.drain()
        while await self.bot.runtime.outbox.run_once():
            pass

    async def count(self, model: type) -> int:
        async with self.bot.runtime.db.read() as session:
            return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


@asynccontextmanager
async def running(
    config: Config, clock: ManualClock, *, robots: Mapping[str, str] | None = None, **env: str
) -> AsyncIterator[WecomBot]:
    """A started fake WeCom and a bot whose wecom channel points at it. `robots`: more group
    robots, environment variable → key (e.g. the ops chat's own robot)."""
    fake = FakeWecom()
    await fake.start()
    extra = dict(robots or {})
    fake.keys |= set(extra.values())
    try:
        client = await start_bot(config, clock, wecom_environ(fake, **{name: fake.webhook_url(key)
                                                                       for name, key in extra.items()}, **env))
        try:
            yield WecomBot(Bot(client, clock, config), fake, WecomClient())
        finally:
            await client.close()
    finally:
        await fake.close()
