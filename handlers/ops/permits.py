"""Who may act on an item: the policy's rule for the action, against the people on duty in the chat
where the action is taken (handlers/permissions.py holds the rules)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.config import ChatConfig
from handlers.ops.base import Actor, Work
from handlers.permissions import Action, allowed, who_may
from store import items as item_store
from store.models import Item


@dataclass(frozen=True)
class NotPermitted:
    """The actor may not take `action` on `item`; `who` says who may."""

    item: Item
    action: Action
    who: str


async def check(work: Work, actor: Actor, chat: ChatConfig, item: Item, action: Action) -> NotPermitted | None:
    units = await item_store.units_of(work.session, item.id) or ([item.lead_unit_id] if item.lead_unit_id else [])
    policy = work.config.policy
    if allowed(action, actor.id, units, await work.on_duty(chat), work.directory, policy):
        return None
    return NotPermitted(item, action, who_may(action, policy))
