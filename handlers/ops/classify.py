"""涉密 (001 第十七条): coordinators and admins mark an item classified afterwards, change its
authorised summary, or lift the mark (Action.CLASSIFY). While marked, every text posted about the
item shows only the authorised summary — or the standard wording — never the link, the details or
the result (the filters of handlers/items).

An item may also be classified when it is reported: the reporter's mark (chat: 【涉密】 …; the
intake API: "classified": true) is ReportInput.classified, recorded by the report operation in its
"reported" audit row. Whoever reports a matter knows it is classified, so that needs no
permission; marking a reported item afterwards does.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.config import ChatConfig
from handlers import items as common
from handlers.ops.base import Actor, Work
from handlers.ops.events import ItemClassified, ItemDeclassified
from handlers.ops.permits import NotPermitted, check
from handlers.permissions import Action
from store.models import Item

_FIELDS = ("classified", "authorised_summary")


@dataclass(frozen=True)
class AlreadyClassified:
    """Marked already, and no new authorised summary given."""

    item: Item


@dataclass(frozen=True)
class NotClassified:
    """Lifting a mark the item does not carry."""

    item: Item


async def classify(
    work: Work, actor: Actor, chat: ChatConfig, item: Item, summary: str | None = None
) -> ItemClassified | AlreadyClassified | NotPermitted:
    """Mark `item` classified with `summary` as its authorised summary (None: the standard
    wording); on an item marked already, a different summary replaces the old one."""
    refused = await check(work, actor, chat, item, Action.CLASSIFY)
    if refused is not None:
        return refused
    summary = summary or None
    if item.classified and (summary is None or summary == item.authorised_summary):
        return AlreadyClassified(item)
    was_classified = item.classified
    before = common.snapshot(item, *_FIELDS)
    item.classified = True
    item.authorised_summary = summary
    event_id = await work.record(actor, item, "classified", chat_id=chat.id, detail=summary or "", before=before,
                                 after=common.snapshot(item, *_FIELDS))
    return ItemClassified(item, summary, was_classified, event_id, actor)


async def declassify(
    work: Work, actor: Actor, chat: ChatConfig, item: Item, reason: str = ""
) -> ItemDeclassified | NotClassified | NotPermitted:
    """Lift the mark. The authorised summary stays on the item, unused (a new mark sets its own)."""
    refused = await check(work, actor, chat, item, Action.CLASSIFY)
    if refused is not None:
        return refused
    if not item.classified:
        return NotClassified(item)
    before = common.snapshot(item, *_FIELDS)
    item.classified = False
    event_id = await work.record(actor, item, "declassified", chat_id=chat.id, detail=reason, before=before,
                                 after=common.snapshot(item, *_FIELDS))
    return ItemDeclassified(item, reason, event_id, actor)
