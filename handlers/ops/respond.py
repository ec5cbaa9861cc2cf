"""Respond in public (回应): the first response stops the 回应 clock and stays on the item; each
later one is a 续报 (004 第八条). Two 回应 at once never both count as the first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.config import ChatConfig
from domain.vocab import ItemStatus
from handlers import items as common
from handlers.ops.base import Actor, Work
from handlers.ops.permits import NotPermitted, check
from handlers.permissions import Action
from store import audit
from store import items as item_store
from store.models import Item, ItemEvent

FIRST_RESPONSE = "首次回应"
CONTINUING = "续报"


@dataclass(frozen=True)
class ResponseParts:
    form: str  # the form's name in the policy
    link: str | None
    text: str


@dataclass(frozen=True)
class RecordedResponse:
    seq: int
    at: datetime
    form: str
    link: str | None


@dataclass(frozen=True)
class ItemResponded:
    item: Item
    parts: ResponseParts
    seq: int  # 1 for the first response, 2… for each 续报
    earlier_forms: tuple[str, ...]
    event_id: int

    @property
    def first(self) -> bool:
        return self.seq == 1


def recorded_responses(events: Sequence[ItemEvent]) -> list[RecordedResponse]:
    """The responses in an item's audit trail, in order. Entries written before 续报 existed keep
    the form under "response_form"."""
    found: list[RecordedResponse] = []
    for event in events:
        if event.action == "responded":
            after = event.after or {}
            form = str(after.get("form") or after.get("response_form") or "")
            link = after.get("link", after.get("response_link"))
            found.append(RecordedResponse(len(found) + 1, event.at, form, str(link) if link else None))
    return found


async def respond(
    work: Work, actor: Actor, chat: ChatConfig, item: Item, parts: ResponseParts
) -> ItemResponded | NotPermitted:
    refused = await check(work, actor, chat, item, Action.RESPOND)
    if refused is not None:
        return refused
    await item_store.lock(work.session, item)
    earlier = recorded_responses(await audit.timeline(work.session, item.id))
    seq = len(earlier) + 1
    first = item.responded_at is None
    after = {"form": parts.form, "link": parts.link, "seq": seq, "kind": FIRST_RESPONSE if first else CONTINUING}
    before = None
    if first:  # the first response stops the clock; the item keeps its form, link and text
        fields = ("status", "responded_at", "response_form", "response_link")
        before = common.snapshot(item, *fields)
        item.responded_at = work.now
        item.response_form = parts.form
        item.response_link = parts.link
        item.response_text = parts.text
        common.advance_status(item, ItemStatus.RESPONDED)
        common.schedule_next(item, work.config, work.now)
        after = {**common.snapshot(item, *fields), **after}
    event_id = await work.record(actor, item, "responded", chat_id=chat.id, detail=parts.text, before=before,
                                 after=after)
    return ItemResponded(item, parts, seq, tuple(r.form for r in earlier), event_id)
