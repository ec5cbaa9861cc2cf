"""Outgoing webhooks: the events handlers/ops/publish.py queued, posted signed to the subscribers'
URLs through the outbox (bot/outbox.py), like any message — claimed, posted lane by lane (one
lane per subscriber), retried with the outbox's backoff and recorded — with the differences an
endpoint has (bot/outbox_parts.Endpoint): its own rate budget, no digests, no chat log.

Each request carries the body as queued and four headers: X-Dutybot-Event (the type),
X-Dutybot-Delivery (the event id, the same on every retry), X-Dutybot-Timestamp (unix seconds,
when this attempt was signed) and X-Dutybot-Signature: v1=<hex HMAC-SHA256(secret,
"{timestamp}.{body}")>. A receiver recomputes the signature over the raw body, compares it in
constant time, rejects a timestamp more than TOLERANCE_SECONDS away and dedupes on the id (the
recipe: bot/examples/webhook_receiver.py, quoted in the README).

A 2xx is delivered. 408, 429, 5xx, a timeout or a connection failure are retried; any other
answer (4xx, a redirect, which is not followed) is final: the row fails and the admins are told.
The URL (which may carry a token) and the secret never reach a log or a row: a failure is
recorded by its status code or error type, an address by its host and path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import ChannelStartError, DeliveryResult
from bot.clock import Clock
from domain.config import ChatConfig, Config, WebhookSubscriber
from domain.config.webhooks import target_of
from domain.directory import Directory
from domain.messages import OutboundMessage
from domain.vocab import Platform, Role
from store import outbox
from store.models import OutboxMessage

log = logging.getLogger(__name__)

CHANNEL = "webhooks"
TOLERANCE_SECONDS = 300  # what receivers are told to accept (README); signed at each attempt
# Per subscriber, shared by the replicas like a robot's budget: enough for a burst of intake
# (a batch of 500 items goes out within a minute), gentle on a receiver that answers slowly.
RATE_LIMIT = 600
RATE_WINDOW = timedelta(seconds=60)
SECRET_MIN = 16
USER_AGENT = "dutybot-webhooks/1"
RETRIED = frozenset({408, 429})

OFF = "对外推送 {id} 未启用：环境变量 {url_env}、{secret_env} 均未设置。"
NO_SECRET = (
    "对外推送 {id} 缺少签名密钥：已设置地址 {url_env}，未设置 {secret_env}。不发送未签名的事件，服务拒绝启动；"
    "请设置签名密钥，或同时取消地址以关闭该订阅。"
)
NO_URL = (
    "对外推送 {id} 缺少地址：已设置签名密钥 {secret_env}，未设置 {url_env}。"
    "请设置地址，或同时取消签名密钥以关闭该订阅。"
)
BAD_URL = "对外推送 {id} 的地址（环境变量 {url_env}）不是完整的 http 或 https 地址。"
WEAK_SECRET = (
    "对外推送 {id} 的签名密钥（环境变量 {secret_env}）过短：至少 {n} 个字符，可用 `openssl rand -hex 32` 生成。"
)
REFUSED_ALERT = (
    "【系统告警】对外推送“{id}”的接收方拒收事件（{detail}），该事件不再重发：{type}（编号 {event}）。\n"
    "请管理员核对该订阅的地址（环境变量 {url_env}）和签名密钥，或请接收方检查验签与处理。同一订阅每小时至多告警一次。"
)


@dataclass(frozen=True)
class Endpoint:
    """A subscriber that is on: its URL and secret, read from the environment."""

    subscriber: WebhookSubscriber
    url: str
    secret: str

    @property
    def where(self) -> str:
        """The address for a log line: scheme, host and path, without credentials or query."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


