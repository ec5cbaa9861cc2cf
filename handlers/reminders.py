"""Reminder notices: what a due reminder says and whom it reaches. User-facing words live here.

Called by the deadline sweep (bot/deadlines.py) inside its transaction; every notice goes to
the outbox under the point's idempotency key, so a point is queued once however often and by
however many replicas it is swept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from domain.config import Config
from domain.directory import Directory
from domain.vocab import Role
from handlers.deadline_rules import ClockName, Point, audience
from handlers.duty import DutyLookup
from handlers.items import grade_of, shorten, summary_without_link
from handlers.ops import publish
from handlers.policy import local_time, remaining_text, unique
from handlers.standins import with_stand_ins
from store import outbox
from store.models import Item

# Later than this after its time, a reminder says it is sent late (after downtime).
LATE_AFTER = timedelta(seconds=60)

log = logging.getLogger(__name__)

BEFORE = "【提醒】#{n} {grade}｜{clock}时限 {due}（{left}）\n摘要：{summary}\n{ask}"
# Every overdue notice is a 催办, numbered from 1 (the one at the deadline is the first).
OVERDUE = "【超时催办】第{k}次 #{n} {grade}｜{clock}{late_by}（时限 {due}）\n摘要：{summary}\n{ask}"
LATE_NOTE = "\n（补发：原定 {at} 发送）"
HELD_NOTE = "\n（静默时段内暂缓{count}次提醒，现合并发送）"
FINAL_NOTE = "\n催办已达{count}次上限，本事项列为超时未办，已报协调人员。"
ASK = {
    ClockName.GRADE: "请值班人员立即定级：发送“定级 #{n} 重大/较大/一般”。",
    ClockName.PASS_ON: "请承办单位立即签收：发送“签收 #{n}”。",
    ClockName.RESPONSE: "请承办单位按时公开回应：发送“回应 #{n} 方式 内容”。",
}
REMINDER_SUMMARY_MAX = 60  # a reminder is a nudge: its first lines must fit a phone's notification
_ROLES = {"联络员": Role.LIAISON, "分管领导": Role.LEADER, "主要负责人": Role.PRINCIPAL}


@dataclass(frozen=True)
class Reminding:
    """What the sweep hands over: the session, the time, the org and the duty lookup."""

    session: AsyncSession
    now: datetime
    config: Config
    directory: Directory
    duty: DutyLookup


def reminder_text(item: Item, point: Point, now: datetime, config: Config, late: bool) -> str:
    tz = config.tz
    summary = shorten(summary_without_link(item), REMINDER_SUMMARY_MAX)
    values = {
        "n": item.number, "grade": item.grade or "未定级", "clock": point.clock.word,
        "due": local_time(point.due, tz), "summary": summary, "ask": ASK[point.clock].format(n=item.number),
    }
    if point.overdue:
        moment = max(now, point.send_at)
        late_by = "已到时限" if moment - point.due < timedelta(minutes=1) else remaining_text(point.due, moment)
        text = OVERDUE.format(k=point.occurrence + 1, late_by=late_by, **values)
    else:
        text = BEFORE.format(left=remaining_text(point.due, max(now, point.send_at)), **values)
    if point.held:
        text += HELD_NOTE.format(count=point.held + 1)
    if point.final:
        text += FINAL_NOTE.format(count=point.occurrence + 1)
    if late:
        text += LATE_NOTE.format(at=local_time(point.send_at, tz))
    return text


async def _people(ctx: Reminding, item: Item, point: Point) -> list[str]:
    who = audience(point, ctx.config.policy.escalation, grade_of(item))
    people: list[str] = []
    if item.lead_unit_id is not None:
        for word in who.unit_roles:
            people += [p.id for p in ctx.directory.responsible(_ROLES[word], item.lead_unit_id)]
    chat = ctx.directory.chats.get(item.chat_id)
    if (who.duty_officer or who.duty_leader) and chat is not None:
        on_duty = await ctx.duty.on_duty(ctx.session, chat, ctx.now)
        people += on_duty.officers if who.duty_officer else ()
        people += on_duty.leaders if who.duty_leader else ()
    if who.reporter:
        people.append(item.reported_by)
    return unique(p for p in people if p in ctx.directory.people)


async def queue_reminder(ctx: Reminding, item: Item, point: Point) -> bool:
    """Queue the point's notice (and the coordinators' copy when escalated). True if newly queued."""
    late = ctx.now - point.send_at > LATE_AFTER
    text = reminder_text(item, point, ctx.now, ctx.config, late)
    key = point.key(item.id)

    async def post(key: str, chat_id: str, people: list[str]) -> bool:
        body, mentions = await with_stand_ins(ctx.session, ctx.now, ctx.directory, text, people)
        return await outbox.enqueue(
            ctx.session, key=key, chat_id=chat_id, text=body, mentions=mentions, now=ctx.now,
            due_at=point.send_at, item_id=item.id, clock=point.clock.value, clock_due=point.due, late=late,
        )

    fresh = await post(key, item.chat_id, await _people(ctx, item, point))
    if fresh:
        log.info("reminder queued for #%d", item.number, extra={
            "item": item.number, "key": key, "clock": point.clock.value, "stage": point.stage,
            "occurrence": point.occurrence, "send_at": point.send_at.isoformat(), "late": late,
        })
    if audience(point, ctx.config.policy.escalation, grade_of(item)).coordinators_chat:
        for chat in ctx.directory.coordinator_chats():
            if chat.id != item.chat_id:
                await post(f"{key}:{chat.id}", chat.id, [])
    if point.overdue and point.occurrence <= point.held:
        # The deadline's first overdue notice (or the one quiet hours folded it into) is the
        # item.overdue event for subscribed systems; its key makes it once per deadline.
        await publish.overdue(ctx.session, ctx.config, ctx.directory, ctx.now, item, point.clock.value, point.due)
    return fresh
