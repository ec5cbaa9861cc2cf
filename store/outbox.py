"""Outbox repository: idempotent enqueue and lease-based claiming.

Producers insert with the intent's idempotency key and ON CONFLICT DO NOTHING, so any number of
ticks or replicas create a notice once. Workers claim due rows with a lease; a crashed worker's
rows become claimable again when the lease runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import OutboxMessage

PENDING = "pending"
CLAIMED = "claimed"
SENT = "sent"
FAILED = "failed"


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    chat_id: str,
    text: str,
    mentions: Sequence[str],
    now: datetime,
    due_at: datetime | None = None,
    item_id: int | None = None,
    reply_url: str | None = None,
    reply_url_expires_at: datetime | None = None,
) -> bool:
    """Queue a message once per key. Returns False when the key already existed."""
    values = {
        "key": key,
        "chat_id": chat_id,
        "text": text,
        "mentions": list(mentions),
        "item_id": item_id,
        "created_at": now,
        "due_at": due_at or now,
        "status": PENDING,
        "attempts": 0,
        "reply_url": reply_url,
        "reply_url_expires_at": reply_url_expires_at,
    }
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(OutboxMessage).values(**values).on_conflict_do_nothing(index_elements=["key"])
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def claim(
    session: AsyncSession, *, worker: str, now: datetime, lease: timedelta, limit: int = 50,
    chat_ids: Sequence[str] | None = None,
) -> list[OutboxMessage]:
    """Claim up to `limit` due rows (or rows whose lease ran out) for `worker`."""
    claimable = or_(
        (OutboxMessage.status == PENDING) & (OutboxMessage.due_at <= now),
        (OutboxMessage.status == CLAIMED) & (OutboxMessage.lease_until < now),
    )
    candidates = select(OutboxMessage.id).where(claimable).order_by(OutboxMessage.due_at, OutboxMessage.id)
    if chat_ids is not None:
        candidates = candidates.where(OutboxMessage.chat_id.in_(list(chat_ids)))
    candidates = candidates.limit(limit)
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    if dialect == "postgresql":
        # Replicas skip each other's locked rows instead of queueing behind them.
        candidates = candidates.with_for_update(skip_locked=True)
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(candidates.scalar_subquery()), claimable)
        .values(status=CLAIMED, claimed_by=worker, lease_until=now + lease, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    return sorted(result.scalars(), key=lambda row: (row.due_at, row.id))


async def finish(
    session: AsyncSession, row_id: int, *, worker: str, status: str, now: datetime,
    error: str | None = None, retry_at: datetime | None = None,
) -> bool:
    """Settle a claimed row; only the worker holding the claim may (a taken-over claim is not ours)."""
    values: dict[str, object] = {"last_error": error, "lease_until": None}
    if status == SENT:
        values.update(status=SENT, sent_at=now)
    elif retry_at is not None:
        values.update(status=PENDING, due_at=retry_at, claimed_by=None)
    else:
        values.update(status=status)
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.claimed_by == worker, OutboxMessage.status == CLAIMED)
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))
