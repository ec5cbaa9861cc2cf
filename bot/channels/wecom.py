"""WeCom (企业微信): the AI bot (智能机器人, API mode) receives @-messages, the group robot webhook sends.

Routes, registered for this channel's own id only:
  GET  /callback/wecom/<id>  URL verification: verify, decrypt echostr, answer the bare plaintext.
  POST /callback/wecom/<id>  AI bot callback: JSON {"encrypt"} with msg_signature/timestamp/nonce
                             in the query. A self-built app's XML callback on the same path is also
                             understood (see _handle_app_xml).

Every callback is checked in a fixed order before its message is parsed or anything is written:
query present and fresh → body size → the envelope (JSON, or XML with defusedxml) read only for
its ciphertext → signature (constant time) → decryption (padding, length, receive id) → only then
the message itself. Forged or stale callbacks get 401, malformed ones 400, and nothing is recorded.
Known senders in served chats go to the neutral handler (which de-duplicates by msgid in the
database); the answer is always 200 with an empty body and the reply is delivered by the outbox,
so WeCom's 5-second limit is never at risk.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from xml.etree.ElementTree import ParseError

import aiohttp
from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from yarl import URL

from bot.channels.base import Channel, ChannelStartError, Check, DeliveryResult, Sender, read_secrets
from bot.channels.wecom_crypto import WecomCrypto, WecomCryptoError
from bot.config import ChatConfig, WecomChannelConfig
from bot.directory import Directory
from bot.messages import InboundMessage, OutboundMessage
from bot.runtime import Runtime
from bot.vocab import Platform

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
# WeCom documents no freshness rule for callback timestamps. A signed callback older (or newer)
# than an hour is refused anyway: together with the msgid records kept for at least 2 h
# (inbound_seen, purged by the scheduler), a captured callback can be replayed neither inside nor
# after the de-duplication window.
MAX_SKEW = timedelta(hours=1)
REPLY_URL_LIFETIME = timedelta(hours=1)  # response_url: usable once, for one hour
# The callback must be answered within 5 s; a direct answer (unknown chat or sender) gets 3 s.
DIRECT_TIMEOUT = aiohttp.ClientTimeout(total=3)
TEXT_LIMIT = 2048  # bytes of text.content (UTF-8)
MARKDOWN_LIMIT = 4096  # bytes of markdown.content
REPLY_URL_LIMIT = 20480  # bytes of markdown.content on response_url
RETRYABLE_CODES = frozenset({-1, 45009, 45033})  # busy, rate limit (20/min), too many concurrent calls
PROGRESS_ENTRIES = 1000
TIMESTAMP_FORMAT = re.compile(r"^[0-9]{1,12}$")
LEADING_MENTION = re.compile(r"^\s*@\S*\s*")
SECRET_IN_TEXT = re.compile(r"https?://\S+|\b(key|response_code|access_token)=[^&\s,;]+", re.IGNORECASE)

# -- user-facing text -------------------------------------------------------------------------------

UNSUPPORTED = "暂不支持图片、文件等类型的消息，请发送文字指令。"
NO_WEBHOOK = "群 {chat} 未配置群机器人 webhook（环境变量 {env}）"
BAD_TOKEN = "通道 {channel} 的环境变量 {env} 不是有效的 Token：应为不含空格的英文字母、数字或符号。"
BAD_AES_KEY = (
    "通道 {channel} 的环境变量 {env} 不是有效的 EncodingAESKey：{reason}。请从企业微信后台完整复制 43 位密钥。"
)
BAD_WEBHOOK = (
    "通道 {channel} 的环境变量 {env} 不是有效的群机器人 webhook 地址："
    "应为 http(s) 地址且带 key 参数，例如 https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"
)
CHECK_CHANNEL = "{channel}：Token、EncodingAESKey、群机器人已配置"
CHECK_SHARED = "chat {chat}：使用通道群机器人 webhook（{env}）"
CHECK_OWN = "chat {chat}：群机器人 webhook 已配置（{env}）"
CHECK_MISSING = "chat {chat}：未配置群机器人 webhook（{env}）"
CHECK_NO_CHAT_ID = "chat {chat}：未设置 platform_chat_id（企业微信 chatid），收不到该群的消息"
REFUSALS = {400: "请求格式不对。", 401: "签名校验失败。", 413: "请求体过大（上限 64 KiB）。"}


class Refused(Exception):
    """A callback answered with an error status; `reason` is for the log (never a secret)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class SignedQuery:
    signature: str
    timestamp: str
    nonce: str


