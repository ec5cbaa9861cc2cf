"""定级 and the answer to the grade question: set the grade, compute the clocks, notify by policy.

One rule for who may grade (004 第六条), whatever the path — `定级 #N 等级`, `#N 等级`, or a
bare `1`/`重大` answering the grade question: `policy.grade_by`. Lowering a grade also needs a
reason and one of `policy.downgrade_by`; it is shown as an adjustment naming the original
grader, who is @-mentioned, and copied to the coordinators (归口报送).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.vocab import Grade, ItemStatus
from handlers import items as common
from handlers.context import Context, Outcome
from handlers.parsing import grade_like, parse_grade, strip_separators, take_item_ref
from handlers.permissions import Action, describe, may_downgrade
from handlers.policy import deadlines, local_time, notice_mentions, remaining_text, span_text, unique
from handlers.router import Router, Usage
from store import audit, pending
from store import items as item_store
from store.models import Item

USAGE = "用法：定级 #编号 等级，例如：定级 #12 较大（等级为 重大、较大 或 一般，也可写 1、2、3）"
NOT_A_GRADE = "“{word}”不是有效等级，请用 重大、较大 或 一般（也可写 1、2、3）。"
# A word meant as a grade that is none of ours (特别重大, 四级, a bare 4): the list of grades.
GRADE_LIST = "等级只有三级：重大、较大、一般（也可回复 1、2、3）。"
GRADE_LIST_FOR = "等级只有三级：重大、较大、一般（也可写 1、2、3）。请发送“定级 #{n} 重大/较大/一般”。"
SAME_GRADE = "#{n} 已定为{grade}，无需调整。"
EXPIRED = "#{n} 的定级询问已于 {at} 过期。请发送“定级 #{n} 重大/较大/一般”完成定级。"
DOWNGRADE_NEEDS_REASON = "下调等级须说明理由，例如：定级 #{n} {grade} 理由：经核实影响范围有限"
DOWNGRADE_REFUSED = "抱歉，#{n} 由{old}下调为{grade}须由{who}决定。"
HEADER_NEW = "【舆情通报】#{n} {grade}舆情"
HEADER_REGRADE = "【舆情通报】#{n} 等级调整：{old} → {grade}"
HEADER_DOWNGRADE = "【舆情通报】#{n} 等级调整（下调）：{old} → {grade}"
ADJUSTMENT = "原定级：{grader} {at}（{old}）\n调整理由：{reason}\n"
NOTICE_BODY = (
    "摘要：{summary}\n"
    "来源：{source}\n"
    "牵头单位：{units}\n"
    "定级：{who} {at}\n"
    "{adjustment}"
    "签收时限：{pass_on}（上报后{pass_on_span}内{pass_on_state}）\n"
    "回应时限：{response}（上报后{response_span}内{response_state}）\n"
    "{ask}"
)
ASK_ACK = "请相关负责同志及时签收处置：发送“签收 #{n}”。"
ASK_CONTINUE = "该线索已签收，请按调整后的时限继续处置。"
EMERGENCY_WARNING = "\n提示：该线索类别为“{category}”，定为一般请再次研判确认。"

router = Router("grading")
SHORTHAND = re.compile(r"^(#|第?\d+号)")
_REASON = re.compile(r"(?:理由|原因)[:：\s]*")
_RANK = {Grade.GENERAL: 0, Grade.SIGNIFICANT: 1, Grade.MAJOR: 2}


@dataclass(frozen=True)
class GradeCommand:
    number: int
    grade: Grade
    reason: str = ""


def parse_grade_words(number: int, words: str) -> GradeCommand | Usage:
    """"较大" / "一般 理由：…" / "一般，经核实影响有限" after the item number."""
    word, _, rest = words.partition(" ")
    grade = parse_grade(word)
    if grade is None:
        marked = _REASON.search(words)  # "一般理由：…" typed without a space
        if marked is None or (grade := parse_grade(words[: marked.start()])) is None:
            return Usage(GRADE_LIST_FOR.format(n=number) if _meant_as_grade(words) else NOT_A_GRADE.format(word=word))
        rest = words[marked.start() :]
    rest = strip_separators(rest)
    marked = _REASON.match(rest)
    reason = strip_separators(rest[marked.end() :]) if marked else rest
    return GradeCommand(number, grade, reason)


def _meant_as_grade(words: str) -> bool:
    """"特别重大" / "4" / "四级理由：…" after the item number: a grade, though none of ours."""
    marked = _REASON.search(words)
    word = words[: marked.start()] if marked is not None else words.partition(" ")[0]
    return grade_like(word, loose=True)


def parse_grade_command(rest: str) -> GradeCommand | Usage:
    ref = take_item_ref(rest)
    if ref is None or not ref[1]:
        return Usage(USAGE)
    return parse_grade_words(*ref)


@router.command("定级", "研判", parse=parse_grade_command,
                summary="定级 #编号 重大|较大|一般 [理由：…] — 定级或调整等级（下调须说明理由）")
async def grade_item(ctx: Context, command: GradeCommand) -> Outcome:
    item = await common.load_open(ctx, command.number, Action.GRADE)
    if isinstance(item, Outcome):
        return item
    return await apply_grade(ctx, item, command.grade, command.reason)


async def _shorthand_grade(ctx: Context) -> Outcome | None:
    # Only with an explicit number mark ("#12", "12号"): "1 2" is too easily something else.
    if not SHORTHAND.match(ctx.text):
        return None
    ref = take_item_ref(ctx.text)
    if ref is None or not ref[1]:
        return None
    command = parse_grade_words(*ref)
    if isinstance(command, Usage):
        # "#12 特别重大" was meant as a grade; "#12 something" is left to the other readers of free text.
        return Outcome.say(command.hint) if _meant_as_grade(ref[1]) else None
    return await grade_item(ctx, command)


@router.fallback
async def answer_grade_question(ctx: Context) -> Outcome | None:
    """A bare "1" / "重大" from someone the bot asked for a grade in this chat; or "#12 重大"
    (any form of the number, a grade word) from anyone, read as 定级 #12 重大. A word meant as a
    grade that is none of ours ("特别重大", "4") gets the list of grades; the question stays open."""
    grade = parse_grade(ctx.text)
    if grade is None and not grade_like(ctx.text, loose=True):
        return await _shorthand_grade(ctx)
    question = await pending.find(ctx.session, ctx.chat.platform.value, ctx.chat.id, ctx.sender.id)
    if question is None or question.kind != "grade" or question.item_id is None:
        if grade is None or (question is not None and question.kind == pending.OFFER_REPORT):
            return None  # the latest question put to this person is the offer to register (offer.py)
        return await _not_asked(ctx)
    number = int(question.payload.get("number", 0))
    if question.expires_at <= ctx.now:
        await ctx.session.delete(question)
        return Outcome.say(EXPIRED.format(n=number, at=local_time(question.expires_at, ctx.tz)))
    if grade is None:
        return Outcome.say(GRADE_LIST)
    item = await common.load_open(ctx, number, Action.GRADE)
    if isinstance(item, Outcome):
        await ctx.session.delete(question)
        return item
    return await apply_grade(ctx, item, grade)


async def _not_asked(ctx: Context) -> Outcome | None:
    """A bare grade from someone not asked: while the chat has an open grade question, someone
    who may not grade that item gets the refusal (every path refuses alike); others are told
    there is no question for them (help.py)."""
    open_item = await pending.open_in_chat(ctx.session, ctx.chat.platform.value, ctx.chat.id, "grade", ctx.now)
    if open_item is None:
        return None
    item = await item_store.by_number(ctx.session, open_item)
    if item is None:
        return None
    return await common.permitted(ctx, item, Action.GRADE)


def is_downgrade(old: Grade | None, new: Grade) -> bool:
    return old is not None and _RANK[new] < _RANK[old]


async def _downgrade_refusal(ctx: Context, item: Item, old: Grade, grade: Grade, reason: str) -> Outcome | None:
    policy = ctx.config.policy
    if not may_downgrade(ctx.sender.id, item.lead_unit_id, await ctx.on_duty(), ctx.directory, policy):
        text = DOWNGRADE_REFUSED.format(n=item.number, old=old.value, grade=grade.value,
                                        who=describe(policy.downgrade_by, unit_word="牵头单位"))
        return await ctx.refuse(text, action=Action.GRADE.value, item_id=item.id)
    if not reason:
        return Outcome.say(DOWNGRADE_NEEDS_REASON.format(n=item.number, grade=grade.value))
    return None


async def apply_grade(ctx: Context, item: Item, grade: Grade, reason: str = "") -> Outcome:
    refusal = await common.permitted(ctx, item, Action.GRADE)
    if refusal is not None:
        return refusal  # the question stays open for those who may answer; the chase goes on
    old = common.grade_of(item)
    if old == grade:
        await pending.close_for_item(ctx.session, item.id, "grade")
        return Outcome.say(SAME_GRADE.format(n=item.number, grade=grade.value))
    if old is not None and is_downgrade(old, grade):
        refusal = await _downgrade_refusal(ctx, item, old, grade, reason)
        if refusal is not None:
            return refusal
    previous = await audit.last_of(ctx.session, item.id, ("graded", "regraded")) if old else None
    fields = ("grade", "pass_on_due_at", "response_due_at", "status", "overdue_from")
    before = common.snapshot(item, *fields)
    _set_clocks(ctx, item, grade, first=old is None)
    await pending.close_for_item(ctx.session, item.id, "grade")
    after = common.snapshot(item, *fields)
    if reason:
        after["reason"] = reason
    event_id = await common.record(ctx, item, "regraded" if old else "graded", detail=grade.value,
                                   before=before, after=after)
    text = await _notice_text(ctx, item, grade, old, reason, previous)
    mentions = notice_mentions(grade, item.lead_unit_id, await ctx.on_duty(), ctx.config.policy, ctx.directory)
    downgraded = is_downgrade(old, grade)
    if downgraded and previous is not None:
        mentions = unique([*mentions, previous[0]])
    policy = ctx.config.policy
    if policy.for_grade(grade).copy_to_coordinators or (downgraded and policy.copies.downgrade):
        await common.copy_to_coordinators(ctx, item, text, key=f"notice:item{item.id}:grade:{event_id}")
    return Outcome.say(text, mentions)


def _set_clocks(ctx: Context, item: Item, grade: Grade, *, first: bool) -> None:
    """New deadlines from the report time. A deadline the regrade puts in the past starts its
    overdue chain now (the sweep finds it at once), not at the next step of the old schedule."""
    due = deadlines(item.reported_at, grade, ctx.config.policy)
    item.grade = grade.value
    item.pass_on_due_at = due.pass_on_due
    item.response_due_at = due.response_due
    if first:
        item.graded_at = ctx.now
        item.graded_by = ctx.sender.id
    common.advance_status(item, ItemStatus.GRADED)
    past = [
        d for d, stopped in ((due.pass_on_due, item.acknowledged_at), (due.response_due, item.responded_at))
        if d is not None and stopped is None and d <= ctx.now
    ]
    item.overdue_from = ctx.now if past else None
    common.reschedule(ctx, item, skip_past=True)
    if past:
        # The overdue point at `now` is owed: the sweep sends what falls after reminded_until.
        item.reminded_until = ctx.now - timedelta(microseconds=1)
        item.next_reminder_at = ctx.now


def _state(due: datetime, stopped: datetime | None, word: str, ctx: Context) -> str:
    """"，已签收" for a stopped clock, "，已超时1小时30分钟" for one already past, else nothing."""
    if stopped is not None:
        return f"，{word}"
    return f"，{remaining_text(due, ctx.now)}" if due <= ctx.now else ""


async def _notice_text(
    ctx: Context, item: Item, grade: Grade, old: Grade | None, reason: str, previous: tuple[str, datetime] | None,
) -> str:
    rules = ctx.config.policy.for_grade(grade)
    if old is None:
        header = HEADER_NEW.format(n=item.number, grade=grade.value)
    elif is_downgrade(old, grade):
        header = HEADER_DOWNGRADE.format(n=item.number, old=old.value, grade=grade.value)
    else:
        header = HEADER_REGRADE.format(n=item.number, old=old.value, grade=grade.value)
    adjustment = ""
    if old is not None and previous is not None and (reason or is_downgrade(old, grade)):
        shown = common.public_detail(item, reason) if reason else "未说明"
        adjustment = ADJUSTMENT.format(grader=ctx.name(previous[0]), old=old.value, reason=shown,
                                       at=local_time(previous[1], ctx.tz))
    link = common.public_link(item, item.link)
    assert item.pass_on_due_at is not None and item.response_due_at is not None
    body = NOTICE_BODY.format(
        summary=common.notice_summary(item),
        source=f"{item.source} {link}" if link else item.source,
        units=common.unit_names(ctx, await item_store.units_of(ctx.session, item.id)),
        who=ctx.sender.name,
        at=local_time(ctx.now, ctx.tz),
        adjustment=adjustment,
        pass_on=local_time(item.pass_on_due_at, ctx.tz),
        pass_on_span=span_text(rules.pass_on_minutes),
        pass_on_state=_state(item.pass_on_due_at, item.acknowledged_at, "已签收", ctx),
        response=local_time(item.response_due_at, ctx.tz),
        response_span=span_text(rules.response_minutes),
        response_state=_state(item.response_due_at, item.responded_at, "已回应", ctx),
        ask=(ASK_CONTINUE if item.acknowledged_at else ASK_ACK.format(n=item.number)),
    )
    text = f"{header}\n{body}"
    if grade is Grade.GENERAL and item.category in ctx.config.policy.emergency_categories:
        text += EMERGENCY_WARNING.format(category=item.category)
    return text
