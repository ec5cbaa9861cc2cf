"""Delivery and the runtime's own state: the outbox, the chat log, rate limits, seen messages,
signature uses, channel status and engine runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.schema.base import Base, BigId


class OutboxMessage(Base):
    """Every message the bot must post that is not an immediate reply.

    `key` is the idempotency key of the intent (e.g. ``notice:item42:grade:2``); the UNIQUE
    constraint makes any number of producers create it once.
    """

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    mentions: Mapped[list[Any]] = mapped_column(default=list)
    item_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # A reply to a platform message: the URL the platform gave for answering it (WeCom
    # response_url, DingTalk sessionWebhook) and until when it may be used.
    reply_url: Mapped[str | None] = mapped_column(Text)
    reply_url_expires_at: Mapped[datetime | None]
    # A reminder is re-checked just before sending: it is dropped when its clock has stopped or
    # its deadline has moved (re-grading) since it was queued.
    clock: Mapped[str | None] = mapped_column(String(16))
    clock_due: Mapped[datetime | None]
    late: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_outbox_status_due", "status", "due_at"),)


class ChatMessage(Base):
    """What was said in each chat, in order: inbound messages, replies and the bot's own posts.

    The local channel serves it as `GET /local/messages`; it is also the record of what the
    bot said where.
    """

    __tablename__ = "chat_messages"
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    sender: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    mentions: Mapped[list[Any]] = mapped_column(default=list)
    kind: Mapped[str] = mapped_column(String(16))

    __table_args__ = (Index("ix_chat_messages_chat_seq", "chat_id", "seq"),)


class RateKey(Base):
    """One row per rate-limited destination (a robot webhook): the lock taken while counting."""

    __tablename__ = "rate_keys"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)


class RateEvent(Base):
    """A send (or reserved slot) to a rate-limited destination."""

    __tablename__ = "rate_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]

    __table_args__ = (Index("ix_rate_events_key_at", "key", "at"),)


class InboundSeen(Base):
    """Platform message ids already handled, shared by all replicas (platforms retry and replay)."""

    __tablename__ = "inbound_seen"
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)


class SignatureUse(Base):
    """DingTalk callback signatures already used, with the msgIds they came with (shared by all
    replicas): the signature covers only its timestamp, so a captured pair could carry any body.
    A pair that comes back with another msgId more than a moment after its first use is refused.
    Rows go once their timestamp is outside the skew window (no such callback passes any more)."""

    __tablename__ = "signature_uses"
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    first_seen_at: Mapped[datetime]


class ChannelStatus(Base):
    """The last delivery outcome per channel and chat, for `dutybot doctor` and the admins."""

    __tablename__ = "channel_status"
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_ok_at: Mapped[datetime | None]
    last_error_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    config_error: Mapped[bool] = mapped_column(Boolean, default=False)


# -- the roster (值班表): operational data, imported and edited by chat and CLI ---------------------


class EngineRun(Base):
    """One occurrence of a scheduled engine module, done: the daily 16:00 reminder of a given day,
    a chat's 交接班 of a given shift. The primary key is the claim: a replica that inserts the row
    (in the transaction that does the work) runs the occurrence; any other finds it and skips, and a
    rolled-back run leaves no row, so the next cycle tries again."""

    __tablename__ = "engine_runs"
    module: Mapped[str] = mapped_column(String(64), primary_key=True)
    occurrence_key: Mapped[str] = mapped_column(String(160), primary_key=True)
    due_at: Mapped[datetime]  # when the occurrence was due
    done_at: Mapped[datetime] = mapped_column(index=True)  # when it ran (purged by age)
    late: Mapped[bool] = mapped_column(Boolean, default=False)  # run after its grace: a missed one (补发)
