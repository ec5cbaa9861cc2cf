"""The roster (值班表): shift templates, rotations, assignments, overrides, leave, the resolved
shifts materialised for the lookup, and the roll-call records.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[Any]:
    return sa.Column("id", BIG_ID, autoincrement=True, nullable=False, primary_key=True)


def _at(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "roster_templates",
        _id(),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("day_type", sa.String(8), nullable=False),
        sa.Column("start_time", sa.String(5), nullable=False),
        sa.Column("end_time", sa.String(5), nullable=False),
        sa.Column("officers", sa.Integer(), nullable=False),
        sa.Column("leaders", sa.Integer(), nullable=False),
        sa.UniqueConstraint("chat_id", "name", "day_type", name="uq_roster_template"),
    )
    op.create_index("ix_roster_templates_chat_id", "roster_templates", ["chat_id"])
    op.create_table(
        "roster_rotations",
        _id(),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("shifts", sa.JSON(), nullable=False),
        sa.Column("people", sa.JSON(), nullable=False),
        sa.Column("advance", sa.String(8), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
    )
    op.create_index("ix_roster_rotations_chat_id", "roster_rotations", ["chat_id"])
    op.create_table(
        "roster_assignments",
        _id(),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("shift", sa.String(32), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("people", sa.JSON(), nullable=False),
        _at("created_at"),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.UniqueConstraint("chat_id", "day", "shift", "role", name="uq_roster_assignment"),
    )
    op.create_table(
        "roster_overrides",
        _id(),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("replaces", sa.String(64), nullable=False),
        _at("start_at"),
        _at("end_at"),
        sa.Column("kind", sa.String(16), nullable=False),
        _at("created_at"),
        sa.Column("created_by", sa.String(64), nullable=False),
    )
    op.create_index("ix_roster_overrides_chat_start", "roster_overrides", ["chat_id", "start_at"])
    op.create_table(
        "roster_leaves",
        _id(),
        sa.Column("person_id", sa.String(64), nullable=False),
        _at("start_at"),
        _at("end_at"),
        sa.Column("reason", sa.Text(), nullable=False),
        _at("created_at"),
        sa.Column("created_by", sa.String(64), nullable=False),
    )
    op.create_index("ix_roster_leaves_person_id", "roster_leaves", ["person_id"])
    op.create_table(
        "roster_shifts",
        _id(),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("shift", sa.String(32), nullable=False),
        _at("shift_start"),
        _at("shift_end"),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        _at("start_at"),
        _at("end_at"),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_roster_shifts_chat_start", "roster_shifts", ["chat_id", "start_at"])
    op.create_index("ix_roster_shifts_chat_day", "roster_shifts", ["chat_id", "day"])
    op.create_index("ix_roster_shifts_person_start", "roster_shifts", ["person_id", "start_at"])
    op.create_table(
        "roster_roll_calls",
        _id(),
        sa.Column("chat_id", sa.String(64), nullable=False),
        _at("at"),
        _at("due_at"),
        sa.Column("people", sa.JSON(), nullable=False),
        sa.Column("leaders", sa.JSON(), nullable=False),
        sa.Column("answered_by", sa.String(64), nullable=True),
        _at("answered_at", nullable=True),
        _at("escalated_at", nullable=True),
        sa.UniqueConstraint("chat_id", "at", name="uq_roster_roll_call"),
    )
    op.create_index("ix_roster_roll_calls_due_at", "roster_roll_calls", ["due_at"])
    # Bumped by every change of roster_shifts; lookup caches compare it.
    counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
    op.bulk_insert(counters, [{"name": "roster", "value": 0}])


def downgrade() -> None:
    op.execute("DELETE FROM counters WHERE name = 'roster'")
    op.drop_index("ix_roster_roll_calls_due_at", table_name="roster_roll_calls")
    op.drop_table("roster_roll_calls")
    for index in ("ix_roster_shifts_person_start", "ix_roster_shifts_chat_day", "ix_roster_shifts_chat_start"):
        op.drop_index(index, table_name="roster_shifts")
    op.drop_table("roster_shifts")
    op.drop_index("ix_roster_leaves_person_id", table_name="roster_leaves")
    op.drop_table("roster_leaves")
    op.drop_index("ix_roster_overrides_chat_start", table_name="roster_overrides")
    op.drop_table("roster_overrides")
    op.drop_table("roster_assignments")
    op.drop_index("ix_roster_rotations_chat_id", table_name="roster_rotations")
    op.drop_table("roster_rotations")
    op.drop_index("ix_roster_templates_chat_id", table_name="roster_templates")
    op.drop_table("roster_templates")
