"""DingTalk: the enterprise-internal app robot receives, the custom robot (加签) sends.

Receive, HTTP callback mode: POST /callback/dingtalk/<channel id>
    Content-Length checked, then the `timestamp`/`sign` headers (HMAC of the AppSecret, clock
    skew at most max_skew_seconds), and only then the body is read and parsed: 413 / 401 / 400.
    A message from a configured chat and person becomes an InboundMessage; the handler records it
    (de-duplicated by msgId in the database) and queues the replies; the outbox is kicked and the
    callback answers 200 `{}` without waiting for delivery.
Receive, Stream mode: the same parsing and handling, fed by bot/channels/dingtalk_stream.py.
Send: one DingtalkSender per chat. A reply goes to the message's sessionWebhook while it is valid,
    everything else to the custom robot webhook with timestamp+sign. Success is errcode 0 only.

Secrets (AppSecret, webhook access_token, 加签 secret, signatures, session URLs) never reach logs
or delivery details.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web
from yarl import URL

from bot.channels.base import Channel, ChannelStartError, Check, DeliveryResult, Sender, read_secrets
from bot.channels.dingtalk_sign import epoch_ms, from_epoch_ms, signed_webhook_url, verify_callback
from bot.channels.dingtalk_stream import StreamReceiver, gateway_endpoint, load_sdk
from bot.config import ChatConfig, DingtalkChannelConfig
from bot.directory import Directory
from bot.messages import InboundMessage, OutboundMessage, Reply
from bot.runtime import Runtime
from bot.vocab import Platform

log = logging.getLogger(__name__)

MAX_CALLBACK_BODY = 64 * 1024  # the app's client_max_size; checked early from Content-Length
MAX_POST_BODY = 20_000  # DingTalk's limit on a robot post, in bytes of the serialized JSON
# Do not start a post on a sessionWebhook that expires within this margin: use the robot instead.
SESSION_MARGIN = timedelta(seconds=30)
SESSION_PATH = "/robot/sendBySession"
TITLE_CHARS = 20

# errcodes: 130101 "send too fast" (20 posts/min, then blocked 10 min); -1 "system busy".
RETRYABLE_CODES = frozenset({130101, -1})
# 310000 sign/keywords/IP check failed; 300001/300005 token does not exist.
CONFIG_CODES = frozenset({310000, 300001, 300005})

# -- user-facing text ------------------------------------------------------------------------------

BAD_WEBHOOK = (
    "通道 {channel} 的环境变量 {env} 不是有效的钉钉自定义机器人地址：应为 http(s) 地址并带 access_token 参数，"
    "如 https://oapi.dingtalk.com/robot/send?access_token=…。"
)
BAD_SECRET = (
    "通道 {channel} 的环境变量 {env} 不是有效的加签密钥：应以 SEC 开头（在自定义机器人的安全设置中选择“加签”后复制）。"
)
CHAT_WEBHOOK_MISSING = (
    "群聊 {chat} 指定了 webhook 环境变量 {env}，但该变量未设置。请设置该变量，"
    "或删除该群的 webhook_env 配置以使用通道 {channel} 的机器人。"
)
CHECK_HTTP = (
    "{channel}：AppSecret、自定义机器人、加签密钥已配置（HTTP 回调模式，回调地址 /callback/dingtalk/{channel}）"
)
CHECK_STREAM = "{channel}：AppKey、AppSecret、自定义机器人、加签密钥已配置（Stream 模式，dingtalk-stream {version}）"
CHECK_CHAT_OWN = "{channel}：群“{chat}”使用本群的自定义机器人（{env}）"
CHECK_CHAT_SHARED = "{channel}：群“{chat}”使用通道的自定义机器人（{env}）"
CHECK_NO_CHAT_ID = "{channel}：群“{chat}”未设置 platform_chat_id（钉钉 conversationId），无法识别该群发来的消息"
REFUSED = "签名无效或时间戳超出允许范围。"
TOO_LARGE = "请求体过大（上限 64 KiB）。"
BAD_BODY = "请求体不是有效的钉钉机器人消息。"
DEFAULT_TITLE = "值班助手通知"


# -- inbound: parsing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RobotMessage:
    """The fields of a robot message (HTTP callback body or Stream `data`) that the bot uses."""

    msg_id: str
    text: str
    conversation_id: str
    conversation_type: str  # "1" single chat, "2" group
    staff_id: str | None  # senderStaffId: the userId, present for members of the robot's org
    session_webhook: str | None
    session_expires_at: datetime | None


def _string(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _epoch_ms_value(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
        return int(value)
    return None


def _message_text(msgtype: str, data: Mapping[str, Any]) -> str | None:
    """text → text.content; richText → its text parts; other types → "" (None: malformed)."""
    if msgtype == "text":
        text = data.get("text")
        content = text.get("content") if isinstance(text, Mapping) else None
        return content.strip() if isinstance(content, str) else None
    if msgtype == "richText":
        content = data.get("content")
        parts = content.get("richText") if isinstance(content, Mapping) else None
        if not isinstance(parts, list):
            return None
        texts = [p["text"] for p in parts if isinstance(p, Mapping) and isinstance(p.get("text"), str)]
        return "".join(texts).strip()
    return ""  # pictures, files, audio: recorded as an empty message


def parse_robot_message(data: object) -> RobotMessage | None:
    """A robot message dict → RobotMessage, or None when required fields are missing or mistyped."""
    if not isinstance(data, Mapping):
        return None
    msg_id, conversation = _string(data, "msgId"), _string(data, "conversationId")
    msgtype = _string(data, "msgtype")
    if msg_id is None or conversation is None or msgtype is None:
        return None
    text = _message_text(msgtype, data)
    if text is None:
        return None
    expires_ms = _epoch_ms_value(data.get("sessionWebhookExpiredTime"))
    session = _string(data, "sessionWebhook")
    return RobotMessage(
        msg_id=msg_id, text=text, conversation_id=conversation,
        conversation_type=_string(data, "conversationType") or "",
        staff_id=_string(data, "senderStaffId"),
        # A reply URL without a known lifetime is not used.
        session_webhook=session if expires_ms is not None else None,
        session_expires_at=from_epoch_ms(expires_ms) if session and expires_ms is not None else None,
    )


# -- outbound: bodies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mentions:
    """How the mentioned people appear: @-tokens in the text, and the `at` object's lists."""

    tokens: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    mobiles: tuple[str, ...] = ()


