"""A sliding-window rate limit held in the database, so replicas share one budget per webhook.

Each platform robot allows 20 messages in any 60 seconds, failed sends included (PROTOCOLS.md
A.3, C.4). A slot is reserved before sending: a send that then fails still used its slot, as
on the platform. The per-key row is locked while counting, so two replicas cannot both take the
20th slot (on SQLite the single writer does the same).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import on_postgresql, upsert_insert
from store.models import RateEvent, RateKey


async def reserve(
    session: AsyncSession, key: str, now: datetime, *, limit: int = 20, window: timedelta = timedelta(seconds=60),
    slots: int = 1,
) -> datetime | None:
    """Take `slots` slots now and return None, or return when enough slots free up.

    A message split into several posts takes one slot per post: the platform counts posts. One
    that needs more posts than the whole budget (over 400 KB on DingTalk) takes the whole budget.
    """
    slots = max(1, min(slots, limit))
    await session.execute(
        upsert_insert(session, RateKey).values(key=key).on_conflict_do_nothing(index_elements=["key"])
    )
    lock = select(RateKey.key).where(RateKey.key == key)
    if on_postgresql(session):
        lock = lock.with_for_update()
    await session.execute(lock)
    since = now - window
    result = await session.execute(
        select(RateEvent.at).where(RateEvent.key == key, RateEvent.at > since).order_by(RateEvent.at)
    )
    taken = list(result.scalars())
    if len(taken) + slots > limit:
        # The slots free up as the oldest events leave the window: enough of them for this message.
        return taken[len(taken) + slots - limit - 1] + window
    session.add_all([RateEvent(key=key, at=now) for _ in range(slots)])
    await session.flush()
    return None


async def purge(session: AsyncSession, before: datetime) -> None:
    await session.execute(delete(RateEvent).where(RateEvent.at < before))
