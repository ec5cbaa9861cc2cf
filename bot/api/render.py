"""An item as the intake API shows it: the caller's view (涉密 rules), its deadlines and timeline."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from bot.api.auth import Caller
from bot.api.models import Deadline, GradeWord, ItemOut, TimelineEntry, Unit
from bot.runtime import Runtime
from domain.vocab import ItemStatus, Scope
from handlers import items as common
from handlers.query import ACTIONS, detail_shown
from store import audit
from store import items as item_store
from store.models import Item

# -- the item as JSON --------------------------------------------------------------------------------


async def item_out(
    session: AsyncSession, runtime: Runtime, item: Item, caller: Caller, *, duplicate: bool | None = None,
    timeline: bool = False,
) -> ItemOut:
    """The item as a caller may see it: a 涉密 item shows only its authorised summary (no link,
    no detail in the timeline) unless the token has classified:read (001 第十七条)."""
    directory, now = runtime.directory, runtime.clock.now()
    sees_all = not item.classified or caller.may(Scope.CLASSIFIED_READ)
    units = await item_store.units_of(session, item.id)
    entries = None
    if timeline:
        entries = [
            TimelineEntry(at=e.at, actor=e.actor, action=e.action, action_label=ACTIONS.get(e.action, e.action),
                          detail=(e.detail or None) if sees_all or detail_shown(item, e.action) else None)
            for e in await audit.timeline(session, item.id) if e.action != "refused"
        ]
    return ItemOut(
        number=item.number, status=ItemStatus(item.status).name.lower(), status_label=item.status,
        grade=cast(GradeWord | None, item.grade),
        summary=item.summary if sees_all else common.public_summary(item),
        url=item.link if sees_all else None, source=item.source, category=item.category,
        classified=item.classified,
        lead_unit=Unit(id=item.lead_unit_id, name=directory.unit_name(item.lead_unit_id))
        if item.lead_unit_id else None,
        units=[Unit(id=u, name=directory.unit_name(u)) for u in units], chat=item.chat_id,
        reported_at=item.reported_at, reported_by=item.reported_by, deadlines=_deadlines(item, now),
        duplicate=duplicate, timeline=entries,
    )


def _deadlines(item: Item, now: datetime) -> dict[str, Deadline]:
    clocks: dict[str, Deadline] = {}
    for name, due, stopped in (("grade", item.grade_due_at, item.graded_at),
                               ("pass_on", item.pass_on_due_at, item.acknowledged_at),
                               ("response", item.response_due_at, item.responded_at)):
        if due is None:
            continue
        remaining = None if stopped is not None else int((due - now).total_seconds())
        clocks[name] = Deadline(due_at=due, remaining_seconds=remaining, stopped_at=stopped)
    return clocks
