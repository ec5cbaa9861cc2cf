"""The one place a bare answer is matched to the question it answers.

The bot asks three kinds of question (domain/dialogues.py): the grade question after a report
(a bare 1/2/3), the 换班 question to the other person (同意/拒绝) and the offer to register a
verb-less report (回复“1”). Each feature registers one `Dialogue` for its kind: which texts read as
an answer to it, how the answer is handled, and what someone gets who answers a question that was
never put to them. The app includes them explicitly (bot/runtime.build_dispatcher).

For a message that is no command, the resolver reads the sender's question in that chat — only
when the text reads as an answer to some kind, so ordinary chat costs no query — and hands it to
the dialogue of its kind. Precedence is the storage's rule: one question per person and chat, the
most recent replacing the earlier (store/pending.py), so a "1" from someone asked for a grade and
then offered a registration registers, and a "1" after a later grade question grades. A text that
reads as an answer to a kind the sender was not asked gets that kind's "not asked" answer.
A stored question that cannot be read (a corrupt or unknown payload) is closed with a polite
reply, never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from domain.dialogues import MODELS, DialogueKind, DialoguePayload
from handlers.context import Context, Outcome
from store import pending
from store.pending import Question, Unreadable

log = logging.getLogger(__name__)

UNREADABLE = "抱歉，您待回复的询问记录已损坏，无法办理，已作废。如仍需办理，请重新发送相应指令。"

P = TypeVar("P", bound=DialoguePayload)


@dataclass(frozen=True)
class Dialogue(Generic[P]):
    """One kind of question and its answers."""

    kind: DialogueKind
    model: type[P]
    reads: Callable[[str], bool]  # whether a text reads as an answer to this kind (no I/O)
    answer: Callable[[Context, Question[P]], Awaitable[Outcome]]  # the sender's question of this kind
    unasked: Callable[[Context], Awaitable[Outcome | None]]  # such an answer, though not asked this

    async def take(self, ctx: Context, question: Question[DialoguePayload]) -> Outcome:
        payload = question.payload
        if not isinstance(payload, self.model):  # read_payload chose the model by kind: never so
            raise TypeError(f"{type(payload).__name__} read as a {self.kind} question")
        typed = Question(question.id, question.kind, payload, question.item_id, question.asked_at,
                         question.expires_at)
        return await self.answer(ctx, typed)


class Dialogues:
    """Every kind of question with its dialogue; each kind exactly once."""

    def __init__(self, *dialogues: Dialogue[Any]) -> None:
        self.dialogues: Sequence[Dialogue[Any]] = dialogues
        self._by_kind: dict[DialogueKind, Dialogue[Any]] = {}
        for dialogue in dialogues:
            if dialogue.kind in self._by_kind:
                raise ValueError(f"dialogue {dialogue.kind!r} registered twice")
            if MODELS[dialogue.kind] is not dialogue.model:
                raise ValueError(f"dialogue {dialogue.kind!r} registered with the wrong payload model")
            self._by_kind[dialogue.kind] = dialogue
        missing = set(DialogueKind) - set(self._by_kind)
        if missing:  # a stored question of that kind would be answered by nobody
            raise ValueError(f"no dialogue registered for {sorted(missing)}")

    async def resolve(self, ctx: Context) -> Outcome | None:
        """The answer to a text that is no command, if it reads as an answer; else None (the
        routers' fallbacks and the unrecognised handlers take it)."""
        reading = [d for d in self.dialogues if d.reads(ctx.text)]
        if not reading:
            return None
        found = await pending.current(ctx.session, ctx.chat.platform.value, ctx.chat.id, ctx.sender.id)
        if isinstance(found, Unreadable):
            log.warning("closing unreadable pending question %d (%s): %s", found.id, found.kind, found.error)
            await pending.close(ctx.session, found.id)
            return Outcome.say(UNREADABLE)
        if found is not None:
            dialogue = self._by_kind[found.kind]
            if any(d is dialogue for d in reading):
                return await dialogue.take(ctx, found)
        for dialogue in reading:
            outcome = await dialogue.unasked(ctx)
            if outcome is not None:
                return outcome
        return None
