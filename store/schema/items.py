"""Items: their numbering, units, audit trail, pending questions and the source records they came from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.schema.base import Base, BigId


class Counter(Base):
    """Per-deployment sequences (item numbers #N) advanced with UPDATE … RETURNING."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Item(Base):
    __tablename__ = "items"
    # The items reported in a window (the records of issue #16; migration 0009).
    __table_args__ = (Index("ix_items_reported_at", "reported_at"),)
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
    # The records of issue #16 read the trail by item and kind, and by kind and time (migration 0009).
    __table_args__ = (
        Index("ix_item_events_item_action_at", "item_id", "action", "at"),
        # Migration 0010 also adds dialect-specific partial indexes for the 定期通报 (reminders,
        # urges, the facts' rows with their JSON): they live in the migration alone.
        Index("ix_item_events_action_at_item", "action", "at", "item_id"),
    )
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


class ItemSource(Base):
    """Which item a source system's own record became: the same (system, external id) sent again
    finds the item instead of reporting it twice."""

    __tablename__ = "item_sources"
    source_system: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("items.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]


# -- the engine (定时任务): which scheduled occurrences have been done --------------------------------
