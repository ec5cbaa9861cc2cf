"""转办, 签收 and 退回: who leads an item, under control (000 §三 属地管理、分级负责).

- Before the lead unit's 签收, anyone who may assign names the units (the first leads).
- After it, the lead may be changed only by the roles of `policy.reassign_after_ack_by` (by
  default coordinators, admins and the current lead unit's leaders), with a reason.
- The pass-on clock stops only at the lead unit's 签收; a co-unit's 签收 is recorded, nothing more.
- A unit that thinks an item is not its own sends 退回 with a reason: the coordinators decide.
Every change of lead and every 退回 is copied to the coordinators' chat (switchable in the policy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.config import UnitConfig
from domain.vocab import ItemStatus, Role
from handlers import items as common
from handlers.context import Context, Outcome
from handlers.ops import acknowledge as ops
from handlers.ops.acknowledge import AckRefusal, AckRefused, CoUnitAcknowledged
from handlers.parsing import split_list, strip_separators, take_item_ref
from handlers.permissions import Action, describe, may_reassign_after_ack, unit_staff
from handlers.policy import local_time, remaining_text, unique, unit_contacts
from handlers.router import Router, Usage
from handlers.workflow import ItemText, item_text_parser
from store import items as item_store
from store.models import Item

USAGE_ASSIGN = "用法：转办 #编号 牵头单位[、配合单位…] [理由：…]，例如：转办 #12 城关镇、县卫健局"
USAGE_ACK = "用法：签收 #编号，例如：签收 #12"
USAGE_RETURN = "用法：退回 #编号 理由，例如：退回 #12 该事项属县住建局职责"
UNKNOWN_UNIT = "未找到单位“{name}”。{hint}"
DID_YOU_MEAN = "您是不是要找：{names}？"
NO_SUGGESTION = "请核对单位名称，可发送“帮助”查看用法。"
DUPLICATE_UNIT = "单位“{name}”重复出现，请每个单位只写一次。"
ASSIGNED = "【转办】#{n} 已转 {units}。\n请承办单位于 {due} 前签收：发送“签收 #{n}”。"
ASSIGNED_NO_DUE = "【转办】#{n} 已转 {units}。\n请承办单位签收：发送“签收 #{n}”。该线索尚未定级，请尽快定级。"
ASSIGNED_SIGNED = "【转办】#{n} 配合单位调整为：{units}。牵头单位不变，已签收。"
REASON_LINE = "\n变更理由：{reason}"
LEAD_CHANGE_REFUSED = (
    "抱歉，#{n} 已由牵头单位签收，变更牵头单位须由{who}决定。如认为不属本单位职责，请发送“退回 #{n} 理由”。"
)
LEAD_CHANGE_NEEDS_REASON = (
    "#{n} 已由牵头单位签收，变更牵头单位须说明理由，例如：转办 #{n} {unit} 理由：经核实属该单位职责"
)
LEAD_CHANGED_COPY = "【牵头单位变更】#{n} {grade}｜{old} → {new}\n操作：{who} {at}{reason}\n摘要：{summary}"
ALREADY_ACK = "#{n} 已由 {who} 于 {at} 签收。"
ACKNOWLEDGED = "#{n} 已签收（{who}，{at}），签收计时停止。{next}"
NEXT_RESPONSE = "回应时限：{due}（{left}）。"
CO_ACKNOWLEDGED = "#{n} 已记录{unit}（配合单位）签收。签收计时以牵头单位签收为准，待{lead}签收。"
NO_LEAD = "#{n} 尚未确定牵头单位，暂不能签收。请协调人员发送“转办 #{n} 单位”指定牵头单位。"
NOT_OF_THE_UNITS = "抱歉，#{n} 的签收须由承办单位（{units}）的负责人或联络员发送。"
RETURNED = "#{n} 已退回，由协调人员重新确定牵头单位。退回理由：{reason}"
RETURNED_CO = "#{n} 已退回，{unit}不再作为配合单位。退回理由：{reason}"
RETURNED_COPY = (
    "【退回】#{n} {grade}｜{unit}认为不属本单位职责，申请协调。\n退回理由：{reason}\n操作：{who} {at}\n"
    "摘要：{summary}\n请协调人员确定牵头单位：发送“转办 #{n} 单位”。"
)
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


async def _lead_change_refusal(
    ctx: Context, item: Item, command: AssignCommand, new_lead: UnitConfig
) -> Outcome | None:
    """After the lead's 签收 only the policy's roles may change the lead, and only with a reason."""
    if item.acknowledged_at is None or item.lead_unit_id == new_lead.id:
        return None
    policy = ctx.config.policy
    if not may_reassign_after_ack(ctx.sender.id, item.lead_unit_id, await ctx.on_duty(), ctx.directory, policy):
        who = describe(policy.reassign_after_ack_by, unit_word="牵头单位")
        return await ctx.refuse(LEAD_CHANGE_REFUSED.format(n=item.number, who=who), action="转办", item_id=item.id)
    if not command.reason:
        return Outcome.say(LEAD_CHANGE_NEEDS_REASON.format(n=item.number, unit=new_lead.name))
    return None


def _unit_list(units: list[UnitConfig]) -> str:
    if len(units) == 1:
        return units[0].name
    return "、".join(f"{u.name}（牵头）" if i == 0 else f"{u.name}（配合）" for i, u in enumerate(units))


@router.command("转办", "交办", parse=parse_assign, summary="转办 #编号 牵头单位[、配合单位] [理由：…] — 指定承办单位")
async def assign(ctx: Context, command: AssignCommand) -> Outcome:
    item = await common.open_and_permitted(ctx, command.number, Action.ASSIGN)
    if isinstance(item, Outcome):
        return item
    units = _resolve_units(ctx, command.units)
    if isinstance(units, Outcome):
        return units
    refusal = await _lead_change_refusal(ctx, item, command, units[0])
    if refusal is not None:
        return refusal
    unit_ids = [u.id for u in units]
    old_lead = item.lead_unit_id
    before = {"units": await item_store.units_of(ctx.session, item.id), **common.snapshot(item, "status")}
    lead_changed = old_lead != unit_ids[0]
    await item_store.set_units(ctx.session, item, unit_ids)
    item.assigned_at = ctx.now
    if lead_changed and item.acknowledged_at is not None:
        # A new lead unit has not acknowledged anything yet: its pass-on clock runs again.
        item.acknowledged_at = None
        item.acknowledged_by = None
        item.status = ItemStatus.ASSIGNED.value
    common.advance_status(item, ItemStatus.ASSIGNED)
    common.reschedule(ctx, item)
    after = {"units": unit_ids, **common.snapshot(item, "status")}
    if command.reason:
        after["reason"] = command.reason
    event_id = await common.record(ctx, item, "assigned", detail="、".join(u.name for u in units),
                                   before=before, after=after)
    reason = REASON_LINE.format(reason=common.public_detail(item, command.reason)) if command.reason else ""
    if lead_changed and ctx.config.policy.copies.lead_change:
        await _copy_lead_change(ctx, item, old_lead, units[0], command.reason, event_id)
    if not lead_changed and item.acknowledged_at is not None:
        return Outcome.say(ASSIGNED_SIGNED.format(n=item.number, units=_unit_list(units)) + reason)
    if item.pass_on_due_at is not None and item.acknowledged_at is None:
        text = ASSIGNED.format(n=item.number, units=_unit_list(units), due=local_time(item.pass_on_due_at, ctx.tz))
    else:
        text = ASSIGNED_NO_DUE.format(n=item.number, units=_unit_list(units))
    return Outcome.say(text + reason, unit_contacts(unit_ids, ctx.directory))


async def _copy_lead_change(
    ctx: Context, item: Item, old: str | None, new: UnitConfig, reason: str, event_id: int
) -> None:
    text = LEAD_CHANGED_COPY.format(
        n=item.number, grade=item.grade or "未定级", old=ctx.directory.unit_name(old), new=new.name,
        who=ctx.sender.name, at=local_time(ctx.now, ctx.tz),
        reason=REASON_LINE.format(reason=common.public_detail(item, reason)) if reason else "",
        summary=common.notice_summary(item, with_link=True),
    )
    await common.copy_to_coordinators(ctx, item, text, key=f"notice:item{item.id}:lead:{event_id}")


@router.command("签收", parse=parse_ack, summary="签收 #编号 — 牵头单位签收（停止签收计时）")
async def acknowledge(ctx: Context, command: ItemText) -> Outcome:
    """The chat door of the 签收 operation (handlers/ops/acknowledge.py)."""
    item = await common.load_open(ctx, command.number, Action.ACKNOWLEDGE)
    if isinstance(item, Outcome):
        return item
    event = await ops.acknowledge(ctx.work(), ctx.actor(), ctx.chat, item)
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
    item = await common.load_open(ctx, command.number, Action.RETURN)
    if isinstance(item, Outcome):
        return item
    units = await item_store.units_of(ctx.session, item.id)
    mine = next((u for u in units if unit_staff(ctx.sender.id, [u], ctx.directory)), None)
    if mine is None:
        text = NOT_A_UNIT_OF.format(n=item.number, units=common.unit_names(ctx, units))
        return await ctx.refuse(text, action=Action.RETURN.value, item_id=item.id)
    was_lead = mine == item.lead_unit_id
    before = {"units": units, **common.snapshot(item, "status", "acknowledged_at")}
    remaining = [u for u in units if u != mine]
    # The lead's 退回 leaves the item without a lead until the coordinators name one; its clocks
    # run on (the duty officer is chased meanwhile). A co-unit only steps out.
    await item_store.set_units(ctx.session, item, [] if was_lead else remaining)
    if was_lead:
        item.acknowledged_at = None
        item.acknowledged_by = None
        if item.status in (ItemStatus.ASSIGNED.value, ItemStatus.ACKNOWLEDGED.value):
            item.status = (ItemStatus.GRADED if item.grade else ItemStatus.REPORTED).value
        common.reschedule(ctx, item)
    after = {"units": [] if was_lead else remaining, "unit": mine, "reason": command.text,
             **common.snapshot(item, "status", "acknowledged_at")}
    event_id = await common.record(ctx, item, "returned", detail=command.text, before=before, after=after)
    await _tell_coordinators_of_return(ctx, item, mine, command.text, event_id)
    if was_lead:
        return Outcome.say(RETURNED.format(n=item.number, reason=common.public_detail(item, command.text)),
                           _coordinators(ctx))
    return Outcome.say(RETURNED_CO.format(n=item.number, unit=ctx.directory.unit_name(mine),
                                          reason=common.public_detail(item, command.text)))


async def _tell_coordinators_of_return(ctx: Context, item: Item, unit: str, reason: str, event_id: int) -> None:
    if not ctx.config.policy.copies.returned:
        return
    text = RETURNED_COPY.format(
        n=item.number, grade=item.grade or "未定级", unit=ctx.directory.unit_name(unit),
        reason=common.public_detail(item, reason), who=ctx.sender.name, at=local_time(ctx.now, ctx.tz),
        summary=common.notice_summary(item, with_link=True),
    )
    await common.copy_to_coordinators(ctx, item, text, key=f"notice:item{item.id}:returned:{event_id}",
                                      mentions=_coordinators(ctx))


def _coordinators(ctx: Context) -> list[str]:
    return unique(p.id for p in ctx.directory.people_with(Role.COORDINATOR))
