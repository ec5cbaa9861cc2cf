"""The typed events operations return: what happened, for the doors to render and the notifier
to announce."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.ops.base import Actor
from store.models import Item


@dataclass(frozen=True)
class ItemReported:
    """A new item was recorded and the grade question put to `asked` in the item's chat."""

    item: Item
    asked: tuple[str, ...]  # who may answer the grade question with a bare 1/2/3
    officers_on_duty: tuple[str, ...]  # the chat's duty officers now (the acceptance @-mentions those asked)
    replaced_grade_question: int | None = None  # the reporter's earlier open grade question (item number)
    suggested_grade: str | None = None  # what the source system suggests (intake API)


@dataclass(frozen=True)
class ItemSupplemented:
    """A report of a link already reported within policy.duplicate_days: recorded on that item."""

    item: Item


@dataclass(frozen=True)
class LeadChanged:
    """The lead unit an assignment replaced (None: the item had none, e.g. after the lead's 退回)."""

    old: str | None
    new: str


@dataclass(frozen=True)
class ItemAssigned:
    """转办: the item's units were set, the lead first."""

    item: Item
    units: tuple[str, ...]
    reason: str
    event_id: int
    by: Actor
    lead_change: LeadChanged | None  # None: the lead stayed (only the co-units changed)


@dataclass(frozen=True)
class ItemReturned:
    """退回: `unit` gave the item back with a reason; when it led, the item has no lead until the
    coordinators name one."""

    item: Item
    unit: str
    was_lead: bool
    remaining: tuple[str, ...]  # the item's units afterwards
    reason: str
    event_id: int
    by: Actor


@dataclass(frozen=True)
class ItemClassified:
    """涉密: the item was marked classified, or (already marked) its authorised summary changed."""

    item: Item
    summary: str | None  # the authorised summary (None: the standard wording is shown)
    was_classified: bool
    event_id: int
    by: Actor


@dataclass(frozen=True)
class ItemDeclassified:
    item: Item
    reason: str
    event_id: int
    by: Actor
