"""A report without the verb: "这条消息像是一条舆情线索。回复“1”登记为线索…".

A message no command or fallback took, that carries a link or reads like a report
(`intake.reads_like_report`), is offered as a report in one reply. The offer is a pending
question (DialogueKind.OFFER_REPORT, payload OfferQuestion: the text and the message id) in the
database, so it survives a restart like the grade question, and is answered through the one
resolver in handlers/dialogues.py (OFFER_DIALOGUE); "1" (or 登记 / 确认) registers the text exactly as
"上报 <text>" would — `report.create_item`, the same code path; 不用 / 取消 drops it; anything
else leaves it as it is until it expires.

One question per person and chat (store/pending.py): the most recent question wins. An offer
made to someone the bot had asked for a grade replaces that question, and the offer says so
("#1 仍待定级，请发送…"); a grade question asked later replaces the offer, and the bare "1" then
grades. Either way the answer names what it answered: "已受理舆情线索 #2" or "【舆情通报】#1".
"""

from __future__ import annotations

from datetime import timedelta

from domain.dialogues import DialogueKind, GradeQuestion, OfferQuestion
from domain.messages import Reply
from handlers import report
from handlers.context import Context, Outcome
from handlers.dialogues import Dialogue
from handlers.intake import reads_like_report
from handlers.ops import notify
from handlers.policy import local_time
from handlers.router import Router
from handlers.typos import Suggestion
from store import items as item_store
from store import pending
from store.pending import Question

# Long enough to finish a call and come back to the chat; short enough that a "1" much later is
# not taken for a yes to a message long scrolled away.
OFFER_MINUTES = 30
OFFER = "这条消息像是一条舆情线索。回复“1”登记为线索（原文将作为摘要）。"
DECLINED = "好的，该消息未登记。"
EXPIRED = "登记询问已于 {at} 过期，该消息未登记。如需登记，请发送："
YES = frozenset({"1", "登记", "确认", "确认登记", "是"})
NO = frozenset({"不用", "不用了", "不登记", "取消", "否", "不是"})

router = Router("offer")


@router.unrecognised
async def offer_as_report(ctx: Context, suggestion: Suggestion | None) -> Outcome | None:
    """Offer a verb-less report to be registered (a did-you-mean, when there is one, says more)."""
    if suggestion is not None or not reads_like_report(ctx.text):
        return None
    platform = ctx.chat.platform.value
    earlier = await pending.current(ctx.session, platform, ctx.chat.id, ctx.sender.id)
    waiting = (earlier.payload.number if isinstance(earlier, Question) and isinstance(earlier.payload, GradeQuestion)
               and earlier.expires_at > ctx.now else None)
    await pending.ask(
        ctx.session, platform=platform, chat_id=ctx.chat.id, users=[ctx.sender.id], kind=DialogueKind.OFFER_REPORT,
        item_id=None, asked_at=ctx.now, expires_at=ctx.now + timedelta(minutes=OFFER_MINUTES),
        payload=OfferQuestion(text=ctx.text, message_id=ctx.message.message_id, waiting=waiting),
    )
    text = OFFER if waiting is None else OFFER + "\n" + notify.STILL_UNGRADED.format(n=waiting)
    return Outcome.say(text)


def _word(text: str) -> str:
    return text.strip().rstrip("。！!.")


def reads_as_answer(text: str) -> bool:
    word = _word(text)
    return word in YES or word in NO


async def answer_offer(ctx: Context, question: Question[OfferQuestion]) -> Outcome:
    """"1" registers the offered text, 不用 drops it — from the person it was offered to."""
    await pending.close(ctx.session, question.id)  # answered before create_item looks for open questions
    text = question.payload.text
    if _word(ctx.text) in NO:
        return Outcome.say(DECLINED)
    if question.expires_at <= ctx.now:
        at = local_time(question.expires_at, ctx.tz)
        return Outcome((Reply(EXPIRED.format(at=at)), Reply(f"上报 {text}")))
    outcome = await report.create_item(ctx, text)
    return await _still_waiting(ctx, outcome, question.payload.waiting)


async def _nobody_offered(ctx: Context) -> None:
    """"1" / 不用 from someone offered nothing: not an answer to an offer (the grade dialogue and
    help.py say what it is)."""
    return None


OFFER_DIALOGUE = Dialogue(DialogueKind.OFFER_REPORT, OfferQuestion, reads=reads_as_answer, answer=answer_offer,
                          unasked=_nobody_offered)


async def _still_waiting(ctx: Context, outcome: Outcome, number: int | None) -> Outcome:
    """Remind of the grade question the offer replaced, if that item is still ungraded."""
    if number is None or not outcome.replies:
        return outcome
    item = await item_store.by_number(ctx.session, number)
    if item is None or item.grade is not None:
        return outcome
    first, *others = outcome.replies
    note = notify.STILL_UNGRADED.format(n=number)
    return Outcome((Reply(f"{first.text}\n{note}", first.mentions), *others))
