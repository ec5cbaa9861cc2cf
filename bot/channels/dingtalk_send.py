"""DingTalk, sending: the bodies of robot posts and the sender that posts them.

A reply goes to the message's sessionWebhook while it is valid, everything else to the custom
robot webhook with timestamp+sign. Success is errcode 0 only. Text is split on line boundaries so
that every serialized body stays within DingTalk's 20,000 bytes, with the `at` object and the
@-tokens on the last post; the text itself is neutralised first (bot/channels/mentions.py), so
only the people the bot chose are mentioned, whatever a report contains.

Secrets (webhook access_token, 加签 secret, signatures, session URLs) never reach logs or
delivery details.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from yarl import URL

from bot.channels.base import DeliveryResult
from bot.channels.dingtalk_sign import epoch_ms, signed_webhook_url
from bot.channels.mentions import neutralise
from bot.channels.pipeline import ChannelRuntime
from domain.config import ChatConfig
from domain.directory import Directory
from domain.messages import OutboundMessage

log = logging.getLogger(__name__)

MAX_POST_BODY = 20_000  # DingTalk's limit on a robot post, in bytes of the serialized JSON
# Do not start a post on a sessionWebhook that expires within this margin: use the robot instead.
SESSION_MARGIN = timedelta(seconds=30)
TITLE_CHARS = 20

# errcodes: 130101 "send too fast" (20 posts/min, then blocked 10 min); -1 "system busy".
RETRYABLE_CODES = frozenset({130101, -1})
# 310000 sign/keywords/IP check failed; 300001/300005 token does not exist.
CONFIG_CODES = frozenset({310000, 300001, 300005})
DEFAULT_TITLE = "值班助手通知"

# -- bodies ---------------------------------------------------------------------------------------------


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
        # What users wrote may hold "@all" or "@<userId>": neutralised before the bot adds its own.
        text = neutralise(text)
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


# -- posting --------------------------------------------------------------------------------------------


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
        self, *, channel_id: str, runtime: ChannelRuntime, webhook: str, secret: str, builder: BodyBuilder,
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

    async def send_reply(self, chat: ChatConfig, message: OutboundMessage) -> DeliveryResult | None:
        """Post on the message's sessionWebhook only, never on the custom robot; None when the
        session cannot be used. The outbox calls this first and, when refused, posts on the robot
        itself (`send` without the reply URL) after reserving the robot's rate slots."""
        reply_url = message.reply_url
        if not reply_url or not session_usable(message.reply_url_expires_at, self.runtime.clock.now()):
            return None
        mentions = resolve_mentions(message.mentions, self.runtime.directory)
        bodies = [serialize(body) for body in self.builder.bodies(message.text, mentions)]
        return await self._post_all(bodies, lambda: reply_url)

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