# -- building -----------------------------------------------------------------------------------------


def build(config: WecomChannelConfig, runtime: Runtime, environ: Mapping[str, str]) -> Channel | None:
    """The channel, or None when none of its variables is set; ChannelStartError when unsafe to start."""
    names = {"token": config.token_env, "aes_key": config.aes_key_env, "webhook": config.webhook_env}
    values = read_secrets(config.id, names, environ)
    if values is None:
        return None
    token = values["token"]
    if not token.isascii() or any(c.isspace() or not c.isprintable() for c in token):
        raise ChannelStartError(BAD_TOKEN.format(channel=config.id, env=config.token_env))
    try:
        crypto = WecomCrypto(token, values["aes_key"], config.receive_id)
    except ValueError as exc:
        raise ChannelStartError(BAD_AES_KEY.format(channel=config.id, env=config.aes_key_env, reason=exc)) from None
    channel_webhook = parse_webhook(config.id, config.webhook_env, values["webhook"])
    webhooks: dict[str, URL | None] = {}
    for chat_id in config.chats:
        chat = runtime.directory.chats[chat_id]
        if chat.webhook_env is None:
            webhooks[chat_id] = channel_webhook
        else:
            own = environ.get(chat.webhook_env, "").strip()
            webhooks[chat_id] = parse_webhook(config.id, chat.webhook_env, own) if own else None
    return WecomChannel(config, runtime, crypto, webhooks)


def parse_webhook(channel_id: str, env: str, value: str) -> URL:
    """A group robot URL: http(s), a host and a non-empty key parameter."""
    try:
        url = URL(value)
    except (ValueError, TypeError):
        raise ChannelStartError(BAD_WEBHOOK.format(channel=channel_id, env=env)) from None
    if url.scheme not in ("http", "https") or not url.host or not url.query.get("key"):
        raise ChannelStartError(BAD_WEBHOOK.format(channel=channel_id, env=env))
    return url


# -- the channel: callbacks ---------------------------------------------------------------------------


