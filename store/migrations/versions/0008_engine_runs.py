"""The engine's record of scheduled occurrences done (engine_runs).

One row per occurrence of a scheduled module (the daily reminder of a day, a chat's 交接班 of a
shift, the 08:30 daily log of a day): its primary key (module, occurrence_key) is the claim that
makes every replica run an occurrence once, and a missed occurrence (the bot down at its time) is
found on start because it has no row. `late` marks one run after its grace (补发).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_runs",
        sa.Column("module", sa.String(64), nullable=False),
        sa.Column("occurrence_key", sa.String(160), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("module", "occurrence_key"),
    )
    op.create_index("ix_engine_runs_done_at", "engine_runs", ["done_at"])


def downgrade() -> None:
    op.drop_index("ix_engine_runs_done_at", table_name="engine_runs")
    op.drop_table("engine_runs")
