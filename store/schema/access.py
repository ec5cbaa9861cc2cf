"""Access to the intake API: tokens per source system."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.schema.base import Base, BigId


class ApiToken(Base):
    """A source system's key to the intake API. Only the SHA-256 of the token is kept (it is shown
    once, at creation); `prefix` — its first characters — finds the row and tells tokens apart in
    listings without revealing anything that would let a request through."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("prefix", name="uq_api_tokens_prefix"),
        UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    # Touched at most once a minute (store/api_tokens.py): not a write per request.
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))
