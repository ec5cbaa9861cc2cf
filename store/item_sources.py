"""Which item a source system's record became (intake API idempotency), and the lock that makes
concurrent deliveries of the same record wait for each other."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import on_postgresql
from store.models import Item, ItemSource, table_of

# A function scan yields the array's elements in order, so the locks are taken in sorted order.
_LOCK_MANY = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS t(k)")
_SOURCES = table_of(ItemSource)


async def lock(session: AsyncSession, key: str) -> None:
    """Hold a transaction-scoped lock on `key` (PostgreSQL: an advisory lock on its hash), so that
    two requests carrying the same record — a client's retry racing its first try — decide one
    after the other whether the record is new. SQLite has one writer: the transaction itself
    serialises them."""
    if not on_postgresql(session):
        return
    await session.execute(select(func.pg_advisory_xact_lock(_digest(key))))


def _digest(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


async def lock_many(session: AsyncSession, keys: Sequence[str]) -> None:
    """`lock` for many keys in one statement, in sorted order: two batches sharing records take
    their locks in the same order and so wait for each other instead of deadlocking."""
    if not keys or not on_postgresql(session):
        return
    digests = sorted({_digest(key) for key in keys})
    await session.execute(_LOCK_MANY, {"keys": digests})


async def find(session: AsyncSession, source_system: str, external_id: str) -> Item | None:
    result = await session.execute(
        select(Item).join(ItemSource, ItemSource.item_id == Item.id)
        .where(ItemSource.source_system == source_system, ItemSource.external_id == external_id)
    )
    return result.scalar_one_or_none()


async def find_many(session: AsyncSession, source_system: str, external_ids: Sequence[str]) -> dict[str, Item]:
    """external id → the item it became, for the ids of `source_system` already known."""
    if not external_ids:
        return {}
    result = await session.execute(
        select(ItemSource.external_id, Item).join(Item, ItemSource.item_id == Item.id)
        .where(ItemSource.source_system == source_system, ItemSource.external_id.in_(sorted(set(external_ids))))
    )
    return {external_id: item for external_id, item in result.all()}


async def remember_many(session: AsyncSession, records: Sequence[tuple[str, str, int]], now: datetime) -> None:
    """(source system, external id, item id) rows, in one executemany."""
    if records:
        await session.execute(insert(_SOURCES), [
            {"source_system": source, "external_id": external_id, "item_id": item_id, "created_at": now}
            for source, external_id, item_id in records
        ])


async def remember(session: AsyncSession, source_system: str, external_id: str, item_id: int, now: datetime) -> None:
    session.add(ItemSource(source_system=source_system, external_id=external_id, item_id=item_id, created_at=now))
    await session.flush()
