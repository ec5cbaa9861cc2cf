"""The few statements that differ between SQLite and PostgreSQL, chosen per session.

`INSERT … ON CONFLICT` has the same meaning on both databases but lives in each dialect's own
`insert()`; row locks (`FOR UPDATE [SKIP LOCKED]`) exist only on PostgreSQL, where replicas run
side by side (SQLite has one writer, which serialises them anyway).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def on_postgresql(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def upsert_insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT that supports `on_conflict_do_nothing` / `on_conflict_do_update`."""
    return postgresql.insert(table) if on_postgresql(session) else sqlite.insert(table)
