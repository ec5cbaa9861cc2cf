"""转办 and 退回: who leads an item, under control (000 §三 属地管理、分级负责).

- Before the lead unit's 签收, anyone who may assign (Action.ASSIGN) names the units, the first
  leading.
- After it, the lead may be changed only by the roles of `policy.reassign_after_ack_by` (by
  default coordinators, admins and the current lead unit's leaders), and only with a reason; the
  new lead has acknowledged nothing, so its pass-on clock runs again.
- A unit that thinks an item is not its own gives it back (退回) with a reason: the lead's 退回
  leaves the item without a lead until the coordinators name one; a co-unit only steps out.
The coordinators' copies of both are handlers/ops/notify_assign.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from domain.config import ChatConfig
from domain.vocab import ItemStatus
from handlers import items as common
from handlers.ops.base import Actor, Work
from handlers.ops.events import ItemAssigned, ItemReturned, LeadChanged
from handlers.ops.permits import NotPermitted, check
from handlers.permissions import Action, describe, may_reassign_after_ack, unit_staff
from store import items as item_store
from store.models import Item


class AssignRefusal(StrEnum):
    NO_UNITS = "no_units"
    UNKNOWN_UNIT = "unknown_unit"
    DUPLICATE_UNIT = "duplicate_unit"
    LEAD_CHANGE_NOT_PERMITTED = "lead_change_not_permitted"  # after 签收: not one of reassign_after_ack_by
    LEAD_CHANGE_NEEDS_REASON = "lead_change_needs_reason"  # after 签收: a reason is required


@dataclass(frozen=True)
class AssignRefused:
    item: Item
    refusal: AssignRefusal
    unit: str | None = None  # the unknown or repeated unit, or the lead asked for
    who: str = ""  # who may change the lead (LEAD_CHANGE_NOT_PERMITTED)


@dataclass(frozen=True)
class ReturnRefused:
    """The actor is staff of none of the item's units: only they may give it back."""

    item: Item
    units: tuple[str, ...]


async def assign(
    work: Work, actor: Actor, chat: ChatConfig, item: Item, units: Sequence[str], reason: str = ""
) -> ItemAssigned | AssignRefused | NotPermitted:
    """Set the item's units (ids, the lead first)."""
    refused = await check(work, actor, chat, item, Action.ASSIGN)
    if refused is not None:
        return refused
    invalid = _invalid_units(work, item, units)
    if invalid is not None:
        return invalid
    refusal = await _lead_change_refusal(work, actor, chat, item, units[0], reason)
    if refusal is not None:
        return refusal
    old_lead = item.lead_unit_id
    lead_changed = old_lead != units[0]
    before = {"units": await item_store.units_of(work.session, item.id), **common.snapshot(item, "status")}
    await item_store.set_units(work.session, item, units)
    item.assigned_at = work.now
    if lead_changed and item.acknowledged_at is not None:
        # A new lead unit has not acknowledged anything yet: its pass-on clock runs again.
        item.acknowledged_at = None
        item.acknowledged_by = None
        item.status = ItemStatus.ASSIGNED.value
    common.advance_status(item, ItemStatus.ASSIGNED)
    common.schedule_next(item, work.config, work.now)
    after = {"units": list(units), **common.snapshot(item, "status")}
    if reason:
        after["reason"] = reason
    event_id = await work.record(actor, item, "assigned", chat_id=chat.id,
                                 detail="、".join(work.directory.unit_name(u) for u in units),
                                 before=before, after=after)
    change = LeadChanged(old_lead, units[0]) if lead_changed else None
    return ItemAssigned(item, tuple(units), reason, event_id, actor, change)


def _invalid_units(work: Work, item: Item, units: Sequence[str]) -> AssignRefused | None:
    """Units the directory does not know, or one named twice (a door that resolves names has
    refused these already, in its own words)."""
    if not units:
        return AssignRefused(item, AssignRefusal.NO_UNITS)
    seen: set[str] = set()
    for unit in units:
        if unit not in work.directory.units:
            return AssignRefused(item, AssignRefusal.UNKNOWN_UNIT, unit=unit)
        if unit in seen:
            return AssignRefused(item, AssignRefusal.DUPLICATE_UNIT, unit=unit)
        seen.add(unit)
    return None


async def _lead_change_refusal(
    work: Work, actor: Actor, chat: ChatConfig, item: Item, new_lead: str, reason: str
) -> AssignRefused | None:
    """After the lead's 签收 only the policy's roles may change the lead, and only with a reason."""
    if item.acknowledged_at is None or item.lead_unit_id == new_lead:
        return None
    policy = work.config.policy
    if not may_reassign_after_ack(actor.id, item.lead_unit_id, await work.on_duty(chat), work.directory, policy):
        return AssignRefused(item, AssignRefusal.LEAD_CHANGE_NOT_PERMITTED, unit=new_lead,
                             who=describe(policy.reassign_after_ack_by, unit_word="牵头单位"))
    if not reason:
        return AssignRefused(item, AssignRefusal.LEAD_CHANGE_NEEDS_REASON, unit=new_lead)
    return None


async def give_back(
    work: Work, actor: Actor, chat: ChatConfig, item: Item, reason: str
) -> ItemReturned | ReturnRefused:
    """退回 by the staff of one of the item's units (the first of them the actor serves)."""
    units = await item_store.units_of(work.session, item.id)
    mine = next((u for u in units if unit_staff(actor.id, [u], work.directory)), None)
    if mine is None:
        return ReturnRefused(item, tuple(units))
    was_lead = mine == item.lead_unit_id
    before = {"units": units, **common.snapshot(item, "status", "acknowledged_at")}
    remaining = [] if was_lead else [u for u in units if u != mine]
    # The lead's 退回 leaves the item without a lead until the coordinators name one; its clocks
    # run on (the duty officer is chased meanwhile). A co-unit only steps out.
    await item_store.set_units(work.session, item, remaining)
    if was_lead:
        item.acknowledged_at = None
        item.acknowledged_by = None
        if item.status in (ItemStatus.ASSIGNED.value, ItemStatus.ACKNOWLEDGED.value):
            item.status = (ItemStatus.GRADED if item.grade else ItemStatus.REPORTED).value
        common.schedule_next(item, work.config, work.now)
    after = {"units": remaining, "unit": mine, "reason": reason,
             **common.snapshot(item, "status", "acknowledged_at")}
    event_id = await work.record(actor, item, "returned", chat_id=chat.id, detail=reason, before=before,
                                 after=after)
    return ItemReturned(item, mine, was_lead, tuple(remaining), reason, event_id, actor)
