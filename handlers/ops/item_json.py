"""An item as JSON for other systems: the outgoing webhooks' `data.item`.

The same shape as the intake API's item in a list (bot/api/render.py `item_out`, without
`duplicate` and `timeline`), so that a system reading both sees one item model; the webhook
tests hold the two equal. It lives here, below the runtime, because an event's item is taken
in the operation's own transaction, as it was when the event happened (the business layer does
not import bot/).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from domain.directory import Directory
from domain.vocab import ItemStatus
from handlers import items as common
from store.models import Item


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as the API writes its times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def item_json(
    item: Item, units: Sequence[str], directory: Directory, now: datetime, *, sees_all: bool
) -> dict[str, Any]:
    """The item as a reader may see it: a 涉密 item shows only its authorised summary and no link
    unless the reader is cleared for it (`sees_all`, 001 第十七条)."""
    lead = item.lead_unit_id
    return {
        "number": item.number,
        "status": ItemStatus(item.status).name.lower(),
        "status_label": item.status,
        "grade": item.grade,
        "summary": item.summary if sees_all else common.public_summary(item),
        "url": item.link if sees_all else None,
        "source": item.source,
        "category": item.category,
        "classified": item.classified,
        "lead_unit": {"id": lead, "name": directory.unit_name(lead)} if lead else None,
        "units": [{"id": unit, "name": directory.unit_name(unit)} for unit in units],
        "chat": item.chat_id,
        "reported_at": iso(item.reported_at),
        "reported_by": item.reported_by,
        "deadlines": _deadlines(item, now),
    }


def _deadlines(item: Item, now: datetime) -> dict[str, dict[str, Any]]:
    clocks: dict[str, dict[str, Any]] = {}
    for name, due, stopped in (("grade", item.grade_due_at, item.graded_at),
                               ("pass_on", item.pass_on_due_at, item.acknowledged_at),
                               ("response", item.response_due_at, item.responded_at)):
        if due is None:
            continue
        clocks[name] = {
            "due_at": iso(due),
            "remaining_seconds": None if stopped is not None else int((due - now).total_seconds()),
            "stopped_at": iso(stopped) if stopped is not None else None,
        }
    return clocks
