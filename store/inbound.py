"""De-duplication of platform messages by id, and of DingTalk callback signatures by use, in the
database so that replicas agree."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

from sqlalchemy import BigInteger, String, bindparam, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import Prepared
from store.models import InboundSeen, SignatureUse, UTCDateTime, table_of

# Built once (see store/dialect.Prepared): every platform message runs it.
_RECORD = Prepared(
    lambda dialect: dialect.insert(table_of(InboundSeen)).on_conflict_do_nothing(
        index_elements=["channel", "message_id"]
    )
)
_SIGNATURE = table_of(SignatureUse)


def _use_if_fresh(dialect: ModuleType) -> Any:
    """INSERT the use unless the pair was first used before :cutoff — one statement, so the
    common case (a new pair, or a burst within the grace) costs one round trip."""
    signature = _SIGNATURE
    channel, stamp = bindparam("channel", type_=String()), bindparam("timestamp_ms", type_=BigInteger())
    earlier = exists().where(signature.c.channel == channel, signature.c.timestamp_ms == stamp,
                             signature.c.first_seen_at < bindparam("cutoff", type_=UTCDateTime()))
    source = select(channel, stamp, bindparam("message_id", type_=String()),
                    bindparam("now", type_=UTCDateTime())).where(~earlier)
    return dialect.insert(signature).from_select(
        ["channel", "timestamp_ms", "message_id", "first_seen_at"], source
    ).on_conflict_do_nothing(index_elements=["channel", "timestamp_ms", "message_id"])


_USE_IF_FRESH = Prepared(_use_if_fresh)
_KNOWN = select(_SIGNATURE.c.message_id).where(
    _SIGNATURE.c.channel == bindparam("channel"), _SIGNATURE.c.timestamp_ms == bindparam("timestamp_ms"),
    _SIGNATURE.c.message_id == bindparam("message_id"),
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


async def signature_fresh(
    session: AsyncSession, *, channel: str, timestamp_ms: int, message_id: str, now: datetime, grace: timedelta
) -> bool:
    """Record that a callback signature (its timestamp: a valid sign is a function of it) came
    with `message_id`; False when the pair was first used more than `grace` ago with other msgIds.

    The same msgId again is a platform retry (handled or dropped by first_time); another msgId
    within `grace` is a busy robot signing two callbacks in the same millisecond. A refused use
    is not recorded, so it does not extend anything.
    """
    params = {"channel": channel, "timestamp_ms": timestamp_ms, "message_id": message_id}
    inserted = await session.execute(_USE_IF_FRESH.on(session), {**params, "now": now, "cutoff": now - grace})
    if getattr(inserted, "rowcount", 0):
        return True
    # Not inserted: this msgId came with the pair before (a retry), or the pair is spent.
    return (await session.execute(_KNOWN, params)).first() is not None


async def purge_signatures(session: AsyncSession, channel: str, before_ms: int) -> int:
    """Forget the signatures whose timestamp no callback may carry any more (outside the skew)."""
    result = await session.execute(
        delete(SignatureUse).where(SignatureUse.channel == channel, SignatureUse.timestamp_ms < before_ms)
    )
    return int(getattr(result, "rowcount", 0) or 0)
