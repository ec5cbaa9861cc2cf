"""Neutral messages: what every channel translates to and from. No platform detail here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.vocab import Platform


@dataclass(frozen=True)
class InboundMessage:
    platform: Platform
    chat_id: str  # the configured chat id, not the platform's
    sender_id: str  # the configured person id, or the raw platform user id when unknown
    text: str
    received_at: datetime
    mentions_bot: bool = False
    # Set by platform channels: the channel id and the platform's message id (for de-duplication).
    # When set, replies are queued in the outbox in the same transaction instead of being returned
    # for an immediate answer, so that a crash after the commit still delivers them.
    channel: str | None = None
    message_id: str | None = None
    # The platform's URL for answering this message (WeCom response_url, DingTalk sessionWebhook).
    reply_url: str | None = None
    reply_url_expires_at: datetime | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    mentions: tuple[str, ...] = ()  # configured person ids, in the order they are named


@dataclass(frozen=True)
class OutboundMessage:
    """A message to post in a chat, as the outbox hands it to a channel."""

    chat_id: str
    text: str
    mentions: tuple[str, ...] = ()  # configured person ids
    key: str | None = None  # the idempotency key of the intent
    reply_url: str | None = None
    reply_url_expires_at: datetime | None = None


@dataclass(frozen=True)
class Handled:
    """What became of an inbound message."""

    replies: tuple[Reply, ...] = ()
    duplicate: bool = False  # already handled before (a platform retry or a replay): nothing done
