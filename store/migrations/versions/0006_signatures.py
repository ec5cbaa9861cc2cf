"""DingTalk callback signatures already used (signature_uses).

A DingTalk callback's signature covers only the `timestamp` header, so a captured
(timestamp, sign) pair could carry any body. Each pair is remembered with the msgIds it came with
while its timestamp is within the skew window; replicas share the table.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signature_uses",
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "timestamp_ms", "message_id"),
    )


def downgrade() -> None:
    op.drop_table("signature_uses")
