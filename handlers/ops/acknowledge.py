"""Acknowledge an item (签收): the lead unit's 签收 stops the 签收 clock; a co-unit's is recorded
only (the clock waits for the lead). Who may: policy by Action.ACKNOWLEDGE, then staff of one of
the item's units (a duty officer cannot sign for a unit)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.config import ChatConfig
from domain.vocab import ItemStatus
from handlers import items as common
from handlers.ops.base import Actor, Work
from handlers.ops.permits import check
from handlers.permissions import Action, unit_staff
from store import items as item_store
from store.models import Item


class AckRefusal(StrEnum):
    NOT_PERMITTED = "not_permitted"
    ALREADY = "already"  # the lead signed already: who and when are on the item
    NO_LEAD = "no_lead"
    NOT_OF_THE_UNITS = "not_of_the_units"


@dataclass(frozen=True)
class AckRefused:
    item: Item
    refusal: AckRefusal
    who: str = ""  # who may (NOT_PERMITTED)
    units: tuple[str, ...] = ()  # the item's units (NOT_OF_THE_UNITS)


@dataclass(frozen=True)
class ItemAcknowledged:
    item: Item
    by: Actor


@dataclass(frozen=True)
class CoUnitAcknowledged:
    item: Item
    unit: str


async def acknowledge(
    work: Work, actor: Actor, chat: ChatConfig, item: Item
) -> ItemAcknowledged | CoUnitAcknowledged | AckRefused:
    refused = await check(work, actor, chat, item, Action.ACKNOWLEDGE)
    if refused is not None:
        return AckRefused(item, AckRefusal.NOT_PERMITTED, who=refused.who)
    if item.acknowledged_at is not None and item.acknowledged_by is not None:
        return AckRefused(item, AckRefusal.ALREADY)
    if item.lead_unit_id is None:
        return AckRefused(item, AckRefusal.NO_LEAD)
    if unit_staff(actor.id, [item.lead_unit_id], work.directory):
        await _lead_acknowledges(work, actor, chat, item)
        return ItemAcknowledged(item, actor)
    units = await item_store.units_of(work.session, item.id)
    co_unit = next((u for u in units[1:] if unit_staff(actor.id, [u], work.directory)), None)
    if co_unit is None:
        return AckRefused(item, AckRefusal.NOT_OF_THE_UNITS, units=tuple(units))
    await work.record(actor, item, "co_acknowledged", chat_id=chat.id, detail=work.directory.unit_name(co_unit),
                      after={"unit": co_unit})
    return CoUnitAcknowledged(item, co_unit)


async def _lead_acknowledges(work: Work, actor: Actor, chat: ChatConfig, item: Item) -> None:
    before = common.snapshot(item, "status", "acknowledged_at")
    item.acknowledged_at = work.now
    item.acknowledged_by = actor.id
    common.advance_status(item, ItemStatus.ACKNOWLEDGED)
    common.schedule_next(item, work.config, work.now)
    await work.record(actor, item, "acknowledged", chat_id=chat.id, detail=work.directory.unit_name(item.lead_unit_id),
                      before=before, after=common.snapshot(item, "status", "acknowledged_at"))
