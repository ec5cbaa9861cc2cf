"""WeCom (企业微信): the AI bot (智能机器人, API mode) receives @-messages, the group robot webhook sends.

Routes, registered for this channel's own id only:
  GET  /callback/wecom/<id>  URL verification: verify, decrypt echostr, answer the bare plaintext.
  POST /callback/wecom/<id>  AI bot callback: JSON {"encrypt"} with msg_signature/timestamp/nonce
                             in the query. A self-built app's XML callback on the same path is also
                             understood (see _handle_app_xml).

Every callback is checked in a fixed order before its message is parsed or anything is written:
query present and fresh → body size → the envelope (JSON, or XML with defusedxml) read only for
its ciphertext → signature (constant time) → decryption (padding, length, receive id) → only then
the message itself, parsed into its pydantic model (bot/channels/wecom_payloads.py). Forged or
stale callbacks get 401, malformed ones 400, and nothing is recorded.
The decoded message then takes the shared pipeline (bot/channels/pipeline.py): strangers answered
once on response_url, known senders recorded (de-duplicated by msgid) or spooled, replies queued
in the outbox and posted by bot/channels/wecom_send.py. The answer is 200 with an empty body,
without waiting on a send, so WeCom's 5-second limit is never at risk. A response_url is kept
only when it is WeCom's own reply endpoint (bot/channels/reply_urls.py): anything else is dropped
here and never stored.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from datetime import timedelta

import aiohttp
from aiohttp import web
from yarl import URL

from bot.channels import reply_urls
from bot.channels.base import Channel, ChannelStartError, Check, DeliveryResult, Sender, clip, read_secrets
from bot.channels.pipeline import UNSUPPORTED as UNSUPPORTED
from bot.channels.pipeline import Arrival, ChannelRuntime, Door, Labels
from bot.channels.wecom_crypto import WecomCrypto, WecomCryptoError
from bot.channels.wecom_parse import Refused, SignedQuery, aibot_message, cdata, json_envelope, parse_xml, read_body
from bot.channels.wecom_payloads import AibotMessage, AppEnvelope, AppMessage, xml_fields
from bot.channels.wecom_payloads import message_text as message_text
from bot.channels.wecom_payloads import strip_leading_mention as strip_leading_mention
from bot.channels.wecom_send import MARKDOWN_LIMIT as MARKDOWN_LIMIT
from bot.channels.wecom_send import TEXT_LIMIT as TEXT_LIMIT
from bot.channels.wecom_send import Mentions as Mentions
from bot.channels.wecom_send import WecomSender as WecomSender
from bot.channels.wecom_send import classify as classify
from bot.channels.wecom_send import post_json as post_json
from bot.channels.wecom_send import reply_payload as reply_payload
from bot.channels.wecom_send import resolve_mentions as resolve_mentions
from bot.channels.wecom_send import split_utf8 as split_utf8
from bot.channels.wecom_send import split_with_tail as split_with_tail
from bot.channels.wecom_send import utf8_size as utf8_size
from bot.channels.wecom_send import webhook_payloads as webhook_payloads
from bot.runtime import Runtime
from domain.config import WecomChannelConfig
from domain.vocab import Platform

log = logging.getLogger(__name__)

# WeCom documents no freshness rule for callback timestamps. A signed callback older (or newer)
# than an hour is refused anyway: together with the msgid records kept for at least 2 h
# (inbound_seen, purged by the scheduler), a captured callback can be replayed neither inside nor
# after the de-duplication window.
MAX_SKEW = timedelta(hours=1)
REPLY_URL_LIFETIME = timedelta(hours=1)  # response_url: usable once, for one hour
# The callback must be answered within 5 s; a direct answer (unknown chat or sender) gets 3 s.
DIRECT_TIMEOUT = aiohttp.ClientTimeout(total=3)
TIMESTAMP_FORMAT = re.compile(r"^[0-9]{1,12}$")

# -- user-facing text -------------------------------------------------------------------------------

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
# How the platform names the ids in the pipeline's log lines (the admin copies them into the config).
LABELS = Labels(chat_type="chattype", chat="chatid", user="userid")


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
    return WecomChannel(config, runtime.for_channels(), crypto, webhooks,
                        reply_endpoint=reply_urls.ReplyEndpoint.of(**reply_urls.WECOM, configured=str(channel_webhook)))


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
        self, config: WecomChannelConfig, runtime: ChannelRuntime, crypto: WecomCrypto,
        webhooks: Mapping[str, URL | None], *, reply_endpoint: reply_urls.ReplyEndpoint,
    ) -> None:
        self.id = config.id
        self._config = config
        self._runtime = runtime
        self._crypto = crypto
        self._webhooks = dict(webhooks)
        self._replies = reply_endpoint
        self._door = Door(config.id, Platform.WECOM, frozenset(self._webhooks), self, LABELS)
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
        body = await read_body(request)
        if "xml" in request.content_type or body.lstrip()[:1] == b"<":
            return self._handle_app_xml(query, body)
        message = aibot_message(self._open(query, json_envelope(body)))
        if message is not None:  # None: an event or a stream refresh, nothing to record or say
            await self._runtime.pipeline.receive(self._door, self._arrival(message))
        return web.Response()

    def _signed_query(self, request: web.Request) -> SignedQuery:
        values = [request.query.get(name, "") for name in ("msg_signature", "timestamp", "nonce")]
        if not all(values) or any(len(value) > 128 or not value.isascii() for value in values):
            raise Refused(400, "缺少、过长或含非 ASCII 字符的 msg_signature、timestamp、nonce 参数")
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

    # -- the AI bot's JSON messages: translated, then the shared pipeline ------------------------------

    def _arrival(self, message: AibotMessage) -> Arrival:
        reply_url = self._reply_url(message)
        return Arrival(
            message_id=message.msgid, chat_id=message.group_chat, chat_type=message.chattype,
            group=message.chattype == "group", user_id=message.sender.userid, text=message.plain_text(),
            reply_url=reply_url,
            reply_url_expires_at=self._runtime.clock.now() + REPLY_URL_LIFETIME if reply_url else None,
        )

    def _reply_url(self, message: AibotMessage) -> str | None:
        """The callback's response_url when it is WeCom's own reply endpoint; anything else is
        dropped here (never stored, never posted to) and the reply goes to the group robot."""
        if message.response_url is None:
            return None
        url = self._replies.accept(message.response_url)
        if url is None:
            self._runtime.metrics.reply_urls_dropped.labels(channel=self.id).inc()
            log.warning("wecom %s: message %s has a response_url that is not WeCom's reply endpoint; not used",
                        self.id, clip(message.msgid))
        return url

    async def answer(self, arrival: Arrival, reply_url: str, text: str) -> DeliveryResult:
        """One answer on response_url, recording nothing (a stranger, an unreadable message)."""
        return await post_json(self._runtime.http, URL(reply_url), reply_payload(text), DIRECT_TIMEOUT)

    # -- a self-built app's XML messages --------------------------------------------------------------

    def _handle_app_xml(self, query: SignedQuery, body: bytes) -> web.Response:
        """A message a member sent to the self-built app (receive id = the CorpID).

        Such a message comes from the member's own conversation with the app, not from a duty
        group, so it is not mapped to a configured chat: treating it as said in a group would
        post the group's notices in reaction to a private message. It is answered at once with
        a passive (encrypted) reply pointing to the duty group, and nothing is recorded.
        """
        envelope = parse_xml(body)
        try:
            if envelope.tag != "xml":
                raise ValueError("not <xml>")
            encrypt = AppEnvelope.model_validate(xml_fields(envelope)).encrypt
        except ValueError:  # pydantic's ValidationError is one
            raise Refused(400, "XML 回调缺少 Encrypt") from None
        message = AppMessage.model_validate(xml_fields(parse_xml(self._open(query, encrypt.strip()))))
        if message.msg_type != "text" or message.from_user is None:
            return web.Response()  # events (enter_agent, …): nothing to say
        log.info("wecom %s: direct message %s from %s to the app, answered with the help text",
                 self.id, clip(message.msg_id), clip(message.from_user))
        answer = self._runtime.pipeline.handler.unknown_chat_reply(group=False).text
        reply = self._passive_reply(message.from_user, answer)
        return web.Response(body=reply, content_type="application/xml")

    def _passive_reply(self, to_user: str, text: str) -> bytes:
        timestamp = str(int(self._runtime.clock.now().timestamp()))
        nonce = str(secrets.randbelow(10**10))
        plain = (
            f"<xml><ToUserName>{cdata(to_user)}</ToUserName>"
            f"<FromUserName>{cdata(self._config.receive_id)}</FromUserName>"
            f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{cdata(text)}</Content></xml>"
        )
        encrypted, signature = self._crypto.seal(plain.encode("utf-8"), timestamp, nonce)
        return (
            f"<xml><Encrypt>{cdata(encrypted)}</Encrypt><MsgSignature>{cdata(signature)}</MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(nonce)}</Nonce></xml>"
        ).encode()