def resolve_mentions(person_ids: Sequence[str], directory: Directory) -> Mentions:
    """userId when known, else mobile; a person with neither is still named (not notified)."""
    tokens: list[str] = []
    user_ids: list[str] = []
    mobiles: list[str] = []
    for person_id in dict.fromkeys(person_ids):
        person = directory.people.get(person_id)
        if person is not None and person.dingtalk_userid:
            user_ids.append(person.dingtalk_userid)
            tokens.append(f"@{person.dingtalk_userid}")
        elif person is not None and person.mobile:
            mobiles.append(person.mobile)
            tokens.append(f"@{person.mobile}")
        else:
            tokens.append(f"@{person.name if person is not None else person_id}")
    return Mentions(tuple(tokens), tuple(user_ids), tuple(mobiles))


def serialize(body: Mapping[str, Any]) -> bytes:
    """The exact bytes posted; the 20,000-byte limit is measured on these."""
    return json.dumps(body, ensure_ascii=False).encode()


def _escaped_size(text: str) -> int:
    """Bytes `text` takes inside the serialized JSON (escaping is per character, so sizes add up)."""
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


@dataclass(frozen=True)
class _Piece:
    text: str
    size: int
    continues: bool  # the rest of a line cut in pieces: no line break before it


class BodyBuilder:
    """Builds the posts for one message: split on line boundaries so that every serialized body
    stays within the limit, with the `at` object and the @-tokens on the last post."""

    def __init__(self, message_format: str, limit: int = MAX_POST_BODY) -> None:
        self.markdown = message_format == "markdown"
        # DingTalk markdown ignores single line breaks; "  \n" is a hard break.
        self.joiner = "  \n" if self.markdown else "\n"
        self.limit = limit

    def bodies(self, text: str, mentions: Mentions) -> list[dict[str, Any]]:
        title = _title(text)
        tail = " ".join(mentions.tokens)
        at = {"atMobiles": list(mentions.mobiles), "atUserIds": list(mentions.user_ids), "isAtAll": False}
        budget = self.limit - len(serialize(self._body("", title, None)))
        last_budget = self.limit - len(serialize(self._body("", title, at)))
        if tail:
            last_budget -= _escaped_size(self.joiner + tail)
        pieces = self._pieces(text, min(budget, last_budget))
        parts = self._pack(pieces, budget, last_budget)
        bodies = [self._body(part, title, None) for part in parts[:-1]]
        last = parts[-1]
        if tail:
            last = f"{last}{self.joiner}{tail}" if last else tail
        bodies.append(self._body(last, title, at))
        return bodies

    def _body(self, text: str, title: str, at: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any]
        if self.markdown:
            body = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        else:
            body = {"msgtype": "text", "text": {"content": text}}
        if at is not None:
            body["at"] = at
        return body

    def _pieces(self, text: str, limit: int) -> list[_Piece]:
        """The lines of the text; a line longer than a whole post is cut into pieces."""
        pieces: list[_Piece] = []
        for line in text.split("\n"):
            size = _escaped_size(line)
            if size <= limit:
                pieces.append(_Piece(line, size, False))
                continue
            chunk, chunk_size, first = "", 0, True
            for char in line:
                char_size = _escaped_size(char)
                if chunk and chunk_size + char_size > limit:
                    pieces.append(_Piece(chunk, chunk_size, not first))
                    chunk, chunk_size, first = "", 0, False
                chunk += char
                chunk_size += char_size
            pieces.append(_Piece(chunk, chunk_size, not first))
        return pieces

    def _pack(self, pieces: list[_Piece], budget: int, last_budget: int) -> list[str]:
        """Fill parts from the end, so that the last one (which carries the mentions) gets its
        smaller budget and the earlier ones are as full as possible."""
        joiner_size = _escaped_size(self.joiner)
        parts: list[list[_Piece]] = []
        current: list[_Piece] = []
        size, capacity = 0, last_budget
        for piece in reversed(pieces):
            glue = joiner_size if current and not current[0].continues else 0
            if current and size + glue + piece.size > capacity:
                parts.append(current)
                current, size, capacity, glue = [], 0, budget, 0
            current.insert(0, piece)
            size += glue + piece.size
        parts.append(current)
        return [self._join(part) for part in reversed(parts)]

    def _join(self, part: list[_Piece]) -> str:
        text = part[0].text if part else ""
        for piece in part[1:]:
            text += piece.text if piece.continues else self.joiner + piece.text
        return text


