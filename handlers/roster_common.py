"""What the roster's chat commands share: the text of every refusal of a roster operation
(handlers/ops/roster.py), the warning about slots left empty, and the steps of the lookups.

The operations do the work; the chat handlers (roster_swap, roster_leave, roster_admin) are
parse → operation → render, and every confirmation is rendered from the shifts the operation read
back from the stored roster after the change, never from the command.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from handlers.context import Context, Outcome
from handlers.ops import roster as ops
from handlers.ops.roster import RosterChange, RosterRefusal
from handlers.ops.roster_text import chat_name as chat_name_in
from handlers.ops.roster_text import gap_lines, leave_span
from handlers.roster_parse import DayExpr
from handlers.roster_rules import Coverage
from handlers.roster_service import Roster, segments_for_days
from handlers.roster_view import ShiftView, day_label, group_shifts
from store import audit

BAD_DATE = "没有“{text}”这一天，请检查日期。"
UNKNOWN_PERSON = "未找到人员“{name}”，请写配置中的姓名，例如 @孙丽。"
NO_SHIFT_NAMED = "{day}没有“{shift}”班次。当天班次：{names}。"
NO_SHIFTS_ON = "{day}没有班次。"
NO_ROSTER_CHANGE = "本群尚未启用排班表，无法{action}。请管理员先用 `dutybot roster import` 导入排班表。"
NOT_ELIGIBLE = "{name}不是{role}（既无该全局角色，也不在本群{role}轮班中），不能担任该班次的{role}。"
NOT_PERMITTED = "抱歉，只有管理员或协调人员可以{action}。"
NOT_A_PERSON = "抱歉，排班只能由配置中的人员调整。"
WHICH_SHIFT = "您在{day}有多个班次（{names}），请写明班次，例如：{example}"
ENDED_TEXT = "{day}{shift}已结束，无法{action}。"
ON_LEAVE = ("{name} {span} 请假{reason}，不能{action}。如需取消请假，请{name}发送“销假 {day}”，"
            "或由管理员发送“销假 @{name} {day}”。")
NOT_YOURS = "您在{day}{shift}没有值班安排，无法换班。发送“我的值班”查看您的班次。"
NOT_THEIRS = "{name}在{day}{shift}没有值班安排，无法互换。"
SELF_SWAP = "不能和自己换班。"
ALREADY_ON = "{name}已在{day}{shift}值班（{role}）。"
COVER_WHOM = "{day}{shift}有多位{role}（{names}），请写明代谁值班，例如：代班 {example} @{first}"
COVER_NOBODY = "{day}{shift}没有可代的{role}班次。"
COVER_SELF = "您已在{day}{shift}值班。"
LEAVE_BAD_RANGE = "请假的结束时间应晚于开始时间，且不早于现在。"
LEAVE_TOO_LONG = "请假时间超过{days}天，请分段登记或联系管理员。"
CANCEL_NONE = "{name}没有尚未结束的请假。"
CANCEL_NONE_ON = "{name}在{day}没有请假。"
OVERRIDE_NOTHING = "{old}在该时段没有本群的班次，未作调整。"
USAGE_ASSIGN = ("用法：排班 日期[班次] 值班员|带班领导 @某人，例如：排班 11-25夜班 值班员 @孙丽；"
                "或替班：排班 @孙丽 替 @赵敏 11-25夜班（也可写起止时间）")
GAP_WARNING = "⚠ 以下时段无人可排，请管理员补排：\n{lines}"
# Who may do it for someone else, as the refusal says it.
PRIVILEGED_ACTION = {RosterChange.ASSIGN: "调整排班", RosterChange.LEAVE: "为他人登记请假",
                     RosterChange.CANCEL_LEAVE: "为他人销假"}


def roster_of(ctx: Context) -> Roster:
    return Roster.build(ctx.config, ctx.directory)


def chat_name(ctx: Context, chat_id: str) -> str:
    return chat_name_in(ctx.directory, chat_id)


def bad_date_text(expr: DayExpr) -> str:
    return BAD_DATE.format(text=expr.text or f"{expr.month}月{expr.day}日")


def bad_date(expr: DayExpr) -> Outcome:
    return Outcome.say(bad_date_text(expr))


async def views_of(ctx: Context, roster: Roster, first: date, last: date) -> list[ShiftView]:
    return group_shifts(await segments_for_days(roster, ctx.session, ctx.chat.id, first, last))


async def record(ctx: Context, action: str, detail: str, before: dict[str, Any] | None = None,
                 after: dict[str, Any] | None = None) -> int:
    return await audit.record(ctx.session, at=ctx.now, actor=ctx.sender.id, chat_id=ctx.chat.id, action=action,
                              detail=detail, before=before, after=after)


def gap_warning(ctx: Context, found: dict[str, Coverage]) -> list[str]:
    """The reply's warning about slots left empty (other chats named)."""
    lines: list[str] = []
    for chat_id, result in found.items():
        mine = gap_lines(result, ctx.tz)
        lines += mine if chat_id == ctx.chat.id else [f"{line}（{chat_name(ctx, chat_id)}）" for line in mine]
    return [GAP_WARNING.format(lines="\n".join(lines))] if lines else []


