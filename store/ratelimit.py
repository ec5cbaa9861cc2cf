"""A sliding-window rate limit held in the database, so replicas share one budget per webhook.

Each platform robot allows 20 messages in any 60 seconds, failed sends included (PROTOCOLS.md
A.3, C.4). A slot is reserved before sending: a send that then fails still used its slot, as
on the platform. The per-key row is locked while counting, so two replicas cannot both take the
20th slot (on SQLite the single writer does the same).

The platform counts posts by the moment they reach it, which we cannot see. So each event is
stamped with the *latest* moment its post can have arrived: while the post is in flight, the
reservation time plus the longest the post may take (`lasting`); once answered, the moment of
the answer (`settle`). A post not counted any more then arrived at least `window` before any
later post, and the caller's window (the platform's 60 s plus an allowance for skew between the
platform's clocks and ours) covers the rest.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import on_postgresql, upsert_insert
from store.models import RateEvent, RateKey


async def reserve(
    session: AsyncSession, key: str, now: datetime, *, limit: int = 20, window: timedelta = timedelta(seconds=60),
    slots: int = 1, lasting: timedelta = timedelta(0),
) -> datetime | None:
    """Take `slots` slots now and return None, or return when enough slots free up.

    A message split into several posts takes one slot per post: the platform counts posts. One
    that needs more posts than the whole budget (over 400 KB on DingTalk) takes the whole budget.
    The events are stamped `now + lasting` (see the module's docstring); `settle` moves them to
    the answer's time once the post is answered.
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
    session.add_all([RateEvent(key=key, at=now + lasting) for _ in range(slots)])
    await session.flush()
    return None


async def settle(session: AsyncSession, key: str, *, reserved: datetime, answered: datetime, slots: int = 1) -> None:
    """The post reserved with stamp `reserved` was answered at `answered`: it reached the platform
    by then, so its events count from that moment. Events of one key and stamp are alike (any
    `slots` of them stand for this post)."""
    if answered == reserved:
        return
    ids = select(RateEvent.id).where(RateEvent.key == key, RateEvent.at == reserved).limit(max(1, slots))
    await session.execute(
        update(RateEvent).where(RateEvent.id.in_(ids.scalar_subquery())).values(at=answered)
        .execution_options(synchronize_session=False)
    )


async def purge(session: AsyncSession, before: datetime) -> None:
    await session.execute(delete(RateEvent).where(RateEvent.at < before))