class WecomChannel:
    def __init__(
        self, config: WecomChannelConfig, runtime: Runtime, crypto: WecomCrypto, webhooks: Mapping[str, URL | None]
    ) -> None:
        self.id = config.id
        self._config = config
        self._runtime = runtime
        self._crypto = crypto
        self._webhooks = dict(webhooks)
        self._senders = {
            chat_id: WecomSender(
                channel_id=config.id, runtime=runtime, webhook=url, webhook_env=self._webhook_env(chat_id),
                message_format=config.message_format,
            )
            for chat_id, url in self._webhooks.items()
        }

    def _webhook_env(self, chat_id: str) -> str:
        return self._runtime.directory.chats[chat_id].webhook_env or self._config.webhook_env

    def setup_routes(self, app: web.Application) -> None:
        path = f"/callback/wecom/{self.id}"
        app.router.add_get(path, self._on_get)
        app.router.add_post(path, self._on_post)

    def senders(self) -> Mapping[str, Sender]:
        return dict(self._senders)

    async def start(self) -> None:
        """Nothing long-running: the webhook posts use the runtime's HTTP client."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def checks(self) -> list[Check]:
        checks = [Check(True, CHECK_CHANNEL.format(channel=self.id))]
        for chat_id, url in self._webhooks.items():
            chat = self._runtime.directory.chats[chat_id]
            env = self._webhook_env(chat_id)
            if url is None:
                checks.append(Check(False, CHECK_MISSING.format(chat=chat_id, env=env)))
            elif chat.webhook_env is None:
                checks.append(Check(True, CHECK_SHARED.format(chat=chat_id, env=env)))
            else:
                checks.append(Check(True, CHECK_OWN.format(chat=chat_id, env=env)))
            if not chat.platform_chat_id:
                checks.append(Check(False, CHECK_NO_CHAT_ID.format(chat=chat_id)))
        return checks

    # -- request entry points -------------------------------------------------------------------------

    async def _on_get(self, request: web.Request) -> web.Response:
        try:
            return self._verify_url(request)
        except Refused as exc:
            return self._refusal(exc)

    async def _on_post(self, request: web.Request) -> web.Response:
        try:
            return await self._handle_post(request)
        except Refused as exc:
            return self._refusal(exc)

    def _refusal(self, exc: Refused) -> web.Response:
        log.warning("wecom %s: callback refused with %d: %s", self.id, exc.status, exc.reason)
        return web.Response(status=exc.status, text=REFUSALS.get(exc.status, "请求被拒绝。"))

    def _verify_url(self, request: web.Request) -> web.Response:
        query = self._signed_query(request)
        # Base64 may carry "+", which form decoding turns into a space; base64 never has spaces.
        echostr = request.query.get("echostr", "").replace(" ", "+")
        if not echostr:
            raise Refused(400, "URL 验证缺少 echostr")
        plaintext = self._open(query, echostr)
        return web.Response(body=plaintext, content_type="text/plain")

    async def _handle_post(self, request: web.Request) -> web.Response:
        query = self._signed_query(request)
        body = await _read_body(request)
        if "xml" in request.content_type or body.lstrip()[:1] == b"<":
            return self._handle_app_xml(query, body)
        payload = _json_object(self._open(query, _json_envelope(body)))
        return await self._handle_aibot(payload)

    def _signed_query(self, request: web.Request) -> SignedQuery:
        values = [request.query.get(name, "") for name in ("msg_signature", "timestamp", "nonce")]
        if not all(values) or any(len(value) > 128 for value in values):
            raise Refused(400, "缺少或过长的 msg_signature、timestamp、nonce 参数")
        query = SignedQuery(*values)
        if not TIMESTAMP_FORMAT.match(query.timestamp):
            raise Refused(400, "timestamp 不是整数秒")
        if abs(int(query.timestamp) - self._runtime.clock.now().timestamp()) > MAX_SKEW.total_seconds():
            raise Refused(401, "timestamp 与本机时间相差超过 1 小时（过期或重放）")
        return query

    def _open(self, query: SignedQuery, encrypt: str) -> bytes:
        try:
            return self._crypto.open(query.signature, query.timestamp, query.nonce, encrypt)
        except WecomCryptoError as exc:
            raise Refused(401, str(exc)) from None

    # -- the AI bot's JSON messages -------------------------------------------------------------------

    async def _handle_aibot(self, payload: dict[str, Any]) -> web.Response:
        if payload.get("msgtype") in ("event", "stream"):
            # enter_chat, card and feedback events, stream refreshes: nothing to record or say.
            return web.Response()
        inbound = self._inbound(payload)
        if isinstance(inbound, str):
            await self._answer_directly(_reply_url(payload), inbound)
            return web.Response()
        # The handler hands the replies to the outbox worker, which posts them at once (never
        # waited for here).
        handled = await self._runtime.handler.handle(inbound)
        if handled.duplicate:
            log.info("wecom %s: message %s already handled (a retry or a replay)", self.id, inbound.message_id)
        return web.Response()

    def _inbound(self, payload: dict[str, Any]) -> InboundMessage | str:
        """The neutral message; or, for a message that must not be recorded, the one answer it gets."""
        msgid = _field(payload, "msgid")
        userid = _field(payload, "from", "userid")
        if not isinstance(msgid, str) or not msgid or len(msgid) > 128 or not isinstance(userid, str) or not userid:
            raise Refused(400, "回调缺少 msgid 或 from.userid")
        chat = self._served_chat(payload)
        if chat is None:
            log.info("wecom %s: message %s from a chat this channel does not serve (chattype %s, chatid %s)",
                     self.id, msgid, payload.get("chattype"), payload.get("chatid"))
            return self._runtime.handler.unknown_chat_reply(group=payload.get("chattype") == "group").text
        person = self._runtime.directory.person_by_platform_user(Platform.WECOM, userid)
        if person is None:
            log.info("wecom %s: message %s from unregistered user %s in chat %s", self.id, msgid, userid, chat.id)
            return self._runtime.handler.unknown_sender_reply().text
        text = message_text(payload)
        if text is None:
            return UNSUPPORTED
        now = self._runtime.clock.now()
        reply_url = _reply_url(payload)
        return InboundMessage(
            platform=Platform.WECOM, chat_id=chat.id, sender_id=person.id, text=text, received_at=now,
            mentions_bot=True, channel=self.id, message_id=msgid, reply_url=reply_url,
            reply_url_expires_at=now + REPLY_URL_LIFETIME if reply_url else None,
        )

    def _served_chat(self, payload: dict[str, Any]) -> ChatConfig | None:
        chatid = payload.get("chatid")
        if payload.get("chattype") != "group" or not isinstance(chatid, str):
            return None
        chat = self._runtime.directory.chat_by_platform_id(Platform.WECOM, chatid)
        return chat if chat is not None and chat.id in self._webhooks else None

    async def _answer_directly(self, reply_url: str | None, text: str) -> None:
        """One answer on response_url without recording anything (unknown chat or sender)."""
        if reply_url is None:
            return
        try:
            result = await post_json(self._runtime.http, URL(reply_url), reply_payload(text), DIRECT_TIMEOUT)
        except Exception as exc:  # the callback must still be answered; nothing was recorded to roll back
            log.warning("wecom %s: direct answer failed: %s", self.id, type(exc).__name__)  # no URL in the log
            return
        if not result.ok:
            log.warning("wecom %s: direct answer not delivered: %s", self.id, result.detail)

    # -- a self-built app's XML messages --------------------------------------------------------------

    def _handle_app_xml(self, query: SignedQuery, body: bytes) -> web.Response:
        """A message a member sent to the self-built app (receive id = the CorpID).

        Such a message comes from the member's own conversation with the app, not from a duty
        group, so it is not mapped to a configured chat: treating it as said in a group would
        post the group's notices in reaction to a private message. It is answered at once with
        a passive (encrypted) reply pointing to the duty group, and nothing is recorded.
        """
        envelope = parse_xml(body)
        encrypt = envelope.findtext("Encrypt")
        if envelope.tag != "xml" or not encrypt:
            raise Refused(400, "XML 回调缺少 Encrypt")
        message = parse_xml(self._open(query, encrypt.strip()))
        user = message.findtext("FromUserName")
        if message.findtext("MsgType") != "text" or not user:
            return web.Response()  # events (enter_agent, …): nothing to say
        log.info("wecom %s: direct message %s from %s to the app, answered with the help text",
                 self.id, message.findtext("MsgId"), user)
        reply = self._passive_reply(user, self._runtime.handler.unknown_chat_reply(group=False).text)
        return web.Response(body=reply, content_type="application/xml")

    def _passive_reply(self, to_user: str, text: str) -> bytes:
        timestamp = str(int(self._runtime.clock.now().timestamp()))
        nonce = str(secrets.randbelow(10**10))
        plain = (
            f"<xml><ToUserName>{_cdata(to_user)}</ToUserName>"
            f"<FromUserName>{_cdata(self._config.receive_id)}</FromUserName>"
            f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{_cdata(text)}</Content></xml>"
        )
        encrypted, signature = self._crypto.seal(plain.encode("utf-8"), timestamp, nonce)
        return (
            f"<xml><Encrypt>{_cdata(encrypted)}</Encrypt><MsgSignature>{_cdata(signature)}</MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{_cdata(nonce)}</Nonce></xml>"
        ).encode()


async def _read_body(request: web.Request) -> bytes:
    """The body, at most 64 KiB (request.read() enforces client_max_size for chunked bodies too)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Refused(413, "请求体超过 64 KiB")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Refused(413, "请求体超过 64 KiB") from None
    if len(body) > MAX_BODY:
        raise Refused(413, "请求体超过 64 KiB")
    return body


