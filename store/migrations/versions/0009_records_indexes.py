"""Indexes for the records of issue #16: the 定期通报 over a month of 100,000 items in under 2 s.

- item_events (item_id, action, at): the steps of a run of items (their 签收, 回应, ends, 转办 …)
  are summed up from this index alone, without reading the rows (store/records_clocks.py).
- item_events (action, at): the rows of one kind in a window of time — the reports, the gradings,
  the reminders delivered, the 零报告 — without reading every other row of the window.
- items (reported_at): the items reported in a window.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_item_events_item_action_at", "item_events", ["item_id", "action", "at"])
    op.create_index("ix_item_events_action_at", "item_events", ["action", "at"])
    op.create_index("ix_items_reported_at", "items", ["reported_at"])


def downgrade() -> None:
    op.drop_index("ix_items_reported_at", table_name="items")
    op.drop_index("ix_item_events_action_at", table_name="item_events")
    op.drop_index("ix_item_events_item_action_at", table_name="item_events")
