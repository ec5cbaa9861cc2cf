"""Grade an item (定级 / 调整等级): the operation behind `定级 #N 等级`, `#N 等级` and a bare answer
to the grade question.

One rule for who may grade (004 第六条): `policy.grade_by`, checked against the people on duty in
the chat where the grade is given. Lowering a grade also needs a reason and one of
`policy.downgrade_by`. New deadlines count from the report; a deadline the regrade puts in the
past starts its overdue chain now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.config import ChatConfig
from domain.vocab import Grade, ItemStatus
from handlers import items as common
from handlers.ops import publish
from handlers.ops.base import Actor, Work
from handlers.ops.permits import check
from handlers.permissions import Action, describe, may_downgrade
from handlers.policy import deadlines, notice_mentions, unique
from store import audit, pending
from store import items as item_store
from store.models import Item

_RANK = {Grade.GENERAL: 0, Grade.SIGNIFICANT: 1, Grade.MAJOR: 2}


class Refusal(StrEnum):
    NOT_PERMITTED = "not_permitted"  # not one of policy.grade_by (the question stays open for those who are)
    DOWNGRADE_NOT_PERMITTED = "downgrade_not_permitted"
    DOWNGRADE_NEEDS_REASON = "downgrade_needs_reason"
    SAME_GRADE = "same_grade"


@dataclass(frozen=True)
class GradeRefused:
    item: Item
    grade: Grade
    refusal: Refusal
    old: Grade | None = None
    who: str = ""  # who may, for the refusals that say so


@dataclass(frozen=True)
class ItemGraded:
    item: Item
    grade: Grade
    old: Grade | None  # None: the first grade
    reason: str
    previous: tuple[str, datetime] | None  # the earlier grader and when (a regrade)
    event_id: int
    units: tuple[str, ...]  # the item's units, the lead first
    mentions: tuple[str, ...]  # by policy; a downgrade adds the original grader
    by: Actor

    @property
    def downgraded(self) -> bool:
        return is_downgrade(self.old, self.grade)


def is_downgrade(old: Grade | None, new: Grade) -> bool:
    return old is not None and _RANK[new] < _RANK[old]


async def grade(
    work: Work, actor: Actor, chat: ChatConfig, item: Item, new: Grade, reason: str = ""
) -> ItemGraded | GradeRefused:
    refused = await check(work, actor, chat, item, Action.GRADE)
    if refused is not None:
        return GradeRefused(item, new, Refusal.NOT_PERMITTED, who=refused.who)
    old = common.grade_of(item)
    if old == new:
        await pending.close_for_item(work.session, item.id, "grade")
        return GradeRefused(item, new, Refusal.SAME_GRADE, old)
    if old is not None and is_downgrade(old, new):
        policy = work.config.policy
        if not may_downgrade(actor.id, item.lead_unit_id, await work.on_duty(chat), work.directory, policy):
            return GradeRefused(item, new, Refusal.DOWNGRADE_NOT_PERMITTED, old,
                                who=describe(policy.downgrade_by, unit_word="牵头单位"))
        if not reason:
            return GradeRefused(item, new, Refusal.DOWNGRADE_NEEDS_REASON, old)
    previous = await audit.last_of(work.session, item.id, ("graded", "regraded")) if old else None
    fields = ("grade", "pass_on_due_at", "response_due_at", "status", "overdue_from")
    before = common.snapshot(item, *fields)
    _set_clocks(work, actor, item, new, first=old is None)
    await pending.close_for_item(work.session, item.id, "grade")
    after = common.snapshot(item, *fields)
    if reason:
        after["reason"] = reason
    event_id = await work.record(actor, item, "regraded" if old else "graded", chat_id=chat.id, detail=new.value,
                                 before=before, after=after)
    mentions = notice_mentions(new, item.lead_unit_id, await work.on_duty(chat), work.config.policy, work.directory)
    if is_downgrade(old, new) and previous is not None:
        mentions = unique([*mentions, previous[0]])
    units = tuple(await item_store.units_of(work.session, item.id))
    graded = ItemGraded(item, new, old, reason, previous, event_id, units, tuple(mentions), actor)
    await publish.graded(work, graded)  # item.graded for subscribed systems, in this transaction
    return graded


def _set_clocks(work: Work, actor: Actor, item: Item, new: Grade, *, first: bool) -> None:
    """New deadlines from the report time. A deadline the regrade puts in the past starts its
    overdue chain now (the sweep finds it at once), not at the next step of the old schedule."""
    due = deadlines(item.reported_at, new, work.config.policy)
    item.grade = new.value
    item.pass_on_due_at = due.pass_on_due
    item.response_due_at = due.response_due
    if first:
        item.graded_at = work.now
        item.graded_by = actor.id
    common.advance_status(item, ItemStatus.GRADED)
    past = [
        d for d, stopped in ((due.pass_on_due, item.acknowledged_at), (due.response_due, item.responded_at))
        if d is not None and stopped is None and d <= work.now
    ]
    item.overdue_from = work.now if past else None
    common.schedule_next(item, work.config, work.now, skip_past=True)
    if past:
        # The overdue point at `now` is owed: the sweep sends what falls after reminded_until.
        item.reminded_until = work.now - timedelta(microseconds=1)
        item.next_reminder_at = work.now
