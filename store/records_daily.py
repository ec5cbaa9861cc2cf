"""The audit rows the 舆情日志 and the 零报告 are computed from (issue #16): the only SQL of both.

Every figure of the daily log comes from the append-only audit trail (item_events), read here in a
few queries per log whatever the number of items: the rows of a window and the items still open at
its end (the rows of the items concerned are read by store/records_period.py, for the facts of
handlers/records/facts.py). What the rows mean is handlers/records/daily.py's and
handlers/ops/zero_report.py's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from store.models import Item, ItemEvent, RosterRollCall

ZERO_REPORT = "zero_report"
ROLL_CALL_MISSED = "roll_call_unanswered"
# The rows that end an item: after one of them no clock runs (domain.vocab.FINAL_STATUSES).
FINAL_ACTIONS = ("closed", "no_response", "merged")


async def rows_between(session: AsyncSession, start: datetime, end: datetime,
                       actions: Sequence[str]) -> list[ItemEvent]:
    """The audit rows of these actions at `start` ≤ at < `end`, in the order they were written."""
    result = await session.execute(
        select(ItemEvent)
        .where(ItemEvent.at >= start, ItemEvent.at < end, ItemEvent.action.in_(list(actions)))
        .order_by(ItemEvent.at, ItemEvent.id)
    )
    return list(result.scalars())


async def zero_reports_between(session: AsyncSession, start: datetime, end: datetime) -> list[ItemEvent]:
    """The 零报告 rows written at `start` ≤ at < `end` (each names its unit and day in `after`)."""
    return await rows_between(session, start, end, (ZERO_REPORT,))


async def item_ids_open_at(session: AsyncSession, end: datetime) -> list[int]:
    """Items reported before `end` with no row ending them before it: the items open at `end`."""
    final = aliased(ItemEvent)
    ended = exists().where(final.item_id == ItemEvent.item_id, final.action.in_(FINAL_ACTIONS), final.at < end)
    result = await session.execute(
        select(ItemEvent.item_id)
        .where(ItemEvent.action == "reported", ItemEvent.at < end, ItemEvent.item_id.is_not(None), ~ended)
    )
    return sorted({int(item_id) for item_id in result.scalars() if item_id is not None})


async def classified_now(session: AsyncSession, item_ids: Iterable[int]) -> dict[int, str | None]:
    """Which of these items are 涉密 now, with their authorised summary: a log made today about a
    past day must not show what has been classified since."""
    wanted = sorted(set(item_ids))
    found: dict[int, str | None] = {}
    for first in range(0, len(wanted), 1000):
        result = await session.execute(
            select(Item.id, Item.authorised_summary)
            .where(Item.id.in_(wanted[first:first + 1000]), Item.classified.is_(True))
        )
        found.update({int(item_id): summary for item_id, summary in result.all()})
    return found


async def roll_call_times(session: AsyncSession, ids: Iterable[int]) -> dict[int, datetime]:
    """When each of these roll calls was made (the missed-call row is written at its answer time)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    result = await session.execute(select(RosterRollCall.id, RosterRollCall.at).where(RosterRollCall.id.in_(wanted)))
    return {int(row_id): at for row_id, at in result.all()}
