"""定级 and the answer to the grade question: set the grade, compute the clocks, notify by policy."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.vocab import Grade, ItemStatus
from handlers import items as common
from handlers.context import Context, Outcome
from handlers.parsing import parse_grade, take_item_ref
from handlers.permissions import Action
from handlers.policy import deadlines, local_time, notice_mentions, span_text
from handlers.router import Router, Usage
from store import items as item_store
from store import pending
from store.models import Item

USAGE = "用法：定级 #编号 等级，例如：定级 #12 较大（等级为 重大、较大 或 一般，也可写 1、2、3）"
NOT_A_GRADE = "“{word}”不是有效等级，请用 重大、较大 或 一般（也可写 1、2、3）。"
SAME_GRADE = "#{n} 已定为{grade}，无需调整。"
EXPIRED = "#{n} 的定级询问已于 {at} 过期。请发送“定级 #{n} 重大/较大/一般”完成定级。"
HEADER_NEW = "【舆情通报】#{n} {grade}舆情"
HEADER_REGRADE = "【舆情通报】#{n} 等级调整：{old} → {grade}"
NOTICE_BODY = (
    "摘要：{summary}\n"
    "来源：{source}\n"
    "牵头单位：{units}\n"
    "定级：{who} {at}\n"
    "通报时限：{pass_on}（报告后{pass_on_span}）\n"
    "回应时限：{response}（报告后{response_span}）\n"
    "请相关负责同志及时签收处置：发送“签收 #{n}”。"
)

router = Router("grading")
SHORTHAND = re.compile(r"^(#|第?\d+号)")


@dataclass(frozen=True)
class GradeCommand:
    number: int
    grade: Grade


def parse_grade_command(rest: str) -> GradeCommand | Usage:
    ref = take_item_ref(rest)
    if ref is None:
        return Usage(USAGE)
    number, word = ref
    if not word:
        return Usage(USAGE)
    grade = parse_grade(word)
    if grade is None:
        return Usage(NOT_A_GRADE.format(word=word))
    return GradeCommand(number, grade)


@router.command("定级", "研判", parse=parse_grade_command, summary="定级 #编号 重大|较大|一般 — 定级或调整等级")
async def grade_item(ctx: Context, command: GradeCommand) -> Outcome:
    item = await common.load_open(ctx, command.number, Action.GRADE)
    if isinstance(item, Outcome):
        return item
    refusal = await common.permitted(ctx, item, Action.GRADE)
    if refusal is not None:
        return refusal
    return await apply_grade(ctx, item, command.grade)


async def _shorthand_grade(ctx: Context) -> Outcome | None:
    # Only with an explicit number mark ("#12", "12号"): "1 2" is too easily something else.
    if not SHORTHAND.match(ctx.text):
        return None
    ref = take_item_ref(ctx.text)
    if ref is None or not ref[1]:
        return None
    grade = parse_grade(ref[1])
    if grade is None:
        return None  # "#12 something": not a grade, left to the other readers of free text
    return await grade_item(ctx, GradeCommand(ref[0], grade))


@router.fallback
async def answer_grade_question(ctx: Context) -> Outcome | None:
    """A bare "1" / "重大" from someone the bot asked for a grade in this chat; or "#12 重大"
    (any form of the number, a grade word) from anyone, read as 定级 #12 重大."""
    grade = parse_grade(ctx.text)
    if grade is None:
        return await _shorthand_grade(ctx)
    question = await pending.find(ctx.session, ctx.chat.platform.value, ctx.chat.id, ctx.sender.id)
    if question is None or question.kind != "grade" or question.item_id is None:
        return None
    number = int(question.payload.get("number", 0))
    if question.expires_at <= ctx.now:
        await ctx.session.delete(question)
        return Outcome.say(EXPIRED.format(n=number, at=local_time(question.expires_at, ctx.tz)))
    item = await common.load_open(ctx, number, Action.GRADE)
    if isinstance(item, Outcome):
        await ctx.session.delete(question)
        return item
    return await apply_grade(ctx, item, grade)


async def apply_grade(ctx: Context, item: Item, grade: Grade) -> Outcome:
    old = common.grade_of(item)
    if old == grade:
        await pending.close_for_item(ctx.session, item.id, "grade")
        return Outcome.say(SAME_GRADE.format(n=item.number, grade=grade.value))
    fields = ("grade", "pass_on_due_at", "response_due_at", "status")
    before = common.snapshot(item, *fields)
    due = deadlines(item.reported_at, grade, ctx.config.policy)
    item.grade = grade.value
    item.pass_on_due_at = due.pass_on_due
    item.response_due_at = due.response_due
    if old is None:
        item.graded_at = ctx.now
        item.graded_by = ctx.sender.id
    common.advance_status(item, ItemStatus.GRADED)
    common.reschedule(ctx, item, skip_past=True)
    await pending.close_for_item(ctx.session, item.id, "grade")
    event_id = await common.record(
        ctx, item, "regraded" if old else "graded", detail=grade.value,
        before=before, after=common.snapshot(item, *fields),
    )
    text = await _notice_text(ctx, item, grade, old)
    mentions = notice_mentions(grade, item.lead_unit_id, await ctx.on_duty(), ctx.config.policy, ctx.directory)
    if ctx.config.policy.for_grade(grade).copy_to_coordinators:
        await common.copy_to_coordinators(ctx, item, text, key=f"notice:item{item.id}:grade:{event_id}")
    return Outcome.say(text, mentions)


async def _notice_text(ctx: Context, item: Item, grade: Grade, old: Grade | None) -> str:
    rules = ctx.config.policy.for_grade(grade)
    header = (
        HEADER_REGRADE.format(n=item.number, old=old.value, grade=grade.value)
        if old
        else HEADER_NEW.format(n=item.number, grade=grade.value)
    )
    source = item.source if item.classified or not item.link else f"{item.source} {item.link}"
    assert item.pass_on_due_at is not None and item.response_due_at is not None
    body = NOTICE_BODY.format(
        n=item.number,
        summary=common.summary_without_link(item),
        source=source,
        units=common.unit_names(ctx, await item_store.units_of(ctx.session, item.id)),
        who=ctx.sender.name,
        at=local_time(ctx.now, ctx.tz),
        pass_on=local_time(item.pass_on_due_at, ctx.tz),
        pass_on_span=span_text(rules.pass_on_minutes),
        response=local_time(item.response_due_at, ctx.tz),
        response_span=span_text(rules.response_minutes),
    )
    return f"{header}\n{body}"
