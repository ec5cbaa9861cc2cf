"""定级 and the answer to the grade question: the chat door of the grade operation
(handlers/ops/grade.py; its notice from handlers/ops/notify.py). The grade question is a dialogue
(GRADE_QUESTION), answered through the one resolver in handlers/dialogues.py.

One rule for who may grade (004 第六条), whatever the path — `定级 #N 等级`, `#N 等级`, or a
bare `1`/`重大` answering the grade question: `policy.grade_by`. Lowering a grade also needs a
reason and one of `policy.downgrade_by`; it is shown as an adjustment naming the original
grader, who is @-mentioned, and copied to the coordinators (归口报送).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.dialogues import DialogueKind, GradeQuestion
from domain.vocab import Grade
from handlers import items as common
from handlers.context import Context, Outcome
from handlers.dialogues import Dialogue
from handlers.ops import grade as ops
from handlers.ops import notify
from handlers.ops.grade import GradeRefused, Refusal
from handlers.parsing import grade_like, parse_grade, strip_separators, take_item_ref
from handlers.permissions import Action
from handlers.policy import local_time
from handlers.router import Router, Usage
from store import items as item_store
from store import pending
from store.models import Item
from store.pending import Question

USAGE = "用法：定级 #编号 等级，例如：定级 #12 较大（等级为 重大、较大 或 一般，也可写 1、2、3）"
NOT_A_GRADE = "“{word}”不是有效等级，请用 重大、较大 或 一般（也可写 1、2、3）。"
# A word meant as a grade that is none of ours (特别重大, 四级, a bare 4): the list of grades.
GRADE_LIST = "等级只有三级：重大、较大、一般（也可回复 1、2、3）。"
GRADE_LIST_FOR = "等级只有三级：重大、较大、一般（也可写 1、2、3）。请发送“定级 #{n} 重大/较大/一般”。"
SAME_GRADE = "#{n} 已定为{grade}，无需调整。"
EXPIRED = "#{n} 的定级询问已于 {at} 过期。请发送“定级 #{n} 重大/较大/一般”完成定级。"
DOWNGRADE_NEEDS_REASON = "下调等级须说明理由，例如：定级 #{n} {grade} 理由：经核实影响范围有限"
DOWNGRADE_REFUSED = "抱歉，#{n} 由{old}下调为{grade}须由{who}决定。"

router = Router("grading")
SHORTHAND = re.compile(r"^(#|第?\d+号)")
_REASON = re.compile(r"(?:理由|原因)[:：\s]*")


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
async def grade_by_number(ctx: Context) -> Outcome | None:
    """"#12 重大" (any form of the number, a grade word) from anyone, read as 定级 #12 重大. A bare
    grade word is an answer to the grade question instead (GRADE_QUESTION, handlers/dialogues.py)."""
    if reads_as_grade(ctx.text):
        return None
    return await _shorthand_grade(ctx)


# -- the grade question (a dialogue: handlers/dialogues.py) -------------------------------------------


def reads_as_grade(text: str) -> bool:
    """"1" / "重大", or a word meant as a grade that is none of ours ("特别重大", "4")."""
    return parse_grade(text) is not None or grade_like(text, loose=True)


async def answer_grade_question(ctx: Context, question: Question[GradeQuestion]) -> Outcome:
    """A bare "1" / "重大" from someone the bot asked for a grade in this chat. A word meant as a
    grade that is none of ours ("特别重大", "4") gets the list of grades; the question stays open."""
    number = question.payload.number
    if question.expires_at <= ctx.now:
        await pending.close(ctx.session, question.id)
        return Outcome.say(EXPIRED.format(n=number, at=local_time(question.expires_at, ctx.tz)))
    grade = parse_grade(ctx.text)
    if grade is None:
        return Outcome.say(GRADE_LIST)
    item = await common.load_open(ctx, number, Action.GRADE)
    if isinstance(item, Outcome):
        await pending.close(ctx.session, question.id)
        return item
    return await apply_grade(ctx, item, grade)


async def _not_asked(ctx: Context) -> Outcome | None:
    """A bare grade from someone not asked: while the chat has an open grade question, someone
    who may not grade that item gets the refusal (every path refuses alike); others are told
    there is no question for them (help.py)."""
    if parse_grade(ctx.text) is None:
        return None  # "特别重大" to nobody's question: help.py answers it
    open_item = await pending.open_in_chat(ctx.session, ctx.chat.platform.value, ctx.chat.id,
                                           DialogueKind.GRADE, ctx.now)
    if open_item is None:
        return None
    item = await item_store.by_number(ctx.session, open_item)
    if item is None:
        return None
    return await common.permitted(ctx, item, Action.GRADE)


GRADE_QUESTION = Dialogue(DialogueKind.GRADE, GradeQuestion, reads=reads_as_grade, answer=answer_grade_question,
                          unasked=_not_asked)


async def apply_grade(ctx: Context, item: Item, grade: Grade, reason: str = "") -> Outcome:
    """The chat door of the grade operation (handlers/ops/grade.py): grade, then answer with the
    notice — or the refusal, recorded as one (the question stays open for those who may answer)."""
    actor = ctx.actor()
    work = ctx.work()
    event = await ops.grade(work, actor, ctx.chat, item, grade, reason)
    if isinstance(event, GradeRefused):
        return await _refused(ctx, event)
    notice = notify.graded(work, event)
    await notify.announce_graded(work, event, notice, chat=ctx.chat)
    return Outcome.say(notice.text, notice.mentions)


async def _refused(ctx: Context, event: GradeRefused) -> Outcome:
    n, new = event.item.number, event.grade.value
    if event.refusal is Refusal.NOT_PERMITTED:
        text = common.REFUSED.format(n=n, action=Action.GRADE.value, who=event.who)
        return await ctx.refuse(text, action=Action.GRADE.value, item_id=event.item.id)
    if event.refusal is Refusal.DOWNGRADE_NOT_PERMITTED:
        old = event.old.value if event.old else ""
        text = DOWNGRADE_REFUSED.format(n=n, old=old, grade=new, who=event.who)
        return await ctx.refuse(text, action=Action.GRADE.value, item_id=event.item.id)
    if event.refusal is Refusal.DOWNGRADE_NEEDS_REASON:
        return Outcome.say(DOWNGRADE_NEEDS_REASON.format(n=n, grade=new))
    return Outcome.say(SAME_GRADE.format(n=n, grade=new))
