"""De-duplication of platform messages by id, in the database so that replicas agree."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import Prepared
from store.models import InboundSeen, table_of

# Built once (see store/dialect.Prepared): every platform message runs it.
_RECORD = Prepared(
    lambda dialect: dialect.insert(table_of(InboundSeen)).on_conflict_do_nothing(
        index_elements=["channel", "message_id"]
    )
)


async def first_time(session: AsyncSession, channel: str, message_id: str, now: datetime) -> bool:
    """Record the id; False when it was already recorded (a retry or a replay).

    Call it inside the transaction that handles the message: if handling fails, the record
    rolls back too and the platform's retry is handled instead of being dropped.
    """
    result = await session.execute(
        _RECORD.on(session), {"channel": channel, "message_id": message_id[:128], "seen_at": now}
    )
    return bool(getattr(result, "rowcount", 0))


async def purge(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(delete(InboundSeen).where(InboundSeen.seen_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
