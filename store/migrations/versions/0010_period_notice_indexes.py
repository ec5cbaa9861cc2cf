"""Indexes for the 定期通报 of issue #16 (point 7: a month of 100,000 items in under 2 s).

- Partial indexes of the reminders delivered. A notice counts 提醒 and 催办 per unit; which notices
  are reminders, and which of them 催办, is in their audit row's JSON (the key,
  handlers/deadline_rules.Point.key). Reading that key from every notice of a month was the
  costliest part of the notice. These two indexes hold, by (at, item_id), the notices whose key is
  a 提醒's and a 催办's: the notice counts them from the index, without reading a row
  (store/records_clocks.py `reminder_counts`). The audit rows themselves are unchanged and nothing
  is kept on the side: the database derives the index from each row as it is written. The
  conditions are word for word those of store/records_clocks.py `reminder_condition` (a planner
  uses a partial index only for a query that repeats its condition); a revision is written once,
  so they are copied here, and tests/test_records_indexes.py holds the two together.
- 0009's (action, at) becomes (action, at, item_id): the rows of one kind in a window with their item
  (a month's 签收, 回应, ends) from the index alone, without reading each row for its item. It serves
  every query the former did; one index replaces the other, so writing a row costs no more.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FACTS = ("reported", "graded", "regraded", "assigned", "returned")
_KEY = {"sqlite": """json_extract("after", '$.key')""", "postgresql": """("after" ->> 'key')"""}
INDEXES = {"ix_item_events_reminders": False, "ix_item_events_urges": True}


def _condition(dialect: str, overdue: bool) -> str:
    key = _KEY[dialect]
    return (f"action = 'notice' AND item_id IS NOT NULL AND {key} LIKE 'remind:%' "
            f"AND {key} NOT LIKE 'remind:item%:grade:%' AND length({key}) - length(replace({key}, ':', '')) = 5 "
            f"AND {key} {'' if overdue else 'NOT '}LIKE '%:overdue:%'")


def facts_condition() -> str:
    return f"action IN ({', '.join(repr(action) for action in FACTS)})"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, overdue in INDEXES.items():
        where = sa.text(_condition(dialect, overdue).replace(":", "\\:"))  # a colon would start a parameter
        op.create_index(name, "item_events", ["at", "item_id"], sqlite_where=where, postgresql_where=where)
    # The rows of one kind in a window with their item, from the index alone (0009's (action, at) needed
    # a read of each row for its item): the 签收, 回应 and ends of a month's items.
    op.create_index("ix_item_events_action_at_item", "item_events", ["action", "at", "item_id"])
    op.drop_index("ix_item_events_action_at", table_name="item_events")
    # The rows whose JSON a notice reads, JSON and all: a month's reports and gradings (a hundred
    # thousand of each) without reading each row where it lies (PostgreSQL: among the notices).
    facts = sa.text(facts_condition())
    if dialect == "postgresql":
        op.create_index("ix_item_events_facts", "item_events", ["action", "at"],
                        postgresql_include=["item_id", "id", "after"], postgresql_where=facts)
    else:
        op.create_index("ix_item_events_facts", "item_events", ["action", "at", "item_id", "after"], sqlite_where=facts)


def downgrade() -> None:
    op.drop_index("ix_item_events_facts", table_name="item_events")
    op.create_index("ix_item_events_action_at", "item_events", ["action", "at"])
    op.drop_index("ix_item_events_action_at_item", table_name="item_events")
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="item_events")