def _json_envelope(body: bytes) -> str:
    """The ciphertext of an AI bot callback {"encrypt": "…"}; parsing the plaintext waits for the signature."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise Refused(400, "回调请求体不是 JSON") from None
    encrypt = envelope.get("encrypt") if isinstance(envelope, dict) else None
    if not isinstance(encrypt, str) or not encrypt:
        raise Refused(400, "回调请求体缺少 encrypt")
    return encrypt


def _json_object(plaintext: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(plaintext)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Refused(400, "解密后的消息不是 JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, "解密后的消息不是 JSON 对象")
    return payload


def parse_xml(data: bytes) -> Any:
    """Parse with defusedxml only: no DTD, no entities, no external references (XXE, billion laughs)."""
    try:
        return defused_fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError, LookupError) as exc:
        raise Refused(400, f"XML 无法解析或含有被禁止的结构（{type(exc).__name__}）") from None


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _field(payload: Mapping[str, Any], *path: str) -> Any:
    value: Any = payload
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _reply_url(payload: Mapping[str, Any]) -> str | None:
    value = payload.get("response_url")
    if not isinstance(value, str):
        return None
    try:
        url = URL(value)
    except (ValueError, TypeError):
        return None
    return value if url.scheme in ("http", "https") and url.host else None


def strip_leading_mention(text: str) -> str:
    """Drop a leading "@<name> ": the AI bot's display name may differ from config.bot.name."""
    return LEADING_MENTION.sub("", text, count=1) if text.lstrip().startswith("@") else text


