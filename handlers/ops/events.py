"""The typed events operations return: what happened, for the doors to render and the notifier
to announce."""

from __future__ import annotations

from dataclasses import dataclass

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