def on_leave_text(ctx: Context, refusal: ops.OnLeave) -> str:
    text, day = leave_span(refusal.leave, ctx.tz)
    reason = f"（{refusal.leave.reason}）" if refusal.leave.reason else ""
    return ON_LEAVE.format(name=refusal.person.name, span=text, reason=reason, action=refusal.change.value, day=day)


def which_shift_example(refusal: ops.WhichShift) -> str:
    day = day_label(refusal.day)
    if refusal.change is RosterChange.ASSIGN:
        return f"排班 {day}{refusal.names[0]} 值班员 @某人"
    return f"换班 @某人 {day}{refusal.names[0]}"


async def refused(ctx: Context, refusal: RosterRefusal) -> Outcome:
    """The answer to a roster change the rules refuse (a permission refusal is audited as one)."""
    if isinstance(refusal, ops.PrivilegedOnly):
        return await ctx.refuse(NOT_PERMITTED.format(action=PRIVILEGED_ACTION[refusal.change]),
                                action=refusal.change.value)
    return Outcome.say(refusal_text(ctx, refusal))


def refusal_text(ctx: Context, refusal: RosterRefusal) -> str:
    match refusal:
        case ops.NotAPerson():
            return NOT_A_PERSON
        case ops.NoRoster(change=change):
            return NO_ROSTER_CHANGE.format(action=change.value)
        case ops.PrivilegedOnly(change=change):
            return NOT_PERMITTED.format(action=PRIVILEGED_ACTION[change])
        case ops.BadDate(day=expr):
            return bad_date_text(expr)
        case ops.UnknownPerson(name=name):
            return UNKNOWN_PERSON.format(name=name)
        case ops.NoShiftsOn(day=day):
            return NO_SHIFTS_ON.format(day=day_label(day))
        case ops.NoShiftNamed(day=day, shift=shift, names=names):
            return NO_SHIFT_NAMED.format(day=day_label(day), shift=shift, names="、".join(names))
        case ops.WhichShift():
            return WHICH_SHIFT.format(day=day_label(refusal.day), names="、".join(refusal.names),
                                      example=which_shift_example(refusal))
        case ops.ShiftEnded(change=change, day=day, shift=shift):
            return ENDED_TEXT.format(day=day_label(day), shift=shift, action=change.value)
        case ops.NotEligible(person=person, roles=roles):
            return NOT_ELIGIBLE.format(name=person.name, role="或".join(r.value for r in roles))
        case ops.OnLeave():
            return on_leave_text(ctx, refusal)
        case ops.NotOnShift(person=person, day=day, shift=shift, own=own):
            return (NOT_YOURS if own else NOT_THEIRS).format(day=day_label(day), shift=shift, name=person.name)
        case ops.SelfSwap():
            return SELF_SWAP
        case ops.AlreadyOn(person=person, day=day, shift=shift, role=role):
            return ALREADY_ON.format(name=person.name, day=day_label(day), shift=shift, role=role.value)
        case ops.CoverWhom(day=day, shift=shift, choices=choices):
            return COVER_WHOM.format(day=day_label(day), shift=shift, role="值班人员",
                                     names="、".join(f"{s}{ctx.name(p)}" for s, p in choices),
                                     example=f"{day_label(day)}{choices[0][0]}", first=ctx.name(choices[0][1]))
        case ops.CoverNobody(day=day, shift=shift, roles=roles):
            return COVER_NOBODY.format(day=day_label(day), shift=shift, role="或".join(r.value for r in roles))
        case ops.CoverSelf(day=day, shift=shift):
            return COVER_SELF.format(day=day_label(day), shift=shift)
        case ops.BadLeaveRange():
            return LEAVE_BAD_RANGE
        case ops.LeaveTooLong(days=days):
            return LEAVE_TOO_LONG.format(days=days)
        case ops.NoLeave(person=person, day=day):
            if day is None:
                return CANCEL_NONE.format(name=person.name)
            return CANCEL_NONE_ON.format(name=person.name, day=day_label(day))
        case ops.BadRange():
            return USAGE_ASSIGN
        case ops.NothingToReplace(old=old):
            return OVERRIDE_NOTHING.format(old=old.name)
    raise AssertionError(f"unhandled roster refusal {refusal!r}")