def message_text(payload: Mapping[str, Any]) -> str | None:
    """The text of a text, mixed (text items joined) or voice (speech-to-text) message; else None."""
    msgtype = payload.get("msgtype")
    if msgtype == "text":
        content = _field(payload, "text", "content")
        return strip_leading_mention(content) if isinstance(content, str) else None
    if msgtype == "mixed":
        items = _field(payload, "mixed", "msg_item")
        texts = [
            content for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict) and item.get("msgtype") == "text"
            and isinstance(content := _field(item, "text", "content"), str)
        ]
        return strip_leading_mention("\n".join(texts)) if texts else None
    if msgtype == "voice":
        content = _field(payload, "voice", "content")
        return content if isinstance(content, str) else None
    return None


# -- sending --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mentions:
    userids: tuple[str, ...] = ()  # @-mentioned by WeCom userid
    mobiles: tuple[str, ...] = ()  # people without a userid, @-mentioned by mobile (text only)
    names: tuple[str, ...] = ()  # people who cannot be @-mentioned natively: named in the text


def resolve_mentions(person_ids: Sequence[str], directory: Directory) -> Mentions:
    userids: list[str] = []
    mobiles: list[str] = []
    names: list[str] = []
    for person_id in dict.fromkeys(person_ids):
        person = directory.people.get(person_id)
        if person is not None and person.wecom_userid:
            userids.append(person.wecom_userid)
        elif person is not None and person.mobile:
            mobiles.append(person.mobile)
        else:
            names.append(person.name if person is not None else person_id)
    return Mentions(tuple(userids), tuple(mobiles), tuple(names))


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def split_utf8(text: str, limit: int) -> list[str]:
    """Parts of at most `limit` UTF-8 bytes, cut at line ends; an over-long line is cut between characters."""
    parts: list[str] = []
    current: str | None = None
    for line in text.split("\n"):
        for piece in _hard_split(line, limit):
            candidate = piece if current is None else f"{current}\n{piece}"
            if utf8_size(candidate) <= limit:
                current = candidate
            else:
                if current is not None:
                    parts.append(current)
                current = piece
    if current is not None:
        parts.append(current)
    kept = [part for part in parts if part.strip()]  # WeCom refuses empty content (44004)
    return kept or [text]


