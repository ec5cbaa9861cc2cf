"""Deadline reminders: the sweep's position per item, clock facts on outbox rows, rate limits.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("next_reminder_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reminded_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_items_next_reminder_at", ["next_reminder_at"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("clock", sa.String(16), nullable=True))
        batch.add_column(sa.Column("clock_due", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table("rate_keys", sa.Column("key", sa.String(128), primary_key=True))
    op.create_table(
        "rate_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rate_events_key_at", "rate_events", ["key", "at"])
    # Items reported before this migration get their clocks looked at on the first sweep.
    op.execute("UPDATE items SET next_reminder_at = reported_at, reminded_until = reported_at")


def downgrade() -> None:
    op.drop_index("ix_rate_events_key_at", table_name="rate_events")
    op.drop_table("rate_events")
    op.drop_table("rate_keys")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("late")
        batch.drop_column("clock_due")
        batch.drop_column("clock")
    with op.batch_alter_table("items") as batch:
        batch.drop_index("ix_items_next_reminder_at")
        batch.drop_column("reminded_until")
        batch.drop_column("next_reminder_at")