def _title(text: str) -> str:
    """The markdown title (shown in notifications): the first non-empty line, shortened."""
    first = next((line.strip() for line in text.split("\n") if line.strip()), DEFAULT_TITLE)
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 1] + "…"


# -- outbound: posting ----------------------------------------------------------------------------------


_SECRET_PARAMS = re.compile(r"(access_token|session|sign|timestamp|key)=[^&\s\"']+", re.IGNORECASE)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Remove secret values and credential-looking query parameters from a platform's answer."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SECRET_PARAMS.sub(r"\1=***", text)


def classify(answer: object, secrets: Sequence[str]) -> DeliveryResult:
    """A DingTalk answer (HTTP 200) → the delivery result: success is errcode 0 and nothing else."""
    if not isinstance(answer, Mapping):
        return DeliveryResult(ok=False, retryable=True, detail="answer is not a JSON object")
    code = answer.get("errcode")
    message = scrub(str(answer.get("errmsg", ""))[:300], secrets)
    detail = f"errcode {code}: {message}"
    if code == 0 and not isinstance(code, bool):
        return DeliveryResult(ok=True, detail=detail)
    if code in RETRYABLE_CODES:
        return DeliveryResult(ok=False, retryable=True, detail=detail)
    if code in CONFIG_CODES:
        return DeliveryResult(ok=False, config_error=True, detail=detail)
    return DeliveryResult(ok=False, detail=detail)


async def post_json(http: aiohttp.ClientSession, url: str, body: bytes, secrets: Sequence[str]) -> DeliveryResult:
    """POST one body; the URL is used as given (already encoded) and is never logged."""
    headers = {"Content-Type": "application/json; charset=utf-8"}
    try:
        async with http.post(URL(url, encoded=True), data=body, headers=headers, allow_redirects=False) as response:
            if response.status >= 500 or response.status == 429:
                return DeliveryResult(ok=False, retryable=True, detail=f"HTTP {response.status}")
            if 300 <= response.status < 400:
                # DingTalk answers throttled robots with redirects.
                return DeliveryResult(ok=False, retryable=True, detail=f"HTTP {response.status}（疑似限流）")
            if response.status != 200:
                return DeliveryResult(ok=False, config_error=True, detail=f"HTTP {response.status}")
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                return DeliveryResult(ok=False, retryable=True, detail="answer is not JSON")
    except (aiohttp.ClientError, TimeoutError) as exc:
        # Exception texts may contain the URL (and its token): keep the type only.
        return DeliveryResult(ok=False, retryable=True, detail=type(exc).__name__)
    return classify(answer, secrets)