def _hard_split(line: str, limit: int) -> list[str]:
    if utf8_size(line) <= limit:
        return [line]
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = utf8_size(char)
        if size + width > limit:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    pieces.append("".join(current))
    return pieces


def split_with_tail(text: str, tail: str, limit: int) -> list[str]:
    """Split `text`, then put `tail` (the mentions) on the last part, or on a part of its own."""
    parts = split_utf8(text, limit)
    if not tail:
        return parts
    last = f"{parts[-1]}\n{tail}"
    if utf8_size(last) <= limit:
        return [*parts[:-1], last]
    return parts + split_utf8(tail, limit)


def webhook_payloads(text: str, mentions: Mentions, message_format: str) -> list[dict[str, Any]]:
    """The group robot posts for one message, in order; the @-mentions ride on the last one.

    markdown_v2 is never used: it cannot @-mention. Markdown mentions only by userid, so a
    message that must reach someone by mobile goes out as text.
    """
    named = " ".join(f"@{name}" for name in mentions.names)
    if message_format == "markdown" and not mentions.mobiles:
        tail = " ".join([*(f"<@{userid}>" for userid in mentions.userids), *([named] if named else [])])
        parts = split_with_tail(text, tail, MARKDOWN_LIMIT)
        return [{"msgtype": "markdown", "markdown": {"content": part}} for part in parts]
    payloads: list[dict[str, Any]] = [
        {"msgtype": "text", "text": {"content": part}} for part in split_with_tail(text, named, TEXT_LIMIT)
    ]
    if mentions.userids:
        payloads[-1]["text"]["mentioned_list"] = list(mentions.userids)
    if mentions.mobiles:
        payloads[-1]["text"]["mentioned_mobile_list"] = list(mentions.mobiles)
    return payloads


def reply_payload(text: str) -> dict[str, Any]:
    """A response_url answer (the AI bot's markdown; at most 20,480 bytes)."""
    return {"msgtype": "markdown", "markdown": {"content": text}}


def _without_secrets(text: str) -> str:
    """The platform's errmsg with URLs and keys removed (errmsg often carries a help URL)."""
    return SECRET_IN_TEXT.sub("…", text)[:200].strip()


def classify(status: int, raw: bytes) -> DeliveryResult:
    """Success only on errcode 0; rate limits and server trouble are retried, the rest is configuration."""
    if status >= 500 or status == 429:
        return DeliveryResult(ok=False, retryable=True, detail=f"HTTP {status}")
    if status != 200:
        return DeliveryResult(ok=False, config_error=True, detail=f"HTTP {status}")
    try:
        answer = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return DeliveryResult(ok=False, config_error=True, detail="应答不是 JSON，地址可能不是企业微信接口")
    code = answer.get("errcode") if isinstance(answer, dict) else None
    if not isinstance(code, int):
        return DeliveryResult(ok=False, config_error=True, detail="应答缺少 errcode，地址可能不是企业微信接口")
    detail = f"errcode {code}: {_without_secrets(str(answer.get('errmsg', '')))}"
    if code == 0:
        return DeliveryResult(ok=True, detail=detail)
    if code in RETRYABLE_CODES:
        return DeliveryResult(ok=False, retryable=True, detail=detail)
    return DeliveryResult(ok=False, config_error=True, detail=detail)


