"""The duty roster: templates, rotations, assignments, overrides, leave, resolved shifts and roll calls."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.schema.base import Base, BigId


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
