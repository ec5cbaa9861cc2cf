"""Which item a source system's record became (intake API idempotency), and the lock that makes
concurrent deliveries of the same record wait for each other."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import on_postgresql
from store.models import Item, ItemSource


async def lock(session: AsyncSession, key: str) -> None:
    """Hold a transaction-scoped lock on `key` (PostgreSQL: an advisory lock on its hash), so that
    two requests carrying the same record — a client's retry racing its first try — decide one
    after the other whether the record is new. SQLite has one writer: the transaction itself
    serialises them."""
    if not on_postgresql(session):
        return
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    await session.execute(select(func.pg_advisory_xact_lock(digest)))


async def find(session: AsyncSession, source_system: str, external_id: str) -> Item | None:
    result = await session.execute(
        select(Item).join(ItemSource, ItemSource.item_id == Item.id)
        .where(ItemSource.source_system == source_system, ItemSource.external_id == external_id)
    )
    return result.scalar_one_or_none()


async def remember(session: AsyncSession, source_system: str, external_id: str, item_id: int, now: datetime) -> None:
    session.add(ItemSource(source_system=source_system, external_id=external_id, item_id=item_id, created_at=now))
    await session.flush()