async def post_json(
    http: aiohttp.ClientSession, url: URL, payload: dict[str, Any], client_timeout: aiohttp.ClientTimeout | None = None
) -> DeliveryResult:
    """POST and classify the answer; the URL (it carries the key) never reaches the detail or the log."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    options: dict[str, Any] = {} if client_timeout is None else {"timeout": client_timeout}
    try:
        async with http.post(url, data=data, headers={"Content-Type": "application/json"}, **options) as response:
            status, raw = response.status, await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return DeliveryResult(ok=False, retryable=True, detail=f"网络错误：{type(exc).__name__}")
    return classify(status, raw)


class WecomSender:
    """Posts in one chat: on the message's response_url when that fits, else on the group robot."""

    def __init__(
        self, *, channel_id: str, runtime: Runtime, webhook: URL | None, webhook_env: str, message_format: str
    ) -> None:
        self.channel_id = channel_id
        self._runtime = runtime
        self._webhook = webhook
        self._webhook_env = webhook_env
        self._format = message_format
        # Parts of a split message already delivered, by intent key: a retry resumes after them.
        # A cache only: after a restart a retried message is sent whole again.
        self._progress: dict[str, int] = {}

    async def send(self, chat: ChatConfig, message: OutboundMessage) -> DeliveryResult:
        reply_url = self._usable_reply_url(message)
        if reply_url is not None:
            result = await post_json(self._runtime.http, URL(reply_url), reply_payload(message.text))
            if result.ok or result.retryable:
                return result
            # Used, expired or refused: the group robot still reaches the chat.
            log.info("wecom %s: response_url refused (%s); using the group robot", self.channel_id, result.detail)
        if self._webhook is None:
            return DeliveryResult(ok=False, config_error=True,
                                  detail=NO_WEBHOOK.format(chat=chat.id, env=self._webhook_env))
        return await self._post_parts(chat, message, self._webhook)

    def posts_needed(self, chat: ChatConfig, message: OutboundMessage) -> int:
        """How many posts the message takes on the group robot: the outbox reserves one rate slot
        per post (WeCom counts posts, 20 per minute) and keeps digests to one post."""
        mentions = resolve_mentions(message.mentions, self._runtime.directory)
        return len(webhook_payloads(message.text, mentions, self._format))

    def _usable_reply_url(self, message: OutboundMessage) -> str | None:
        """response_url serves once, within its hour, a reply that @-mentions nobody (it cannot @)."""
        usable = (
            message.reply_url_expires_at is not None
            and message.reply_url_expires_at > self._runtime.clock.now()
            and not message.mentions
            and utf8_size(message.text) <= REPLY_URL_LIMIT
        )
        return message.reply_url if usable else None

    async def _post_parts(self, chat: ChatConfig, message: OutboundMessage, webhook: URL) -> DeliveryResult:
        mentions = resolve_mentions(message.mentions, self._runtime.directory)
        payloads = webhook_payloads(message.text, mentions, self._format)
        progress_key = f"{chat.id}:{message.key}" if message.key else None
        start = self._progress.get(progress_key, 0) if progress_key else 0
        for index in range(start, len(payloads)):
            result = await post_json(self._runtime.http, webhook, payloads[index])
            if not result.ok:
                self._remember(progress_key, index if result.retryable else None)
                return result
        self._remember(progress_key, None)
        count = len(payloads)
        return DeliveryResult(ok=True, detail="errcode 0" if count == 1 else f"errcode 0（分 {count} 条发送）")

    def _remember(self, key: str | None, delivered: int | None) -> None:
        if key is None:
            return
        if delivered is None or delivered == 0:
            self._progress.pop(key, None)
            return
        if len(self._progress) >= PROGRESS_ENTRIES:
            self._progress.pop(next(iter(self._progress)))
        self._progress[key] = delivered
