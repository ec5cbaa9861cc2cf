"""The digest's queries (bot/outbox_digest.py): a chat's waiting messages taken together, to be
folded into one post or put back as they were."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from store.dialect import on_postgresql
from store.models import OutboxMessage
from store.outbox import CANCELLED, DIGEST_PREFIX, MERGED, PENDING

__all__ = ["CANCELLED", "PENDING", "count_due_for_chat", "mark_merged", "take_pending_for_chat"]


def _foldable(chat_id: str, now: datetime) -> ColumnElement[bool]:
    """The chat's due, unclaimed messages that may go into a digest. Digests themselves never do:
    a digest folded into another would keep only its header line and lose the items it carries."""
    return and_(
        OutboxMessage.chat_id == chat_id, OutboxMessage.status == PENDING, OutboxMessage.due_at <= now,
        OutboxMessage.key.not_like(f"{DIGEST_PREFIX}%"),
    )


async def take_pending_for_chat(session: AsyncSession, chat_id: str, now: datetime, limit: int) -> list[OutboxMessage]:
    """Atomically take the chat's due, unclaimed messages (for a digest): they become MERGED.

    Call it in the transaction that also queues the digest (or puts the rows back): rows left
    MERGED without a digest would never be sent.
    """
    ids = (
        select(OutboxMessage.id)
        .where(_foldable(chat_id, now))
        .order_by(OutboxMessage.due_at, OutboxMessage.id)
        .limit(limit)
    )
    if on_postgresql(session):
        ids = ids.with_for_update(skip_locked=True)
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids.scalar_subquery()), OutboxMessage.status == PENDING)
        .values(status=MERGED, lease_until=None)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    return sorted(result.scalars(), key=lambda row: (row.due_at, row.id))


async def count_due_for_chat(session: AsyncSession, chat_id: str, now: datetime, *, up_to: int | None = None) -> int:
    """How many of the chat's messages could go into a digest; counting stops at `up_to` (the
    caller only asks whether there are more than a few, and a flooded chat has thousands)."""
    rows = select(OutboxMessage.id).where(_foldable(chat_id, now))
    if up_to is not None:
        rows = rows.limit(up_to)
    result = await session.execute(select(func.count()).select_from(rows.subquery()))
    return int(result.scalar_one())


async def mark_merged(session: AsyncSession, ids: Sequence[int], status: str) -> None:
    """Settle rows taken for a digest: back to PENDING (not folded after all) or CANCELLED."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.status == MERGED)
        .values(status=status)
    )