class DingtalkSender:
    """Posts in one chat: sessionWebhook for a fresh reply, otherwise the signed custom robot."""

    def __init__(
        self, *, channel_id: str, runtime: Runtime, webhook: str, secret: str, builder: BodyBuilder,
        secrets: Sequence[str],
    ) -> None:
        self.channel_id = channel_id
        self.runtime = runtime
        self.webhook = webhook
        self.secret = secret
        self.builder = builder
        self.secrets = tuple(secrets)

    def posts_needed(self, chat: ChatConfig, message: OutboundMessage) -> int:
        """How many posts the message takes on the custom robot: the outbox reserves one rate slot
        per post (DingTalk counts posts, 20 per minute) and keeps digests to one post."""
        return len(self.builder.bodies(message.text, resolve_mentions(message.mentions, self.runtime.directory)))

    async def send(self, chat: ChatConfig, message: OutboundMessage) -> DeliveryResult:
        mentions = resolve_mentions(message.mentions, self.runtime.directory)
        bodies = [serialize(body) for body in self.builder.bodies(message.text, mentions)]
        reply_url = message.reply_url
        if reply_url and session_usable(message.reply_url_expires_at, self.runtime.clock.now()):
            result = await self._post_all(bodies, lambda: reply_url)
            if result.ok or result.retryable:
                return result
            # The session refused (expired early, closed chat…): the group still gets the message.
            log.warning("dingtalk %s: sessionWebhook refused a reply in chat %s (%s); using the robot webhook",
                        self.channel_id, chat.id, result.detail)
        return await self._post_all(bodies, self._signed_url)

    def _signed_url(self) -> str:
        """Signed at the moment of each post: DingTalk allows an hour of skew."""
        return signed_webhook_url(self.webhook, self.secret, epoch_ms(self.runtime.clock.now()))

    async def _post_all(self, bodies: Sequence[bytes], url: Callable[[], str]) -> DeliveryResult:
        """Post the parts in order; stop at the first failure (the outbox retries the message).

        A retried message may repeat parts already posted: a split message is rare (20,000 bytes)
        and a repeated part is better than a lost one.
        """
        result = DeliveryResult(ok=False, detail="nothing to send")
        for body in bodies:
            result = await post_json(self.runtime.http, url(), body, self.secrets)
            if not result.ok:
                break
        if len(bodies) > 1 and result.ok:
            result = DeliveryResult(ok=True, detail=f"{result.detail}（分 {len(bodies)} 条发送）")
        return result


