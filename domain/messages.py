"""Neutral messages: what every channel translates to and from. No platform detail here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from domain.vocab import Platform

# A platform message id longer than this is replaced by a digest of it: ids are stored in columns
# of fixed width (inbound_seen.message_id, the outbox key "reply:<channel>:<id>:<n>"), and a
# truncated id could make two messages one.
MAX_MESSAGE_ID = 64
_HASHED = "sha256:"


def clean_text(value: str) -> str:
    """Text fit for any database and any log: a lone surrogate (JSON can carry "\\ud800") becomes
    U+FFFD and NUL characters (PostgreSQL refuses them in text) are dropped; all else is kept."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Pairs written as two escapes are joined; a surrogate without its partner is replaced.
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value.replace("\x00", "") if "\x00" in value else value


def message_key(message_id: str) -> str:
    """The id as stored: cleaned, and replaced by a digest when it is longer than MAX_MESSAGE_ID
    (deterministic, so a retry of the same message still finds its record)."""
    cleaned = clean_text(message_id)
    if len(cleaned) <= MAX_MESSAGE_ID and cleaned == message_id:
        return message_id
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
    return _HASHED + digest[: MAX_MESSAGE_ID - len(_HASHED)]


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

    def __post_init__(self) -> None:
        # Every door builds this message, so cleaning here covers them all (and the spool's
        # replays): text with invalid Unicode or NUL is kept cleaned, never refused or lost.
        object.__setattr__(self, "text", clean_text(self.text))
        object.__setattr__(self, "sender_id", clean_text(self.sender_id))
        if self.message_id is not None:
            object.__setattr__(self, "message_id", message_key(self.message_id))


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
    spooled: bool = False  # kept in the local spool while the database cannot be written


class NotKept(Exception):
    """A message could be kept neither in the database nor in the spool: the caller must fail
    (HTTP 503, or no ack on DingTalk Stream) so that the platform or client sends it again."""
