"""The engine's occurrence claims (engine_runs): the only SQL of the scheduled modules' bookkeeping.

A claim is an INSERT … ON CONFLICT DO NOTHING on (module, occurrence_key), made inside the
transaction that does the occurrence's work. On PostgreSQL a second replica inserting the same key
waits for the first one's transaction: after its commit it inserts nothing (and skips the work),
after a rollback it inserts and does the work itself. On SQLite the single writer serialises the
two. Either way an occurrence is done once, and never lost to a run that failed half-way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import upsert_insert
from store.models import EngineRun


async def claim(session: AsyncSession, *, module: str, key: str, due_at: datetime, now: datetime,
                late: bool) -> bool:
    """Record the occurrence as done by this transaction; False when it is done (or being done) already."""
    statement = upsert_insert(session, EngineRun).values(
        module=module, occurrence_key=key, due_at=due_at, done_at=now, late=late)
    result = await session.execute(statement.on_conflict_do_nothing(index_elements=["module", "occurrence_key"]))
    return bool(getattr(result, "rowcount", 0))


async def done_keys(session: AsyncSession, module: str, keys: Iterable[str]) -> set[str]:
    """Which of `keys` the module has done (committed by any replica)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return set()
    result = await session.execute(
        select(EngineRun.occurrence_key).where(EngineRun.module == module, EngineRun.occurrence_key.in_(wanted)))
    return set(result.scalars())


# The marker of a module's first cycle: occurrences before it are not the bot's to make up for.
FIRST_RUN = "first-run"


async def first_run(session: AsyncSession, module: str, now: datetime) -> datetime:
    """When the module first ran on this database (this cycle, `now`, if never before)."""
    await claim(session, module=module, key=FIRST_RUN, due_at=now, now=now, late=False)
    result = await session.execute(select(EngineRun.due_at).where(
        EngineRun.module == module, EngineRun.occurrence_key == FIRST_RUN))
    return result.scalar_one()


async def runs(session: AsyncSession, module: str) -> list[EngineRun]:
    """The module's done occurrences, oldest first (for inspection and the tests)."""
    result = await session.execute(
        select(EngineRun).where(EngineRun.module == module, EngineRun.occurrence_key != FIRST_RUN)
        .order_by(EngineRun.due_at, EngineRun.occurrence_key))
    return list(result.scalars())


async def purge(session: AsyncSession, before: datetime) -> int:
    """Forget occurrences done before `before` (older than any a schedule still looks back to)."""
    result = await session.execute(
        delete(EngineRun).where(EngineRun.done_at < before, EngineRun.occurrence_key != FIRST_RUN))
    return int(getattr(result, "rowcount", 0) or 0)
