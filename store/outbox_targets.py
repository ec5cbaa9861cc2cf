"""What the outbox holds for given addresses (`dutybot doctor` shows the webhook subscribers'):
how many rows wait and since when, how many were given up on and the latest error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import OutboxMessage
from store.outbox import CLAIMED, FAILED, PENDING


@dataclass(frozen=True)
class TargetState:
    """The outbox rows of one address (a chat, or a webhook subscriber's target)."""

    waiting: int = 0  # pending or claimed
    oldest_due: datetime | None = None  # the due time of the oldest waiting row
    failed: int = 0  # given up on: the receiver's final refusal (a retryable error is retried, never given up)
    last_error: str | None = None  # the error of the latest failed row


async def target_states(session: AsyncSession, chat_ids: Sequence[str]) -> dict[str, TargetState]:
    """The state of each address in `chat_ids`: two grouped counts, and one read of the latest
    failure for each address that has any (a handful of subscribers, not one query per row)."""
    if not chat_ids:
        return {}
    wanted = list(chat_ids)
    row = OutboxMessage
    waiting = {r.chat_id: (int(r.n), r.oldest) for r in await session.execute(
        select(row.chat_id, func.count().label("n"), func.min(row.due_at).label("oldest"))
        .where(row.chat_id.in_(wanted), row.status.in_([PENDING, CLAIMED])).group_by(row.chat_id))}
    failed = {r.chat_id: int(r.n) for r in await session.execute(
        select(row.chat_id, func.count().label("n")).where(row.chat_id.in_(wanted), row.status == FAILED)
        .group_by(row.chat_id))}
    states = {}
    for chat_id in wanted:
        last_error = None
        if failed.get(chat_id):
            last_error = (await session.execute(
                select(row.last_error).where(row.chat_id == chat_id, row.status == FAILED)
                .order_by(row.id.desc()).limit(1))).scalar_one_or_none()
        count, oldest = waiting.get(chat_id, (0, None))
        states[chat_id] = TargetState(count, oldest, failed.get(chat_id, 0), last_error)
    return states
