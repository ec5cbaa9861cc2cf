"""转办, 签收 and 退回 in chat: parse, call the operation (handlers/ops/assign.py,
handlers/ops/acknowledge.py), render the reply. The rules — who may change the lead after 签收,
what a 退回 does — are the operations'; the notices and the coordinators' copies are
handlers/ops/notify_assign.py's, so every door sends the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.config import UnitConfig
from handlers import items as common
from handlers.context import Context, Outcome
from handlers.ops import acknowledge as acknowledging
from handlers.ops import assign as ops
from handlers.ops import notify_assign as notify
from handlers.ops.acknowledge import AckRefusal, AckRefused, CoUnitAcknowledged
from handlers.ops.assign import AssignRefusal, AssignRefused, ReturnRefused
from handlers.ops.permits import NotPermitted, check
from handlers.parsing import split_list, strip_separators, take_item_ref
from handlers.permissions import Action
from handlers.policy import local_time, remaining_text
from handlers.router import Router, Usage
from handlers.workflow import ItemText, item_text_parser, refuse

USAGE_ASSIGN = "用法：转办 #编号 牵头单位[、配合单位…] [理由：…]，例如：转办 #12 城关镇、县卫健局"
USAGE_ACK = "用法：签收 #编号，例如：签收 #12"
USAGE_RETURN = "用法：退回 #编号 理由，例如：退回 #12 该事项属县住建局职责"
UNKNOWN_UNIT = "未找到单位“{name}”。{hint}"
DID_YOU_MEAN = "您是不是要找：{names}？"
NO_SUGGESTION = "请核对单位名称，可发送“帮助”查看用法。"
DUPLICATE_UNIT = "单位“{name}”重复出现，请每个单位只写一次。"
LEAD_CHANGE_REFUSED = (
    "抱歉，#{n} 已由牵头单位签收，变更牵头单位须由{who}决定。如认为不属本单位职责，请发送“退回 #{n} 理由”。"
)
LEAD_CHANGE_NEEDS_REASON = (
    "#{n} 已由牵头单位签收，变更牵头单位须说明理由，例如：转办 #{n} {unit} 理由：经核实属该单位职责"
)
ALREADY_ACK = "#{n} 已由 {who} 于 {at} 签收。"
ACKNOWLEDGED = "#{n} 已签收（{who}，{at}），签收计时停止。{next}"
NEXT_RESPONSE = "回应时限：{due}（{left}）。"
CO_ACKNOWLEDGED = "#{n} 已记录{unit}（配合单位）签收。签收计时以牵头单位签收为准，待{lead}签收。"
NO_LEAD = "#{n} 尚未确定牵头单位，暂不能签收。请协调人员发送“转办 #{n} 单位”指定牵头单位。"
NOT_OF_THE_UNITS = "抱歉，#{n} 的签收须由承办单位（{units}）的负责人或联络员发送。"
NOT_A_UNIT_OF = "抱歉，只有 #{n} 的承办单位（{units}）可以退回。"
# "理由：…" / "原因：…" ends the list of units.
_REASON = re.compile(r"(?:理由|原因)[:：\s]*")

router = Router("assignment")


@dataclass(frozen=True)
class AssignCommand:
    number: int
    units: tuple[str, ...]
    reason: str = ""


def parse_assign(rest: str) -> AssignCommand | Usage:
    ref = take_item_ref(rest)
    if ref is None:
        return Usage(USAGE_ASSIGN)
    names, reason = ref[1], ""
    marked = _REASON.search(names)
    if marked:
        names, reason = names[: marked.start()], strip_separators(names[marked.end() :])
    if not split_list(names):
        return Usage(USAGE_ASSIGN)
    return AssignCommand(ref[0], tuple(split_list(names)), reason)


parse_ack = item_text_parser(USAGE_ACK, text_required=False)
parse_return = item_text_parser(USAGE_RETURN, text_required=True)


def _resolve_units(ctx: Context, names: tuple[str, ...]) -> list[UnitConfig] | Outcome:
    units: list[UnitConfig] = []
    for name in names:
        unit = ctx.directory.find_unit(name)
        if unit is None:
            similar = ctx.directory.similar_units(name)
            hint = DID_YOU_MEAN.format(names="、".join(u.name for u in similar)) if similar else NO_SUGGESTION
            return Outcome.say(UNKNOWN_UNIT.format(name=name, hint=hint))
        if unit in units:
            return Outcome.say(DUPLICATE_UNIT.format(name=unit.name))
        units.append(unit)
    return units


@router.command("转办", "交办", parse=parse_assign, summary="转办 #编号 牵头单位[、配合单位] [理由：…] — 指定承办单位")
async def assign(ctx: Context, command: AssignCommand) -> Outcome:
    """The chat door of the 转办 operation (handlers/ops/assign.py)."""
    item = await common.load_open(ctx, command.number, Action.ASSIGN)
    if isinstance(item, Outcome):
        return item
    work = ctx.work()
    units = _resolve_units(ctx, command.units)
    if isinstance(units, Outcome):
        # Who may not assign hears that first, whatever the units they named.
        refused = await check(work, ctx.actor(), ctx.chat, item, Action.ASSIGN)
        return units if refused is None else await refuse(ctx, refused)
    event = await ops.assign(work, ctx.actor(), ctx.chat, item, [u.id for u in units], command.reason)
    if isinstance(event, NotPermitted):
        return await refuse(ctx, event)
    if isinstance(event, AssignRefused):
        return await _assign_refused(ctx, event)
    await notify.announce_lead_change(work, event, chat=ctx.chat)
    notice = notify.assigned(work, event)
    return Outcome.say(notice.text, notice.mentions)


async def _assign_refused(ctx: Context, event: AssignRefused) -> Outcome:
    item = event.item
    if event.refusal is AssignRefusal.LEAD_CHANGE_NOT_PERMITTED:
        return await ctx.refuse(LEAD_CHANGE_REFUSED.format(n=item.number, who=event.who), action="转办",
                                item_id=item.id)
    if event.refusal is AssignRefusal.LEAD_CHANGE_NEEDS_REASON:
        return Outcome.say(LEAD_CHANGE_NEEDS_REASON.format(n=item.number, unit=ctx.directory.unit_name(event.unit)))
    if event.refusal is AssignRefusal.DUPLICATE_UNIT:
        return Outcome.say(DUPLICATE_UNIT.format(name=ctx.directory.unit_name(event.unit)))
    # The names were resolved to units above, so these are for completeness only.
    if event.refusal is AssignRefusal.UNKNOWN_UNIT:
        return Outcome.say(UNKNOWN_UNIT.format(name=event.unit, hint=NO_SUGGESTION))
    return Outcome.say(USAGE_ASSIGN)


@router.command("签收", parse=parse_ack, summary="签收 #编号 — 牵头单位签收（停止签收计时）")
async def acknowledge(ctx: Context, command: ItemText) -> Outcome:
    """The chat door of the 签收 operation (handlers/ops/acknowledge.py)."""
    item = await common.load_open(ctx, command.number, Action.ACKNOWLEDGE)
    if isinstance(item, Outcome):
        return item
    event = await acknowledging.acknowledge(ctx.work(), ctx.actor(), ctx.chat, item)
    if isinstance(event, AckRefused):
        return await _ack_refused(ctx, event)
    if isinstance(event, CoUnitAcknowledged):
        return Outcome.say(CO_ACKNOWLEDGED.format(n=item.number, unit=ctx.directory.unit_name(event.unit),
                                                  lead=ctx.directory.unit_name(item.lead_unit_id)))
    following = ""
    if item.response_due_at is not None and item.responded_at is None:
        following = NEXT_RESPONSE.format(due=local_time(item.response_due_at, ctx.tz),
                                         left=remaining_text(item.response_due_at, ctx.now))
    return Outcome.say(ACKNOWLEDGED.format(n=item.number, who=ctx.sender.name,
                                           at=local_time(ctx.now, ctx.tz), next=following))


async def _ack_refused(ctx: Context, event: AckRefused) -> Outcome:
    item = event.item
    if event.refusal is AckRefusal.NOT_PERMITTED:
        text = common.REFUSED.format(n=item.number, action=Action.ACKNOWLEDGE.value, who=event.who)
        return await ctx.refuse(text, action=Action.ACKNOWLEDGE.value, item_id=item.id)
    if event.refusal is AckRefusal.ALREADY:
        assert item.acknowledged_by is not None and item.acknowledged_at is not None
        return Outcome.say(ALREADY_ACK.format(n=item.number, who=ctx.name(item.acknowledged_by),
                                              at=local_time(item.acknowledged_at, ctx.tz)))
    if event.refusal is AckRefusal.NO_LEAD:
        return Outcome.say(NO_LEAD.format(n=item.number))
    text = NOT_OF_THE_UNITS.format(n=item.number, units=common.unit_names(ctx, list(event.units)))
    return await ctx.refuse(text, action=Action.ACKNOWLEDGE.value, item_id=item.id)


@router.command("退回", parse=parse_return, summary="退回 #编号 理由 — 认为不属本单位职责，交协调人员决定")
async def give_back(ctx: Context, command: ItemText) -> Outcome:
    """The chat door of the 退回 operation (handlers/ops/assign.py)."""
    item = await common.load_open(ctx, command.number, Action.RETURN)
    if isinstance(item, Outcome):
        return item
    work = ctx.work()
    event = await ops.give_back(work, ctx.actor(), ctx.chat, item, command.text)
    if isinstance(event, ReturnRefused):
        text = NOT_A_UNIT_OF.format(n=item.number, units=common.unit_names(ctx, list(event.units)))
        return await ctx.refuse(text, action=Action.RETURN.value, item_id=item.id)
    await notify.announce_returned(work, event, chat=ctx.chat)
    notice = notify.returned(work, event)
    return Outcome.say(notice.text, notice.mentions)
