"""What the outbox holds for given addresses (`dutybot doctor` shows the webhook subscribers'):
how many rows wait and since when, how many were given up on since the last delivery and the
latest error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import OutboxMessage
from store.outbox import CLAIMED, FAILED, PENDING, SENT


@dataclass(frozen=True)
class TargetState:
    """The outbox rows of one address (a chat, or a webhook subscriber's target)."""

    waiting: int = 0  # pending or claimed
    oldest_due: datetime | None = None  # the due time of the oldest waiting row
    # Given up on (the receiver's final refusal; a retryable error is retried, never given up) since
    # the last row delivered: once the receiver is mended and takes an event, older ones are history.
    failed: int = 0
    last_error: str | None = None  # the error of the latest of those


async def target_states(session: AsyncSession, chat_ids: Sequence[str]) -> dict[str, TargetState]:
    """The state of each address in `chat_ids`: grouped reads of the waiting rows and of the last
    delivered row, then, for each address with failures after it, their count and latest error (a
    handful of subscribers: not a query per row)."""
    if not chat_ids:
        return {}
    wanted = list(chat_ids)
    row = OutboxMessage
    waiting = {r.chat_id: (int(r.n), r.oldest) for r in await session.execute(
        select(row.chat_id, func.count().label("n"), func.min(row.due_at).label("oldest"))
        .where(row.chat_id.in_(wanted), row.status.in_([PENDING, CLAIMED])).group_by(row.chat_id))}
    last_sent = {r.chat_id: int(r.last) for r in await session.execute(
        select(row.chat_id, func.max(row.id).label("last")).where(row.chat_id.in_(wanted), row.status == SENT)
        .group_by(row.chat_id))}
    states = {}
    for chat_id in wanted:
        count, oldest = waiting.get(chat_id, (0, None))
        failed, last_error = await _failed_since(session, chat_id, last_sent.get(chat_id, 0))
        states[chat_id] = TargetState(count, oldest, failed, last_error)
    return states


async def _failed_since(session: AsyncSession, chat_id: str, after_id: int) -> tuple[int, str | None]:
    """The address's rows given up on after row `after_id`, and the latest one's error."""
    row = OutboxMessage
    since = (row.chat_id == chat_id, row.status == FAILED, row.id > after_id)
    failed = int((await session.execute(select(func.count()).where(*since))).scalar_one())
    if not failed:
        return 0, None
    last_error = (await session.execute(select(row.last_error).where(*since).order_by(row.id.desc()).limit(1))
                  ).scalar_one_or_none()
    return failed, last_error
