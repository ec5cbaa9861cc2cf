"""The notices of 转办 and 退回, the same from every door: the 【转办】 notice that asks the units to
签收 (@-mentioning their 分管领导 and 联络员), the 退回 notice, and the coordinators' copies of a
change of lead and of every 退回 (switchable: policy.copies.lead_change / .returned). Texts about a
涉密 item go through the filters of handlers/items (001 第十七条)."""

from __future__ import annotations

from domain.config import ChatConfig
from domain.directory import Directory
from domain.vocab import Role
from handlers import items as common
from handlers.ops.base import Work
from handlers.ops.events import ItemAssigned, ItemReturned
from handlers.ops.notify import Notice
from handlers.policy import local_time, unique, unit_contacts

ASSIGNED = "【转办】#{n} 已转 {units}。\n请承办单位于 {due} 前签收：发送“签收 #{n}”。"
ASSIGNED_NO_DUE = "【转办】#{n} 已转 {units}。\n请承办单位签收：发送“签收 #{n}”。该线索尚未定级，请尽快定级。"
ASSIGNED_SIGNED = "【转办】#{n} 配合单位调整为：{units}。牵头单位不变，已签收。"
REASON_LINE = "\n变更理由：{reason}"
LEAD_CHANGED_COPY = "【牵头单位变更】#{n} {grade}｜{old} → {new}\n操作：{who} {at}{reason}\n摘要：{summary}"
RETURNED = "#{n} 已退回，由协调人员重新确定牵头单位。退回理由：{reason}"
RETURNED_CO = "#{n} 已退回，{unit}不再作为配合单位。退回理由：{reason}"
RETURNED_COPY = (
    "【退回】#{n} {grade}｜{unit}认为不属本单位职责，申请协调。\n退回理由：{reason}\n操作：{who} {at}\n"
    "摘要：{summary}\n请协调人员确定牵头单位：发送“转办 #{n} 单位”。"
)


def coordinators(directory: Directory) -> list[str]:
    """Everyone holding the 协调 role: they name a lead when a lead unit gives an item back."""
    return unique(p.id for p in directory.people_with(Role.COORDINATOR))


def _unit_list(directory: Directory, units: tuple[str, ...]) -> str:
    names = [directory.unit_name(u) for u in units]
    if len(names) == 1:
        return names[0]
    return "、".join(f"{name}（牵头）" if i == 0 else f"{name}（配合）" for i, name in enumerate(names))


def _reason_line(event: ItemAssigned) -> str:
    return REASON_LINE.format(reason=common.public_detail(event.item, event.reason)) if event.reason else ""


def assigned(work: Work, event: ItemAssigned) -> Notice:
    """The 【转办】 notice in the item's chat. While the lead's 签收 stands (only the co-units
    changed) it asks nobody to sign again."""
    item, units = event.item, _unit_list(work.directory, event.units)
    if event.lead_change is None and item.acknowledged_at is not None:
        return Notice(ASSIGNED_SIGNED.format(n=item.number, units=units) + _reason_line(event), ())
    if item.pass_on_due_at is not None and item.acknowledged_at is None:
        text = ASSIGNED.format(n=item.number, units=units, due=local_time(item.pass_on_due_at, work.config.tz))
    else:
        text = ASSIGNED_NO_DUE.format(n=item.number, units=units)
    return Notice(text + _reason_line(event), tuple(unit_contacts(event.units, work.directory)))


async def announce_lead_change(work: Work, event: ItemAssigned, *, chat: ChatConfig | None) -> None:
    """The coordinators' copy of a change of lead (policy.copies.lead_change), in every
    coordinators' chat but `chat` (where the change was made), once per change."""
    change, item = event.lead_change, event.item
    if change is None or not work.config.policy.copies.lead_change:
        return
    text = LEAD_CHANGED_COPY.format(
        n=item.number, grade=item.grade or "未定级", old=work.directory.unit_name(change.old),
        new=work.directory.unit_name(change.new), who=event.by.name, at=local_time(work.now, work.config.tz),
        reason=_reason_line(event), summary=common.notice_summary(item, with_link=True),
    )
    await work.copy_to_coordinators(item.id, text, f"notice:item{item.id}:lead:{event.event_id}", besides=chat)


def returned(work: Work, event: ItemReturned) -> Notice:
    """The 退回 notice: the lead's 退回 calls on the coordinators to name a lead."""
    item, reason = event.item, common.public_detail(event.item, event.reason)
    if event.was_lead:
        return Notice(RETURNED.format(n=item.number, reason=reason), tuple(coordinators(work.directory)))
    return Notice(RETURNED_CO.format(n=item.number, unit=work.directory.unit_name(event.unit), reason=reason), ())


async def announce_returned(work: Work, event: ItemReturned, *, chat: ChatConfig | None) -> None:
    """The coordinators' copy of a 退回 (policy.copies.returned), @-mentioning them."""
    if not work.config.policy.copies.returned:
        return
    item = event.item
    text = RETURNED_COPY.format(
        n=item.number, grade=item.grade or "未定级", unit=work.directory.unit_name(event.unit),
        reason=common.public_detail(item, event.reason), who=event.by.name, at=local_time(work.now, work.config.tz),
        summary=common.notice_summary(item, with_link=True),
    )
    await work.copy_to_coordinators(item.id, text, f"notice:item{item.id}:returned:{event.event_id}",
                                    besides=chat, mentions=coordinators(work.directory))
