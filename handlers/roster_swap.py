"""换班 (asked, then 同意/拒绝 by the other person) and 代班 in chat: the chat door of the operations in
handlers/ops/roster_swap.py. The question to the other person is a dialogue (SWAP_DIALOGUE),
answered through the one resolver in handlers/dialogues.py; it survives restarts and expires.
The confirmation names the people the stored roster has after the change.
"""

from __future__ import annotations

from domain.dialogues import DialogueKind, ShiftPart, SwapQuestion
from handlers.context import Context, Outcome
from handlers.dialogues import Dialogue
from handlers.ops import roster_swap as ops
from handlers.ops.roster import (
    ShiftCovered,
    ShiftsSwapped,
    StoredPart,
    SwapAsked,
    SwapDeclined,
    SwapExpired,
    SwapStale,
)
from handlers.ops.roster_text import holders_between, part_line, people_between
from handlers.roster_common import gap_warning, refused
from handlers.roster_parse import ShiftExpr
from handlers.roster_view import when_label
from store.pending import Question

SWAP_ASKED = "已向{to}发出换班申请：\n{lines}\n请{to}回复“同意”或“拒绝”（{expires}前有效）。"
SWAP_DONE = "【换班】{a} 与 {b} 换班已确认：\n{lines}"
SWAP_DECLINED = "{b} 拒绝了 {a} 的换班申请（{summary}），排班不变。"
SWAP_EXPIRED = "该换班申请已于 {at} 过期，排班不变。如仍需换班，请 {a} 重新发起。"
SWAP_STALE = "该换班申请已失效：{summary} 的安排已有变动，排班不变。请重新发起。"
NO_QUESTION = "您当前没有待答复的换班申请。"
COVERED = "【代班】{new} 代 {old} 值班：\n{lines}"
ANSWERS_YES = frozenset({"同意", "同意换班", "接受"})
ANSWERS_NO = frozenset({"拒绝", "不同意", "拒绝换班"})
# The answers that, with no question open, are told there is none (接受 may be meant otherwise).
TOLD_NO_QUESTION = frozenset({"同意", "拒绝", "不同意"})


def _line(ctx: Context, part: ShiftPart, new: str | None = None) -> str:
    return part_line(part, ctx.directory, ctx.tz, new)


def readback(ctx: Context, parts: tuple[StoredPart, ...]) -> tuple[list[str], list[str]]:
    """The confirmation lines of changed parts as the stored roster has them now, and who holds them."""
    lines: list[str] = []
    people: list[str] = []
    for stored in parts:
        part = stored.part.model_copy(update={"start": stored.start})
        text = people_between(ctx.directory, ctx.tz, stored.segments, stored.start, part.end)
        lines.append(_line(ctx, part, text))
        people += holders_between(stored.segments, stored.start, part.end)
    return lines, people


# -- 换班 ------------------------------------------------------------------------------------------------


async def swap(ctx: Context, target_name: str, give: ShiftExpr, take: ShiftExpr | None) -> Outcome:
    event = await ops.ask_swap(ctx.work(), ctx.actor(), ctx.chat, target_name, give, take)
    if not isinstance(event, SwapAsked):
        return await refused(ctx, event)
    lines = "\n".join(_line(ctx, p) for p in event.question.parts)
    text = SWAP_ASKED.format(to=event.target.name, lines=lines, expires=when_label(event.expires_at, ctx.tz))
    return Outcome.say(text, [event.target.id])


def _word(text: str) -> str:
    return text.strip().rstrip("。！!")


def reads_as_answer(text: str) -> bool:
    word = _word(text)
    return word in ANSWERS_YES or word in ANSWERS_NO


async def answer_swap(ctx: Context, question: Question[SwapQuestion]) -> Outcome:
    """同意 / 拒绝 from the person asked to swap."""
    agree = _word(ctx.text) in ANSWERS_YES
    event = await ops.answer_swap(ctx.work(), ctx.actor(), ctx.chat, question, agree=agree)
    asker = question.payload.asker
    summary = "；".join(_line(ctx, p) for p in question.payload.parts)
    if isinstance(event, SwapExpired):
        return Outcome.say(SWAP_EXPIRED.format(at=when_label(event.expired_at, ctx.tz), a=ctx.name(asker)), [asker])
    if isinstance(event, SwapDeclined):
        return Outcome.say(SWAP_DECLINED.format(a=ctx.name(asker), b=event.by.name, summary=summary), [asker])
    if isinstance(event, SwapStale):
        return Outcome.say(SWAP_STALE.format(summary=_line(ctx, event.part)), [asker])
    if not isinstance(event, ShiftsSwapped):
        return await refused(ctx, event)
    lines, held = readback(ctx, event.parts)
    text = SWAP_DONE.format(a=ctx.name(asker), b=event.by.name, lines="\n".join(lines))
    return Outcome.say("\n".join([text, *gap_warning(ctx, event.gaps)]),
                       list(dict.fromkeys([asker, event.by.id, *held])))


async def no_swap_question(ctx: Context) -> Outcome | None:
    return Outcome.say(NO_QUESTION) if _word(ctx.text) in TOLD_NO_QUESTION else None


SWAP_DIALOGUE = Dialogue(DialogueKind.SWAP, SwapQuestion, reads=reads_as_answer, answer=answer_swap,
                         unasked=no_swap_question)


# -- 代班 ------------------------------------------------------------------------------------------------


async def cover(ctx: Context, expr: ShiftExpr, replaces: str | None) -> Outcome:
    event = await ops.cover(ctx.work(), ctx.actor(), ctx.chat, expr, replaces)
    if not isinstance(event, ShiftCovered):
        return await refused(ctx, event)
    lines, held = readback(ctx, (event.part,))
    person = event.part.part.giver
    text = COVERED.format(new=event.by.name, old=ctx.name(person), lines="\n".join(lines))
    return Outcome.say("\n".join([text, *gap_warning(ctx, event.gaps)]),
                       list(dict.fromkeys([event.by.id, person, *held])))
