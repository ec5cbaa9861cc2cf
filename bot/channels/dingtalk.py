"""DingTalk: the enterprise-internal app robot receives, the custom robot (加签) sends.

Receive, HTTP callback mode: POST /callback/dingtalk/<channel id>
    Content-Length checked, then the `timestamp`/`sign` headers (HMAC of the AppSecret, clock
    skew at most max_skew_seconds), and only then the body is read and parsed: 413 / 401 / 400.
    The signature covers only the timestamp, so a (timestamp, sign) pair that comes back with
    another msgId more than 2 s after its first use is refused too (401; bot/channels/dingtalk_replay.py).
    The body is parsed into its pydantic model (bot/channels/dingtalk_payloads.py); a message for
    another robot or organisation than the configured app's is refused (403). The message then
    takes the shared pipeline (bot/channels/pipeline.py): a stranger is answered once on the
    sessionWebhook, a configured chat and person's message is recorded (de-duplicated by msgId in
    the database) or spooled, its replies queued in the outbox; the callback answers 200 `{}`
    without waiting on a send.
Receive, Stream mode: the same parsing and pipeline, fed by bot/channels/dingtalk_stream.py; the
    frame is acked when the message is kept, without waiting on a send.
Send: one DingtalkSender per chat (bot/channels/dingtalk_send.py).

A sessionWebhook is kept only when it is DingTalk's own endpoint (bot/channels/reply_urls.py) and
its expiry is a plausible time; otherwise it is dropped here and never stored.
Secrets (AppSecret, webhook access_token, 加签 secret, signatures, session URLs) never reach logs
or delivery details.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from pydantic import ValidationError

from bot.channels import reply_urls
from bot.channels.base import Channel, ChannelStartError, Check, DeliveryResult, Sender, clip, read_secrets
from bot.channels.dingtalk_payloads import RobotMessage as RobotMessage
from bot.channels.dingtalk_payloads import RobotPayload
from bot.channels.dingtalk_payloads import parse_robot_message as parse_robot_message
from bot.channels.dingtalk_replay import SignatureGuard
from bot.channels.dingtalk_send import MAX_POST_BODY as MAX_POST_BODY
from bot.channels.dingtalk_send import BodyBuilder as BodyBuilder
from bot.channels.dingtalk_send import DingtalkSender as DingtalkSender
from bot.channels.dingtalk_send import Mentions as Mentions
from bot.channels.dingtalk_send import classify as classify
from bot.channels.dingtalk_send import post_json as post_json
from bot.channels.dingtalk_send import resolve_mentions as resolve_mentions
from bot.channels.dingtalk_send import scrub as scrub
from bot.channels.dingtalk_send import serialize as serialize
from bot.channels.dingtalk_send import session_usable as session_usable
from bot.channels.dingtalk_sign import epoch_ms, parse_timestamp, verify_callback
from bot.channels.dingtalk_stream import StreamReceiver, gateway_endpoint, load_sdk
from bot.channels.payloads import error_fields
from bot.channels.pipeline import Arrival, ChannelRuntime, Door, Labels
from bot.runtime import Runtime
from domain.config import DingtalkChannelConfig
from domain.vocab import Platform

log = logging.getLogger(__name__)

MAX_CALLBACK_BODY = 64 * 1024  # the app's client_max_size; checked early from Content-Length
# A sessionWebhook lives about 90 minutes; an expiry further ahead than this is not believed.
SESSION_LIFETIME_LIMIT = timedelta(hours=6)
# How the platform names the ids in the pipeline's log lines (the admin copies them into the config).
LABELS = Labels(chat_type="conversationType", chat="conversationId", user="senderStaffId")

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
SIGNATURE_REUSED = "该签名已被另一条消息使用过，请求被拒绝。"
FOREIGN_ROBOT = "消息不是发给本应用机器人的，请求被拒绝。"


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
        self, config: DingtalkChannelConfig, runtime: ChannelRuntime, settings: Settings,
        senders: Mapping[str, DingtalkSender], chat_webhooks: Mapping[str, str | None],
    ) -> None:
        self.id = config.id
        self.config = config
        self.runtime = runtime
        self.settings = settings
        self._senders = dict(senders)
        self._chat_webhooks = dict(chat_webhooks)
        self._door = Door(config.id, Platform.DINGTALK, frozenset(config.chats), self, LABELS)
        self._sessions = reply_urls.ReplyEndpoint.of(**reply_urls.DINGTALK, configured=settings.webhook)
        self._builder = BodyBuilder(config.message_format)
        self.guard = SignatureGuard(channel_id=config.id, runtime=runtime,
                                    max_skew=timedelta(seconds=config.max_skew_seconds))
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
        message = self._parse(_json(raw), "a signed callback")
        if message is None:
            return _error(BAD_BODY, 400)
        if not self.ours(message):
            return _error(FOREIGN_ROBOT, 403)
        timestamp = parse_timestamp(request.headers.get("timestamp"))
        if timestamp is None or not await self.guard.admit(timestamp, message.msg_id):
            return _error(SIGNATURE_REUSED, 401)
        # The replies are queued in the outbox and posted after this answer: `{}` never waits on a send.
        await self.receive(message)
        return web.json_response({})

    # -- both modes ----------------------------------------------------------------------------------------------

    async def on_stream_message(self, data: Any) -> bool:
        """Stream mode: the `data` of a robot-message frame, handled exactly like a callback body
        (the SDK acks the frame when this returns; False: a 400 ack for a malformed message)."""
        message = self._parse(data, "a stream message")
        if message is None or not self.ours(message):
            return False
        await self.receive(message)
        return True

    def _parse(self, data: object, what: str) -> RobotMessage | None:
        try:
            return RobotPayload.model_validate(data).message()
        except ValidationError as exc:
            log.warning("dingtalk %s: %s with a malformed body was refused (%s)", self.id, what, error_fields(exc))
            return None

    def ours(self, message: RobotMessage) -> bool:
        """Whether the message was sent to this app's robot in this organisation, as far as the
        config names them (robot_code, else the app key; corp_id). The callback's signature covers
        only its timestamp, so a captured header pair could carry a body meant for another robot."""
        expected = (("robotCode", self.config.robot_code or self.settings.app_key, message.robot_code),
                    ("chatbotCorpId", self.config.corp_id, message.corp_id))
        for field, want, got in expected:
            if want is not None and got != want:
                self.runtime.metrics.foreign_robot_refused.labels(channel=self.id).inc()
                log.warning("dingtalk %s: message %s refused: %s %s is not the configured one", self.id,
                            clip(message.msg_id), field, clip(got))
                return False
        return True

    async def receive(self, message: RobotMessage) -> None:
        """Translate to the neutral arrival and take the shared pipeline (bot/channels/pipeline.py):
        a stranger is answered once, a known sender's message recorded (or spooled) and dispatched."""
        reply_url = self._reply_url(message)
        arrival = Arrival(
            message_id=message.msg_id, chat_id=message.conversation_id, chat_type=message.conversation_type,
            group=message.conversation_type == "2", user_id=message.staff_id, text=message.text,
            reply_url=reply_url, reply_url_expires_at=message.session_expires_at if reply_url else None,
        )
        await self.runtime.pipeline.receive(self._door, arrival)

    def _reply_url(self, message: RobotMessage) -> str | None:
        """The sessionWebhook, if it is DingTalk's session endpoint and has not expired.

        The callback signature does not cover the body, so a replayed signature could carry any
        URL: anything but DingTalk's own endpoint is dropped here and never stored (the reply goes
        to the custom robot instead). An expiry in the past, or further ahead than any session
        lives, drops it too.
        """
        if message.session_webhook is None:
            return None
        url = self._sessions.accept(message.session_webhook)
        if url is None:
            self.runtime.metrics.reply_urls_dropped.labels(channel=self.id).inc()
            log.warning("dingtalk %s: message %s has a sessionWebhook that is not DingTalk's session endpoint; "
                        "not used", self.id, clip(message.msg_id))
            return None
        now, expires = self.runtime.clock.now(), message.session_expires_at
        if expires is None or not now < expires <= now + SESSION_LIFETIME_LIMIT:
            log.info("dingtalk %s: message %s has a sessionWebhook already expired or with an implausible expiry; "
                     "not used", self.id, clip(message.msg_id))
            return None
        return url

    async def answer(self, arrival: Arrival, reply_url: str, text: str) -> DeliveryResult:
        """One answer on the sessionWebhook, recording nothing (a stranger's message)."""
        if not session_usable(arrival.reply_url_expires_at, self.runtime.clock.now()):
            return DeliveryResult(ok=False, detail="sessionWebhook 即将过期，不再使用")
        result = DeliveryResult(ok=False, detail="nothing to send")
        for body in self._builder.bodies(text, Mentions()):
            result = await post_json(self.runtime.http, reply_url, serialize(body), _secret_values(self.settings))
            if not result.ok:
                break
        return result


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
    narrow = runtime.for_channels()  # all the channel and its senders may use of the runtime
    builder = BodyBuilder(config.message_format)
    secrets = list(_secret_values(settings))
    secrets += [t for _, url, _ in webhooks.values() if url and (t := _access_token(url))]
    secrets += [s for _, _, s in webhooks.values() if s]
    senders = {
        chat_id: DingtalkSender(
            channel_id=config.id, runtime=narrow, webhook=url or settings.webhook,
            # A chat's own robot has its own 加签 secret (chats[].secret_env); without one the
            # channel's secret is tried.
            secret=secret or settings.secret, builder=builder, secrets=secrets,
        )
        for chat_id, (_, url, secret) in webhooks.items()
    }
    channel = DingtalkChannel(config, narrow, settings, senders, {c: env for c, (env, _, _) in webhooks.items()})
    if config.mode == "stream":
        assert settings.app_key is not None
        channel.stream = StreamReceiver(
            channel_id=config.id, client_id=settings.app_key, client_secret=settings.app_secret,
            endpoint=gateway_endpoint(environ), sdk=load_sdk(config.id), http=narrow.client,
            on_message=channel.on_stream_message,
        )
    return channel
