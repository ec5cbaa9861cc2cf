"""`专报 #N` / `专报 #N 续报` in chat: the item's 舆情专报 (special.py), posted as the chat's messages.

The kind follows the item's state unless named (首报, 续报, 终报). The sender is its 拟稿人. A chat
never gets a 涉密 item's text: only its authorised summary (the full text is the CLI's, with
--classified). The document is written by the runtime's ChatWriter (bot/documents/markdown.py),
split to the platform's byte limit; it is given when the app includes this router."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import items as common
from handlers.context import Context, Outcome
from handlers.parsing import take_item_ref
from handlers.records.document import ChatWriter
from handlers.records.special import Kind, special_report
from handlers.router import Router, Usage

USAGE = "用法：专报 #编号 [首报|续报|终报]，例如：专报 #12、专报 #12 续报"
SUMMARY = "专报 #编号 [续报] — 生成该线索的舆情专报（首报、续报、终报）"
_BRACKETS = "（）()【】[]「」"


@dataclass(frozen=True)
class SpecialCommand:
    number: int
    kind: Kind | None = None  # None: as the item's state calls for


def parse_special(rest: str) -> SpecialCommand | Usage:
    ref = take_item_ref(rest)
    if ref is None:
        return Usage(USAGE)
    number, words = ref
    word = words.strip().strip(_BRACKETS).strip()
    if not word:
        return SpecialCommand(number)
    kinds = {kind.value: kind for kind in Kind}
    return SpecialCommand(number, kinds[word]) if word in kinds else Usage(USAGE)


def build_router(write: ChatWriter) -> Router:
    router = Router("special")

    @router.command("专报", "舆情专报", parse=parse_special, summary=SUMMARY)
    async def special(ctx: Context, command: SpecialCommand) -> Outcome:
        doc = await special_report(ctx.session, ctx.config, ctx.directory, command.number, ctx.now,
                                   kind=command.kind, drafter=ctx.sender.name)
        if doc is None:
            return Outcome.say(common.NOT_FOUND.format(n=command.number))
        return Outcome(write(doc, ctx.config, ctx.chat))

    return router
