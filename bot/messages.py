"""Neutral messages: what every channel translates to and from. No platform detail here."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    message_id: str | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    mentions: tuple[str, ...] = ()  # configured person ids, in the order they are named


@dataclass(frozen=True)
class OutboundMessage:
    """A message to post in a chat, as the outbox hands it to a channel."""

    chat_id: str
    text: str
    mentions: tuple[str, ...] = ()
    key: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
