"""Ending or passing on an item without a response: 不予回应 (a leader's decision), 合并 (a duplicate
folded into another item) and 移交 (referred to the police or the cyberspace office, 001 第十条)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.config import ChatConfig
from domain.vocab import ItemStatus, Referral
from handlers import items as common
from handlers.ops import publish
from handlers.ops.base import Actor, Work
from handlers.ops.close import ItemClosed
from handlers.ops.permits import NotPermitted, check
from handlers.permissions import Action
from store import items as item_store
from store import pending
from store.models import Item


@dataclass(frozen=True)
class NoResponseDecided:
    item: Item
    event_id: int


@dataclass(frozen=True)
class ItemMerged:
    item: Item
    target: Item


@dataclass(frozen=True)
class MergeRefused:
    """The target is not there (None), or is itself merged into another."""

    item: Item
    target_number: int
    target: Item | None


@dataclass(frozen=True)
class ItemReferred:
    item: Item
    to: Referral
    event_id: int


@dataclass(frozen=True)
class AlreadyReferred:
    item: Item
    to: Referral


async def no_response(
    work: Work, actor: Actor, chat: ChatConfig, item: Item, reason: str
) -> NoResponseDecided | NotPermitted:
    refused = await check(work, actor, chat, item, Action.NO_RESPONSE)
    if refused is not None:
        return refused
    before = common.snapshot(item, "status", "verdict")
    item.status = ItemStatus.NO_RESPONSE.value
    item.closed_at = work.now
    common.schedule_next(item, work.config, work.now)
    item.verdict = reason
    await pending.close_for_item(work.session, item.id, "grade")
    event_id = await work.record(actor, item, "no_response", chat_id=chat.id, detail=reason, before=before,
                                 after=common.snapshot(item, "status", "verdict"))
    # The item is finished as surely as by 办结: subscribed systems hear item.closed (status no_response).
    await publish.closed(work, ItemClosed(item, event_id, (), actor))
    return NoResponseDecided(item, event_id)


async def merge(
    work: Work, actor: Actor, chat: ChatConfig, item: Item, target_number: int
) -> ItemMerged | MergeRefused | NotPermitted:
    refused = await check(work, actor, chat, item, Action.MERGE)
    if refused is not None:
        return refused
    target = await item_store.by_number(work.session, target_number)
    if target is None or target.status == ItemStatus.MERGED.value:
        return MergeRefused(item, target_number, target)
    before = common.snapshot(item, "status", "merged_into")
    item.status = ItemStatus.MERGED.value
    item.merged_into = target.number
    item.closed_at = work.now
    common.schedule_next(item, work.config, work.now)
    await pending.close_for_item(work.session, item.id, "grade")
    event_id = await work.record(actor, item, "merged", chat_id=chat.id, detail=f"#{target.number}", before=before,
                                 after=common.snapshot(item, "status", "merged_into"))
    await work.record(actor, target, "absorbed", chat_id=chat.id, detail=f"#{item.number}")
    # Merged away is finished too (its matter goes on under the target): item.closed, status merged.
    await publish.closed(work, ItemClosed(item, event_id, (), actor))
    return ItemMerged(item, target)


async def refer(
    work: Work, actor: Actor, chat: ChatConfig, item: Item, to: Referral
) -> ItemReferred | AlreadyReferred | NotPermitted:
    refused = await check(work, actor, chat, item, Action.REFER)
    if refused is not None:
        return refused
    if to.value in item.referred_to:
        return AlreadyReferred(item, to)
    before = {"referred_to": list(item.referred_to)}
    item.referred_to = [*item.referred_to, to.value]
    event_id = await work.record(actor, item, "referred", chat_id=chat.id, detail=to.value, before=before,
                                 after={"referred_to": item.referred_to})
    return ItemReferred(item, to, event_id)
