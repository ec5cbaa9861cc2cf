"""Progress (进展) and closing (办结): the record of what was done, and the end of the item with
its result fed back (001 第十一条 受理、转办、反馈) to the reporter and the lead unit's leader."""

from __future__ import annotations

from dataclasses import dataclass

from domain.config import ChatConfig
from domain.vocab import ItemStatus, Role
from handlers import items as common
from handlers.ops import publish
from handlers.ops.base import Actor, Work
from handlers.ops.permits import NotPermitted, check
from handlers.permissions import Action
from handlers.policy import unique
from store.models import Item


@dataclass(frozen=True)
class ProgressRecorded:
    item: Item


@dataclass(frozen=True)
class NotResponded:
    """办结 before any public response: refused (the response comes first)."""

    item: Item


@dataclass(frozen=True)
class ItemClosed:
    item: Item
    event_id: int
    fed_back: tuple[tuple[str, tuple[str, ...]], ...]  # ("上报人", people), ("牵头单位分管领导", people) that exist
    by: Actor

    @property
    def mentions(self) -> list[str]:
        return unique(p for _, people in self.fed_back for p in people)


async def progress(
    work: Work, actor: Actor, chat: ChatConfig, item: Item, text: str
) -> ProgressRecorded | NotPermitted:
    refused = await check(work, actor, chat, item, Action.PROGRESS)
    if refused is not None:
        return refused
    await work.record(actor, item, "progress", chat_id=chat.id, detail=text)
    return ProgressRecorded(item)


async def close(
    work: Work, actor: Actor, chat: ChatConfig, item: Item, verdict: str
) -> ItemClosed | NotResponded | NotPermitted:
    refused = await check(work, actor, chat, item, Action.CLOSE)
    if refused is not None:
        return refused
    if item.responded_at is None:
        return NotResponded(item)
    before = common.snapshot(item, "status", "verdict")
    item.status = ItemStatus.CLOSED.value
    item.closed_at = work.now
    common.schedule_next(item, work.config, work.now)
    item.verdict = verdict
    event_id = await work.record(actor, item, "closed", chat_id=chat.id, detail=verdict, before=before,
                                 after=common.snapshot(item, "status", "verdict"))
    # A reporter that is a person hears the result; a source system reads it from the item.
    reporter = (item.reported_by,) if item.reported_by in work.directory.people else ()
    lead = item.lead_unit_id
    leaders = tuple(p.id for p in work.directory.responsible(Role.LEADER, lead)) if lead else ()
    fed_back = tuple((word, people) for word, people in (("上报人", reporter), ("牵头单位分管领导", leaders)) if people)
    closed = ItemClosed(item, event_id, fed_back, actor)
    await publish.closed(work, closed)  # item.closed for subscribed systems, in this transaction
    return closed