def read_endpoints(config: Config, environ: Mapping[str, str]) -> tuple[list[Endpoint], list[str]]:
    """The subscribers that are on, and a line for each that is off (neither variable set).

    Raises ChannelStartError for a subscriber with only one of its variables, a URL that is not
    http(s) or a short secret: events are never posted unsigned or weakly signed (fail closed)."""
    endpoints: list[Endpoint] = []
    off: list[str] = []
    for sub in config.webhooks:
        names = {"id": sub.id, "url_env": sub.url_env, "secret_env": sub.secret_env}
        url, secret = environ.get(sub.url_env, "").strip(), environ.get(sub.secret_env, "").strip()
        if not url and not secret:
            off.append(OFF.format(**names))
            continue
        if not secret:
            raise ChannelStartError(NO_SECRET.format(**names))
        if not url:
            raise ChannelStartError(NO_URL.format(**names))
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ChannelStartError(BAD_URL.format(**names))
        if len(secret) < SECRET_MIN:
            raise ChannelStartError(WEAK_SECRET.format(n=SECRET_MIN, **names))
        endpoints.append(Endpoint(sub, url, secret))
    return endpoints, off


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """hex HMAC-SHA256 of "{timestamp}.{body}" with the subscriber's secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def result_of(status: int) -> DeliveryResult:
    if 200 <= status < 300:
        return DeliveryResult(ok=True, detail=f"HTTP {status}")
    if status in RETRIED or status >= 500:
        return DeliveryResult(ok=False, retryable=True, detail=f"HTTP {status}")
    # A redirect is not followed (the signed event would go where the config does not say).
    return DeliveryResult(ok=False, detail=f"HTTP {status}")


class WebhookSender:
    """Posts one subscriber's events (an outbox Endpoint)."""

    channel_id = CHANNEL
    rate_limit = RATE_LIMIT
    rate_window = RATE_WINDOW

    def __init__(
        self, endpoint: Endpoint, *, http: Callable[[], aiohttp.ClientSession], clock: Clock, directory: Directory
    ) -> None:
        self.endpoint = endpoint
        self._http = http  # the runtime's client, open while the app runs
        self.clock = clock
        self.directory = directory
        sub = endpoint.subscriber
        # What the outbox routes the rows by: no chat has this id (it holds a colon), and the URL's
        # variable names the lane and the rate budget, as a chat's robot webhook does.
        self.target = ChatConfig.model_construct(
            id=target_of(sub.id), platform=Platform.LOCAL, name=f"对外推送 {sub.id}", webhook_env=sub.url_env
        )

    def headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        envelope = json.loads(body)
        return {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-Dutybot-Event": envelope["type"],
            "X-Dutybot-Delivery": envelope["id"],
            "X-Dutybot-Timestamp": str(timestamp),
            "X-Dutybot-Signature": f"v1={sign(self.endpoint.secret, timestamp, body)}",
        }

    async def send(self, chat: ChatConfig, message: OutboundMessage) -> DeliveryResult:
        body = message.text.encode()
        # Signed at each attempt: a retry an hour later carries a fresh timestamp, the same id.
        headers = self.headers(body, int(self.clock.now().timestamp()))
        try:
            async with self._http().post(self.endpoint.url, data=body, headers=headers,
                                         allow_redirects=False) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The exception's text names the URL: only its type is recorded.
            return DeliveryResult(ok=False, retryable=True, detail=f"连接失败：{type(exc).__name__}")
        return result_of(status)

    async def refused(
        self, session: AsyncSession, *, row: OutboxMessage, result: DeliveryResult, now: datetime
    ) -> None:
        """The receiver refused an event for good: tell the admins, once an hour per subscriber."""
        sub = self.endpoint.subscriber
        envelope = json.loads(row.text)
        log.error("webhook %s refused event %s (%s) at %s: not retried", sub.id, envelope["id"], result.detail,
                  self.endpoint.where)
        chats = self.directory.admin_chats()
        if not chats:
            log.error("no admins' chat to report webhook %s's refusal: configure a chat with admins = true", sub.id)
        admins = [person.id for person in self.directory.people_with(Role.ADMIN)]
        text = REFUSED_ALERT.format(id=sub.id, detail=result.detail, type=envelope["type"], event=envelope["id"],
                                    url_env=sub.url_env)
        for chat in chats:
            await outbox.enqueue(session, key=f"alert:webhook:{sub.id}:{now:%Y%m%d%H}:{chat.id}", chat_id=chat.id,
                                 text=text, mentions=admins, now=now)


def senders(
    endpoints: Sequence[Endpoint], *, http: Callable[[], aiohttp.ClientSession], clock: Clock, directory: Directory
) -> dict[str, WebhookSender]:
    """target → sender, for the outbox worker (OutboxWorker.add_senders)."""
    built = [WebhookSender(endpoint, http=http, clock=clock, directory=directory) for endpoint in endpoints]
    return {sender.target.id: sender for sender in built}
