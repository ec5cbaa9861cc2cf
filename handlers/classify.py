"""涉密 / 解除涉密 in chat: parse, call the operation (handlers/ops/classify.py, which holds the rule:
coordinators and admins mark an item classified afterwards, or lift the mark, 001 第十七条), render
the reply. While marked, every text the bot posts about the item shows only the authorised summary.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers import items as common
from handlers.context import Context, Outcome
from handlers.ops import classify as ops
from handlers.ops.classify import AlreadyClassified, NotClassified
from handlers.ops.permits import NotPermitted
from handlers.parsing import take_item_ref
from handlers.router import Router, Usage
from handlers.workflow import refuse

USAGE_MARK = "用法：涉密 #编号 [授权摘要]，例如：涉密 #12 城关镇某安全生产事项"
USAGE_UNMARK = "用法：解除涉密 #编号 [理由]，例如：解除涉密 #12 经审核可公开"
MARKED = "#{n} 已标记为涉密。此后群内仅显示授权摘要：{summary}\n此前已在群内发送的相关消息，请按保密规定处理。"
ALREADY_MARKED = "#{n} 已是涉密线索。如需修改授权摘要，请发送“涉密 #{n} 新的授权摘要”。"
SUMMARY_CHANGED = "#{n} 的授权摘要已更新为：{summary}"
UNMARKED = "#{n} 已解除涉密，群内恢复显示线索详情。"
NOT_MARKED = "#{n} 不是涉密线索，无需解除。"

router = Router("classify")


@dataclass(frozen=True)
class ClassifyCommand:
    number: int
    text: str


def parse_mark(rest: str) -> ClassifyCommand | Usage:
    ref = take_item_ref(rest)
    return Usage(USAGE_MARK) if ref is None else ClassifyCommand(*ref)


def parse_unmark(rest: str) -> ClassifyCommand | Usage:
    ref = take_item_ref(rest)
    return Usage(USAGE_UNMARK) if ref is None else ClassifyCommand(*ref)


@router.command("涉密", "标记涉密", parse=parse_mark, summary="涉密 #编号 [授权摘要] — 标记为涉密（协调人员、管理员）")
async def mark(ctx: Context, command: ClassifyCommand) -> Outcome:
    """The chat door of the 涉密 operation (handlers/ops/classify.py)."""
    item = await common.load(ctx, command.number)
    if isinstance(item, Outcome):
        return item
    event = await ops.classify(ctx.work(), ctx.actor(), ctx.chat, item, command.text or None)
    if isinstance(event, NotPermitted):
        return await refuse(ctx, event)
    if isinstance(event, AlreadyClassified):
        return Outcome.say(ALREADY_MARKED.format(n=item.number))
    if event.was_classified:
        return Outcome.say(SUMMARY_CHANGED.format(n=item.number, summary=common.public_summary(item)))
    return Outcome.say(MARKED.format(n=item.number, summary=common.public_summary(item)))


@router.command("解除涉密", parse=parse_unmark, summary="解除涉密 #编号 [理由] — 解除涉密标记（协调人员、管理员）")
async def unmark(ctx: Context, command: ClassifyCommand) -> Outcome:
    """The chat door of 解除涉密 (handlers/ops/classify.py)."""
    item = await common.load(ctx, command.number)
    if isinstance(item, Outcome):
        return item
    event = await ops.declassify(ctx.work(), ctx.actor(), ctx.chat, item, command.text)
    if isinstance(event, NotPermitted):
        return await refuse(ctx, event)
    if isinstance(event, NotClassified):
        return Outcome.say(NOT_MARKED.format(n=item.number))
    return Outcome.say(UNMARKED.format(n=item.number))
