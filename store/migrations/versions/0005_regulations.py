"""Regulation fidelity: duplicate links, the overdue chain after a regrade, the 涉密 summary.

- items.link_key: a hash of the normalised link, so the same link reported again within the
  duplicate window is found by one index lookup (the link itself may be any length).
- items.overdue_from: when a regrade put a deadline in the past, the overdue chain of that
  deadline starts here instead of at the (past) deadline.
- items.authorised_summary: the summary a 涉密 item shows in groups (001 第十七条); null means
  the standard wording.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("link_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("overdue_from", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("authorised_summary", sa.Text(), nullable=True))
        batch.create_index("ix_items_link_key", ["link_key"])


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_index("ix_items_link_key")
        batch.drop_column("authorised_summary")
        batch.drop_column("overdue_from")
        batch.drop_column("link_key")