def session_usable(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and now + SESSION_MARGIN < expires_at


# -- the channel ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The channel's secrets, read and checked once at build time."""

    app_secret: str
    webhook: str
    secret: str
    app_key: str | None = None


class DingtalkChannel:
    def __init__(
        self, config: DingtalkChannelConfig, runtime: Runtime, settings: Settings,
        senders: Mapping[str, DingtalkSender], chat_webhooks: Mapping[str, str | None],
    ) -> None:
        self.id = config.id
        self.config = config
        self.runtime = runtime
        self.settings = settings
        self._senders = dict(senders)
        self._chat_webhooks = dict(chat_webhooks)
        self._chat_ids = frozenset(config.chats)
        self._session_origin = _origin(settings.webhook)
        self._builder = BodyBuilder(config.message_format)
        self.stream: StreamReceiver | None = None

    # -- the Channel protocol ------------------------------------------------------------------------------

    def setup_routes(self, app: web.Application) -> None:
        if self.config.mode == "http":
            app.router.add_post(f"/callback/dingtalk/{self.id}", self.callback)

    def senders(self) -> Mapping[str, Sender]:
        return dict(self._senders)

    async def start(self) -> None:
        if self.stream is not None:
            await self.stream.start()

    async def stop(self) -> None:
        if self.stream is not None:
            await self.stream.stop()

    def checks(self) -> list[Check]:
        if self.stream is None:
            checks = [Check(True, CHECK_HTTP.format(channel=self.id))]
        else:
            checks = [Check(True, CHECK_STREAM.format(channel=self.id, version=self.stream.sdk_version))]
        for chat_id in self.config.chats:
            chat = self.runtime.directory.chats[chat_id]
            env = self._chat_webhooks.get(chat_id)
            line = CHECK_CHAT_OWN if env else CHECK_CHAT_SHARED
            checks.append(Check(True, line.format(channel=self.id, chat=chat.name, env=env or self.config.webhook_env)))
            if not chat.platform_chat_id:
                checks.append(Check(False, CHECK_NO_CHAT_ID.format(channel=self.id, chat=chat.name)))
        return checks

    # -- HTTP callback -----------------------------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_CALLBACK_BODY:
            return _error(TOO_LARGE, 413)
        now_ms = epoch_ms(self.runtime.clock.now())
        if not verify_callback(
            request.headers.get("timestamp"), request.headers.get("sign"), self.settings.app_secret,
            now_ms=now_ms, max_skew_ms=self.config.max_skew_seconds * 1000,
        ):
            log.warning("dingtalk %s: callback refused (bad or missing signature, or stale timestamp)", self.id)
            return _error(REFUSED, 401)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:  # chunked: no Content-Length to check beforehand
            return _error(TOO_LARGE, 413)
        message = parse_robot_message(_json(raw))
        if message is None:
            log.warning("dingtalk %s: a signed callback with a malformed body was refused", self.id)
            return _error(BAD_BODY, 400)
        await self.receive(message)
        return web.json_response({})

    # -- both modes ----------------------------------------------------------------------------------------------

    async def on_stream_message(self, data: Any) -> bool:
        """Stream mode: the `data` of a robot-message frame, handled exactly like a callback body."""
        message = parse_robot_message(data)
        if message is None:
            log.warning("dingtalk %s: a malformed stream message was refused", self.id)
            return False
        await self.receive(message)
        return True

    async def receive(self, message: RobotMessage) -> None:
        """Hand a known sender's message to the handler; answer anyone else once, recording nothing."""
        runtime = self.runtime
        chat = runtime.directory.chat_by_platform_id(Platform.DINGTALK, message.conversation_id)
        person = (
            runtime.directory.person_by_platform_user(Platform.DINGTALK, message.staff_id)
            if message.staff_id else None
        )
        if chat is None or chat.id not in self._chat_ids or person is None:
            log.info("dingtalk %s: message %s from staffId %s in conversation %s (type %s) is not from a "
                     "configured chat and person; answered, not recorded", self.id, message.msg_id,
                     message.staff_id, message.conversation_id, message.conversation_type)
            group = message.conversation_type == "2"
            handler = runtime.handler
            known_chat = chat is not None and chat.id in self._chat_ids
            reply = handler.unknown_sender_reply() if known_chat else handler.unknown_chat_reply(group=group)
            await self._answer_unknown(message, reply)
            return
        reply_url = self._reply_url(message)
        inbound = InboundMessage(
            platform=Platform.DINGTALK, chat_id=chat.id, sender_id=person.id, text=message.text,
            received_at=runtime.clock.now(), mentions_bot=True, channel=self.id, message_id=message.msg_id,
            reply_url=reply_url, reply_url_expires_at=message.session_expires_at if reply_url else None,
        )
        # The handler hands the replies to the outbox worker, which posts them at once.
        handled = await runtime.handler.handle(inbound)
        if handled.duplicate:
            log.info("dingtalk %s: message %s was already handled; ignored", self.id, message.msg_id)

    def _reply_url(self, message: RobotMessage) -> str | None:
        """The sessionWebhook, if it is on DingTalk's robot host.

        The callback signature does not cover the body, so a replayed signature could carry any
        URL: only the custom robot's own origin (scheme, host, port) and the session path are used.
        """
        url = message.session_webhook
        if url is None:
            return None
        parts = urlsplit(url)
        if _origin(url) != self._session_origin or parts.path != SESSION_PATH:
            log.warning("dingtalk %s: message %s has a sessionWebhook outside %s; not used",
                        self.id, message.msg_id, self._session_origin)
            return None
        return url

    async def _answer_unknown(self, message: RobotMessage, reply: Reply) -> None:
        """One polite answer saying whom to ask, straight to the sessionWebhook (no database)."""
        url = self._reply_url(message)
        if url is None or not session_usable(message.session_expires_at, self.runtime.clock.now()):
            log.info("dingtalk %s: no usable sessionWebhook to answer message %s", self.id, message.msg_id)
            return
        for body in self._builder.bodies(reply.text, Mentions()):
            result = await post_json(self.runtime.http, url, serialize(body), self._secrets())
            if not result.ok:
                log.warning("dingtalk %s: answering message %s failed: %s", self.id, message.msg_id, result.detail)
                return

    def _secrets(self) -> tuple[str, ...]:
        return _secret_values(self.settings)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


# -- build ---------------------------------------------------------------------------------------------------------


def _access_token(url: str) -> str | None:
    """The webhook's access_token, or None when the URL is not an http(s) robot URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    tokens = parse_qs(parts.query).get("access_token", [])
    return tokens[0] if tokens and tokens[0] else None


def _check_webhook(channel_id: str, env: str, url: str) -> None:
    if _access_token(url) is None or any(c.isspace() for c in url):
        raise ChannelStartError(BAD_WEBHOOK.format(channel=channel_id, env=env))


def _secret_values(settings: Settings) -> tuple[str, ...]:
    token = _access_token(settings.webhook) or ""
    return tuple(s for s in (settings.app_secret, settings.secret, token, settings.app_key or "") if s)


def _read_settings(config: DingtalkChannelConfig, environ: Mapping[str, str]) -> Settings | None:
    names = {"app_secret": config.app_secret_env, "webhook": config.webhook_env, "secret": config.secret_env}
    if config.mode == "stream":
        names = {"app_key": config.app_key_env, **names}
    values = read_secrets(config.id, names, environ)
    if values is None:
        return None
    _check_webhook(config.id, config.webhook_env, values["webhook"])
    if not values["secret"].startswith("SEC"):
        raise ChannelStartError(BAD_SECRET.format(channel=config.id, env=config.secret_env))
    return Settings(app_secret=values["app_secret"], webhook=values["webhook"], secret=values["secret"],
                    app_key=values.get("app_key"))


def _chat_webhooks(
    config: DingtalkChannelConfig, runtime: Runtime, environ: Mapping[str, str]
) -> dict[str, tuple[str | None, str | None, str | None]]:
    """chat id → (env name, URL, 加签 secret) of the chat's own robot, or Nones to use the channel's."""
    result: dict[str, tuple[str | None, str | None, str | None]] = {}
    for chat_id in config.chats:
        chat = runtime.directory.chats[chat_id]
        env = chat.webhook_env
        if env is None:
            result[chat_id] = (None, None, None)
            continue
        url = environ.get(env, "").strip()
        if not url:
            raise ChannelStartError(CHAT_WEBHOOK_MISSING.format(chat=chat_id, env=env, channel=config.id))
        _check_webhook(config.id, env, url)
        secret = environ.get(chat.secret_env, "").strip() if chat.secret_env else None
        if chat.secret_env and not (secret and secret.startswith("SEC")):
            raise ChannelStartError(BAD_SECRET.format(channel=config.id, env=chat.secret_env))
        result[chat_id] = (env, url, secret)
    return result


def build(config: DingtalkChannelConfig, runtime: Runtime, environ: Mapping[str, str]) -> Channel | None:
    """The channel, None when none of its variables is set; ChannelStartError when half-configured."""
    settings = _read_settings(config, environ)
    if settings is None:
        return None
    webhooks = _chat_webhooks(config, runtime, environ)
    builder = BodyBuilder(config.message_format)
    secrets = list(_secret_values(settings))
    secrets += [t for _, url, _ in webhooks.values() if url and (t := _access_token(url))]
    secrets += [s for _, _, s in webhooks.values() if s]
    senders = {
        chat_id: DingtalkSender(
            channel_id=config.id, runtime=runtime, webhook=url or settings.webhook,
            # A chat's own robot has its own 加签 secret (chats[].secret_env); without one the
            # channel's secret is tried.
            secret=secret or settings.secret, builder=builder, secrets=secrets,
        )
        for chat_id, (_, url, secret) in webhooks.items()
    }
    channel = DingtalkChannel(config, runtime, settings, senders, {c: env for c, (env, _, _) in webhooks.items()})
    if config.mode == "stream":
        assert settings.app_key is not None
        channel.stream = StreamReceiver(
            channel_id=config.id, client_id=settings.app_key, client_secret=settings.app_secret,
            endpoint=gateway_endpoint(environ), sdk=load_sdk(config.id), http=lambda: runtime.http,
            on_message=channel.on_stream_message,
        )
    return channel
