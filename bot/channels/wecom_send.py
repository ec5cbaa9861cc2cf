"""WeCom (企业微信), sending: group robot posts and response_url answers.

One WecomSender per chat posts on the message's response_url when that fits (once, within its
hour, a reply that @-mentions nobody), else on the chat's group robot. Success is errcode 0 only.
Long text is split by UTF-8 bytes at line ends, with the mentions on the last part. The text is
neutralised first (bot/channels/mentions.py): `<@userid>` or `@all` written by a user mentions
nobody, only the people the bot chose are mentioned.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from bot.channels.base import DeliveryResult
from bot.channels.mentions import neutralise
from bot.channels.pipeline import ChannelRuntime
from domain.config import ChatConfig
from domain.directory import Directory
from domain.messages import OutboundMessage

log = logging.getLogger(__name__)

TEXT_LIMIT = 2048  # bytes of text.content (UTF-8)
MARKDOWN_LIMIT = 4096  # bytes of markdown.content
REPLY_URL_LIMIT = 20480  # bytes of markdown.content on response_url
RETRYABLE_CODES = frozenset({-1, 45009, 45033})  # busy, rate limit (20/min), too many concurrent calls
PROGRESS_ENTRIES = 1000
SECRET_IN_TEXT = re.compile(r"https?://\S+|\b(key|response_code|access_token)=[^&\s,;]+", re.IGNORECASE)
NO_WEBHOOK = "群 {chat} 未配置群机器人 webhook（环境变量 {env}）"


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
    message that must reach someone by mobile goes out as text. The text is neutralised before
    the mention markup is added: only `mentions` are mentioned, whatever the text contains.
    """
    text = neutralise(text)
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
    """A response_url answer (the AI bot's markdown; at most 20,480 bytes). It mentions nobody:
    a `<@userid>` written by a user is neutralised like everywhere else."""
    return {"msgtype": "markdown", "markdown": {"content": neutralise(text)}}


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
        self, *, channel_id: str, runtime: ChannelRuntime, webhook: URL | None, webhook_env: str, message_format: str
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

    async def send_reply(self, chat: ChatConfig, message: OutboundMessage) -> DeliveryResult | None:
        """Post on the message's response_url only, never on the group robot; None when that URL
        cannot carry it. The outbox calls this first and, when refused, posts on the robot itself
        (`send` without the reply URL) after reserving the robot's rate slots."""
        reply_url = self._usable_reply_url(message)
        if reply_url is None:
            return None
        return await post_json(self._runtime.http, URL(reply_url), reply_payload(message.text))

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
            and utf8_size(reply_payload(message.text)["markdown"]["content"]) <= REPLY_URL_LIMIT
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
