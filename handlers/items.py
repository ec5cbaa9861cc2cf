"""Shared steps of the item commands: load an item by number, check permission, describe it,
announce to other chats through the outbox. User-facing words for these steps live here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.config import Config
from domain.vocab import FINAL_STATUSES, Grade, ItemStatus
from handlers.context import Context, Outcome
from handlers.deadline_rules import ItemClocks, next_point_at
from handlers.permissions import Action, allowed, who_may
from handlers.policy import local_time, next_due
from store import items as item_store
from store.models import Item

NOT_FOUND = "未找到 #{n}，请用“待办”查看当前事项，或核对编号。"
FINAL = "#{n} {status}，不能再{action}。"
REFUSED = "抱歉，您无权对 #{n} 执行“{action}”。可执行此操作的是：{who}。"
CLASSIFIED_SUMMARY = "（涉密线索，详情请按规定渠道查阅）"
# 001 第十七条: what a group sees instead of a 涉密 item's progress, response or result text.
CLASSIFIED_DETAIL = "（涉密，内容不在群内显示）"


async def load(ctx: Context, number: int) -> Item | Outcome:
    item = await item_store.by_number(ctx.session, number)
    if item is None:
        return Outcome.say(NOT_FOUND.format(n=number))
    return item


async def load_open(ctx: Context, number: int, action: Action) -> Item | Outcome:
    item = await load(ctx, number)
    if isinstance(item, Item) and item.status in FINAL_STATUSES:
        return Outcome.say(FINAL.format(n=number, status=item.status, action=action.value))
    return item


async def permitted(ctx: Context, item: Item, action: Action) -> Outcome | None:
    """None when the sender may act; otherwise the polite refusal (audited)."""
    units = await item_store.units_of(ctx.session, item.id) or ([item.lead_unit_id] if item.lead_unit_id else [])
    if allowed(action, ctx.sender.id, units, await ctx.on_duty(), ctx.directory, ctx.config.policy):
        return None
    text = REFUSED.format(n=item.number, action=action.value, who=who_may(action, ctx.config.policy))
    return await ctx.refuse(text, action=action.value, item_id=item.id)


def snapshot(item: Item, *fields: str) -> dict[str, Any]:
    """JSON-safe values of the named fields, for the audit before/after."""
    values: dict[str, Any] = {}
    for name in fields:
        value = getattr(item, name)
        values[name] = value.isoformat() if isinstance(value, datetime) else value
    return values


async def copy_to_coordinators(
    ctx: Context, item: Item, text: str, key: str, mentions: Sequence[str] = ()
) -> None:
    """Post a copy in every coordinators' chat other than this one, once per key (归口报送)."""
    await ctx.work().copy_to_coordinators(item.id, text, key, besides=ctx.chat, mentions=mentions)


def public_summary(item: Item) -> str:
    """The summary as any group may see it: a 涉密 item shows only its authorised summary."""
    if item.classified:
        return item.authorised_summary or CLASSIFIED_SUMMARY
    return item.summary


def public_detail(item: Item, text: str | None) -> str:
    """A user's text about the item (progress, response, result) as a group may see it."""
    if item.classified:
        return CLASSIFIED_DETAIL
    return text or ""


def public_link(item: Item, link: str | None) -> str | None:
    """A link about the item (its source, a response) as a group may see it: none when 涉密."""
    return None if item.classified else link


# A notice carries a summary up to this many characters; a longer one ends with … and points to
# 查询, which shows it whole: a report pasted from a long post must not fill a phone screen per notice.
NOTICE_SUMMARY_MAX = 200
FULL_TEXT_HINT = "（全文请发送“查询 #{n}”）"


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the last being …, when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def notice_summary(item: Item, *, with_link: bool = False) -> str:
    """The summary a notice shows: without the link (on its own line) unless `with_link`, and
    shortened past NOTICE_SUMMARY_MAX with a pointer to the full text."""
    text = public_summary(item) if with_link else summary_without_link(item)
    if len(text) <= NOTICE_SUMMARY_MAX:
        return text
    return shorten(text, NOTICE_SUMMARY_MAX) + FULL_TEXT_HINT.format(n=item.number)


def summary_without_link(item: Item) -> str:
    """The summary for a notice that shows the link on its own line."""
    if item.classified or not item.link:
        return public_summary(item)
    return item.summary.replace(item.link, "").strip() or item.summary


def unit_names(ctx: Context, unit_ids: list[str]) -> str:
    return "、".join(ctx.directory.unit_name(u) for u in unit_ids) or "未指定"


def clock_line(ctx: Context, item: Item) -> str | None:
    pending = next_due(
        item.grade_due_at, item.grade is not None, item.pass_on_due_at, item.acknowledged_at is not None,
        item.response_due_at, item.responded_at is not None,
    )
    if pending is None:
        return None
    name, due = pending
    return f"{name}时限 {local_time(due, ctx.tz)}"


def grade_of(item: Item) -> Grade | None:
    return Grade(item.grade) if item.grade else None


def item_clocks(item: Item) -> ItemClocks:
    """The facts the deadline rules need about an item."""
    return ItemClocks(
        status=item.status,
        grade=Grade(item.grade) if item.grade else None,
        reported_at=item.reported_at,
        grade_due=item.grade_due_at,
        pass_on_due=item.pass_on_due_at,
        response_due=item.response_due_at,
        acknowledged=item.acknowledged_at is not None,
        responded=item.responded_at is not None,
        overdue_from=item.overdue_from,
    )


def schedule_next(item: Item, config: Config, now: datetime, *, skip_past: bool = False) -> None:
    """The item's clocks changed (reported, graded, acknowledged, answered…): put its next
    reminder point where the deadline sweep will find it — at once when a point between the
    last sweep and now is still owed, else at the point's own time. (Not simply "now": a sweep
    per new item would be a write transaction per report for nothing.)

    `skip_past`: reminder points already in the past are not sent (after grading or re-grading
    the notice itself states the deadlines; a burst of stale reminders would only be noise).
    """
    if item.status in FINAL_STATUSES:
        item.next_reminder_at = None
        return
    if skip_past or item.reminded_until is None:
        item.reminded_until = now
    item.next_reminder_at = next_point_at(item_clocks(item), config.policy, config.tz, item.reminded_until)


def advance_status(item: Item, status: ItemStatus) -> None:
    """Move the status forward along the lifecycle, never back (a re-grade keeps 已签收)."""
    order = list(ItemStatus)
    if order.index(status) > order.index(ItemStatus(item.status)):
        item.status = status.value
