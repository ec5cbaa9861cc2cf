"""SQLAlchemy 2 models. Times are stored as timezone-aware UTC.

The schema itself is created by Alembic migrations (store/migrations), never by create_all in
production code; tests use the same migrations.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite drops the zone, so it is put back on load."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use the injected clock")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BIGINT on PostgreSQL, but INTEGER on SQLite so that it is the rowid alias (autoincrement).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


def table_of(model: type[Base]) -> Table:
    """The model's Table, for Core statements on the hot path (no ORM compile step, no unit of
    work) that still use the model's column types (UTC datetimes, JSON)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class Counter(Base):
    """Per-deployment sequences (item numbers #N) advanced with UPDATE … RETURNING."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[int] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    link: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(16))
    grade: Mapped[str | None] = mapped_column(String(8))
    lead_unit_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    reported_by: Mapped[str] = mapped_column(String(64))
    reported_at: Mapped[datetime]
    grade_due_at: Mapped[datetime]
    graded_at: Mapped[datetime | None]
    graded_by: Mapped[str | None] = mapped_column(String(64))
    pass_on_due_at: Mapped[datetime | None]
    response_due_at: Mapped[datetime | None]
    assigned_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    responded_at: Mapped[datetime | None]
    response_form: Mapped[str | None] = mapped_column(String(16))
    response_link: Mapped[str | None] = mapped_column(Text)
    response_text: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    verdict: Mapped[str | None] = mapped_column(Text)
    merged_into: Mapped[int | None] = mapped_column(BigInteger)
    classified: Mapped[bool] = mapped_column(Boolean, default=False)
    referred_to: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[datetime]
    # The deadline sweep: when it must look at this item next, and up to when it has sent what
    # the clocks asked for (points after this instant are still to send).
    next_reminder_at: Mapped[datetime | None] = mapped_column(index=True)
    reminded_until: Mapped[datetime | None]
    # A hash of the normalised link (duplicate detection, handlers/links.py).
    link_key: Mapped[str | None] = mapped_column(String(64), index=True)
    # Set when a regrade put a deadline in the past: that deadline's overdue chain starts here.
    overdue_from: Mapped[datetime | None]
    # What a 涉密 item shows in groups; None: the standard wording.
    authorised_summary: Mapped[str | None] = mapped_column(Text)


class ItemUnit(Base):
    """Units an item is assigned to: one lead (牵头) and any co-units (配合)."""

    __tablename__ = "item_units"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    is_lead: Mapped[bool] = mapped_column(Boolean)
    position: Mapped[int] = mapped_column(Integer)


class ItemEvent(Base):
    """Append-only audit trail: who did what, when, with the before/after of what changed.

    item_id is null for events not tied to one item (e.g. a refused command).
    """

    __tablename__ = "item_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[dict[str, Any]] = mapped_column(default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PendingQuestion(Base):
    """A question the bot asked and waits for (e.g. the grade), one per platform+chat+user."""

    __tablename__ = "pending_questions"
    __table_args__ = (UniqueConstraint("platform", "chat_id", "user_id", name="uq_pending_who"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    asked_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


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


class RosterTemplate(Base):
    """A shift of a chat's roster on one day type: 白班 08:30–17:30 on 工作日, with its slots."""

    __tablename__ = "roster_templates"
    __table_args__ = (UniqueConstraint("chat_id", "name", "day_type", name="uq_roster_template"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(32))
    day_type: Mapped[str] = mapped_column(String(8))
    start_time: Mapped[str] = mapped_column(String(5))  # "08:30", local time of the deployment
    end_time: Mapped[str] = mapped_column(String(5))  # at or before start_time: the next day
    officers: Mapped[int] = mapped_column(Integer)
    leaders: Mapped[int] = mapped_column(Integer)


class RosterRotation(Base):
    """An ordered list of people taking turns in a role, advancing per shift, day or week."""

    __tablename__ = "roster_rotations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(8))
    shifts: Mapped[list[Any]] = mapped_column(default=list)  # shift names; empty: every shift
    people: Mapped[list[Any]] = mapped_column(default=list)
    advance: Mapped[str] = mapped_column(String(8))
    start_date: Mapped[date] = mapped_column(Date)


class RosterAssignment(Base):
    """The people of one role for one shift on one date, instead of the rotation's."""

    __tablename__ = "roster_assignments"
    __table_args__ = (UniqueConstraint("chat_id", "day", "shift", "role", name="uq_roster_assignment"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    shift: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(8))
    people: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))


class RosterOverride(Base):
    """A person replaces another in a chat for a time range (换班, 代班, or an admin's 排班)."""

    __tablename__ = "roster_overrides"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(64))
    replaces: Mapped[str] = mapped_column(String(64))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))  # swap | cover | admin | import
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_roster_overrides_chat_start", "chat_id", "start_at"),)


class RosterLeave(Base):
    """请假: the person is out of every rotation (of every chat) for the range."""

    __tablename__ = "roster_leaves"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))


class RosterShift(Base):
    """The resolved roster, materialised: one row per person, role and (part of a) shift.

    Regenerated for a window of dates whenever what decides it changes, so that "who is on duty
    at t" is one index range scan: start_at in (t - longest shift, t], then end_at > t.
    """

    __tablename__ = "roster_shifts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    shift: Mapped[str] = mapped_column(String(32))
    shift_start: Mapped[datetime]
    shift_end: Mapped[datetime]
    role: Mapped[str] = mapped_column(String(8))
    slot: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[str] = mapped_column(String(64))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_roster_shifts_chat_start", "chat_id", "start_at"),
        Index("ix_roster_shifts_chat_day", "chat_id", "day"),
        Index("ix_roster_shifts_person_start", "person_id", "start_at"),
    )


class RosterRollCall(Base):
    """点名: the bot asked the people on duty to answer 在; kept as the record of who answered when."""

    __tablename__ = "roster_roll_calls"
    __table_args__ = (UniqueConstraint("chat_id", "at", name="uq_roster_roll_call"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    due_at: Mapped[datetime] = mapped_column(index=True)
    people: Mapped[list[Any]] = mapped_column(default=list)
    leaders: Mapped[list[Any]] = mapped_column(default=list)
    answered_by: Mapped[str | None] = mapped_column(String(64))
    answered_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]


# -- the intake API (接口): source systems' tokens and the items they sent ---------------------------


class ApiToken(Base):
    """A source system's key to the intake API. Only the SHA-256 of the token is kept (it is shown
    once, at creation); `prefix` — its first characters — finds the row and tells tokens apart in
    listings without revealing anything that would let a request through."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("prefix", name="uq_api_tokens_prefix"),
        UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    # Touched at most once a minute (store/api_tokens.py): not a write per request.
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))


class ItemSource(Base):
    """Which item a source system's own record became: the same (system, external id) sent again
    finds the item instead of reporting it twice."""

    __tablename__ = "item_sources"
    source_system: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("items.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
