"""An item as the intake API shows it: the caller's view (涉密 rules), its deadlines and timeline."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bot.api.auth import Caller
from bot.api.models import ItemOut, TimelineEntry
from bot.runtime import Runtime
from domain.vocab import Scope
from handlers.ops.item_json import item_json
from handlers.query import ACTIONS, detail_shown
from store import audit
from store import items as item_store
from store.models import Item, ItemEvent

# -- the item as JSON --------------------------------------------------------------------------------


async def item_out(
    session: AsyncSession, runtime: Runtime, item: Item, caller: Caller, *, duplicate: bool | None = None,
    timeline: bool = False, units: Sequence[str] | None = None,
) -> ItemOut:
    """The item as a caller may see it, reading what it needs (`units`: the item's units when the
    caller read them already — a page or a batch reads them in one query)."""
    if units is None:
        units = await item_store.units_of(session, item.id)
    events = await audit.timeline(session, item.id) if timeline else None
    return item_view(runtime, item, caller, units, duplicate=duplicate, events=events)


def item_view(
    runtime: Runtime, item: Item, caller: Caller, units: Sequence[str], *, duplicate: bool | None = None,
    events: Sequence[ItemEvent] | None = None,
) -> ItemOut:
    """The item as a caller may see it: a 涉密 item shows only its authorised summary (no link,
    no detail in the timeline) unless the token has classified:read (001 第十七条). The item's own
    fields are the webhooks' item (handlers/ops/item_json.py): one item model for other systems."""
    sees_all = not item.classified or caller.may(Scope.CLASSIFIED_READ)
    entries = None
    if events is not None:
        entries = [
            TimelineEntry(at=e.at, actor=e.actor, action=e.action, action_label=ACTIONS.get(e.action, e.action),
                          detail=(e.detail or None) if sees_all or detail_shown(item, e.action) else None)
            for e in events if e.action != "refused"
        ]
    fields = item_json(item, units, runtime.directory, runtime.clock.now(), sees_all=sees_all)
    return ItemOut.model_validate({**fields, "duplicate": duplicate, "timeline": entries})
