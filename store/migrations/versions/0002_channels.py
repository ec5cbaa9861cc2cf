"""Platform channels: inbound de-duplication, delivery status, reply URLs on outbox rows.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_seen",
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "message_id"),
    )
    op.create_index("ix_inbound_seen_seen_at", "inbound_seen", ["seen_at"])
    op.create_table(
        "channel_status",
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("config_error", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "chat_id"),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("reply_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reply_url_expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("reply_url_expires_at")
        batch.drop_column("reply_url")
    op.drop_table("channel_status")
    op.drop_index("ix_inbound_seen_seen_at", table_name="inbound_seen")
    op.drop_table("inbound_seen")
