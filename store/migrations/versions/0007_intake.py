"""The intake API: source systems' tokens (api_tokens) and the items they sent (item_sources).

- api_tokens: one row per token, holding only the SHA-256 of the token (it is shown once) and its
  first characters (prefix: the lookup key and what listings show), its scopes, and when it was
  created, last used and revoked.
- item_sources: (source system, its own record id) → item, so a record sent again finds the item
  it became instead of reporting it twice; deleted with the item.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False, primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False),
        _at("created_at"),
        sa.Column("created_by", sa.String(64), nullable=False),
        _at("last_used_at", nullable=True),
        _at("revoked_at", nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.UniqueConstraint("prefix", name="uq_api_tokens_prefix"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "item_sources",
        sa.Column("source_system", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(256), nullable=False),
        sa.Column("item_id", BIG_ID, nullable=False),
        _at("created_at"),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("source_system", "external_id"),
    )
    op.create_index("ix_item_sources_item_id", "item_sources", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_item_sources_item_id", table_name="item_sources")
    op.drop_table("item_sources")
    op.drop_table("api_tokens")
