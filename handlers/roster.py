"""值班 lookups and roster changes in chat: 值班, 我的值班, 换班 (with the other person's 同意/拒绝),
代班, 请假, 销假, 排班 (admins), and the 在 answer to a roll call.

This module parses the commands and answers the lookups; the changes are operations
(handlers/ops/roster*.py) whose chat doors are roster_swap (换班, 代班), roster_leave (请假, 销假)
and roster_admin (排班), registered here on the one roster router. Every change writes the
definition (override, leave, assignment), re-resolves the affected dates in the same transaction,
is recorded in the audit trail and confirmed with the roster as stored after the change, the
people concerned @-mentioned. A slot nobody can take is said at once, here and to the admins.
The answer to a 换班 question (同意/拒绝) is a dialogue (roster_swap.SWAP_DIALOGUE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from domain.vocab import Role
from handlers import roster_admin, roster_leave, roster_swap
from handlers.calendar import weekday_name
from handlers.context import Context, Outcome
from handlers.roster_common import USAGE_ASSIGN, bad_date, chat_name, record, roster_of, views_of
from handlers.roster_parse import (
    DayExpr,
    RangeExpr,
    ShiftExpr,
    strip_connector,
    take_day,
    take_mentions,
    take_range,
    take_role,
    take_shift,
    take_week,
)
from handlers.roster_rules import Segment
from handlers.roster_service import Roster, segments_of_person
from handlers.roster_view import (
    ShiftView,
    compact,
    day_label,
    day_title,
    people_text,
    provisional_note,
    shift_line,
    span,
    week_lines,
    when_label,
)
from handlers.router import Router, Usage
from store import roster as store

USAGE_DUTY = "用法：值班（当前值班）、值班 明天、值班 11-25、值班 11月25日、值班 本周、值班 下周"
USAGE_SWAP = ("用法：换班 @对方 日期[班次] [换 对方的日期[班次]]，例如：换班 @孙丽 11-25夜班；"
              "互换：换班 @孙丽 11-25夜班 换 11-27白班")
USAGE_COVER = "用法：代班 日期[班次] [@原值班人]，例如：代班 11-25夜班"
NO_ROSTER = "本群尚未启用排班表（按配置的值班人员）：\n带班领导：{leaders}\n值班员：{officers}"
NOW_HEADER = "当前值班（{day} {shift} {span}）："
NOW_LEADERS = "带班领导：{people}"
NOW_OFFICERS = "值班员：{people}"
NOW_UNTIL = "本班至 {end}。"
NOW_NEXT = "下一班：{day} {next}（值班员/带班领导）"
NOW_NOBODY = "当前无人值班（排班缺口）。请管理员尽快补排：排班 日期班次 值班员 @某人。"
DAY_HEADER = "{title}值班安排："
DAY_EMPTY = "{title}没有班次。"
WEEK_HEADER = "{label}值班（{first}—{last}，值班员/带班领导）："
MY_HEADER = "{name}的近期值班（{days}天内）："
MY_NONE = "您在{days}天内没有值班安排。"
MY_LINE = "{day} {weekday} {shift} {span} {role}{chat}"
ROLL_CALL_ANSWERED = "已确认{name}在岗（{at}）。"
ROLL_CALL_LATE = "已记录{name}的应答（{at}，已超过应答时限）。"

MY_DAYS = 60
MY_LIMIT = 10
ROLL_CALL_WORDS = frozenset({"在", "在岗", "到", "在。", "在！", "收到"})

router = Router("roster")


# -- commands ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DutyQuery:
    kind: Literal["now", "day", "week"]
    day: DayExpr | None = None
    week: int = 0


@dataclass(frozen=True)
class MyDuty:
    pass


@dataclass(frozen=True)
class SwapCommand:
    target: str
    give: ShiftExpr
    take: ShiftExpr | None


@dataclass(frozen=True)
class CoverCommand:
    shift: ShiftExpr
    replaces: str | None


@dataclass(frozen=True)
class LeaveCommand:
    person: str | None
    span: RangeExpr
    reason: str


@dataclass(frozen=True)
class CancelLeaveCommand:
    person: str | None
    day: DayExpr | None


@dataclass(frozen=True)
class AssignCommand:
    shift: ShiftExpr
    role: Role
    people: tuple[str, ...]


@dataclass(frozen=True)
class OverrideCommand:
    person: str
    replaces: str
    shift: ShiftExpr | None
    span: RangeExpr | None


@dataclass(frozen=True)
class AdminEdit:
    """排班 by an admin: either form."""

    edit: AssignCommand | OverrideCommand


def parse_duty(rest: str) -> DutyQuery | Usage:
    if not rest:
        return DutyQuery("now")
    week = take_week(rest)
    if week is not None:
        return DutyQuery("week", week=week[0])
    day = take_day(rest)
    if day is not None:
        return DutyQuery("day", day=day[0])
    if rest in ("现在", "当前", "此刻", "表"):
        return DutyQuery("now")
    return Usage(USAGE_DUTY)


def parse_my_duty(rest: str) -> MyDuty | Usage:
    return MyDuty()


def parse_swap(rest: str) -> SwapCommand | Usage:
    names, text = take_mentions(rest)
    if len(names) != 1:
        return Usage(USAGE_SWAP)
    give = take_shift(text)
    if give is None:
        return Usage(USAGE_SWAP)
    after = strip_connector(give[1])
    if not after:
        return SwapCommand(names[0], give[0], None)
    take = take_shift(after)
    if take is None or take[1]:
        return Usage(USAGE_SWAP)
    return SwapCommand(names[0], give[0], take[0])


def parse_cover(rest: str) -> CoverCommand | Usage:
    names, text = take_mentions(rest)
    shift = take_shift(text)
    if shift is None or len(names) > 1 or shift[1]:
        return Usage(USAGE_COVER)
    return CoverCommand(shift[0], names[0] if names else None)


def parse_leave(rest: str) -> LeaveCommand | Usage:
    names, text = take_mentions(rest)
    span_ = take_range(text)
    if span_ is None or len(names) > 1:
        return Usage(roster_leave.USAGE_LEAVE)
    return LeaveCommand(names[0] if names else None, span_[0], span_[1].strip())


def parse_cancel_leave(rest: str) -> CancelLeaveCommand | Usage:
    names, text = take_mentions(rest)
    if len(names) > 1:
        return Usage(roster_leave.USAGE_CANCEL)
    if not text:
        return CancelLeaveCommand(names[0] if names else None, None)
    day = take_day(text)
    if day is None or day[1]:
        return Usage(roster_leave.USAGE_CANCEL)
    return CancelLeaveCommand(names[0] if names else None, day[0])


def parse_assign(rest: str) -> AdminEdit | Usage:
    parsed = _parse_assign(rest)
    return parsed if isinstance(parsed, Usage) else AdminEdit(parsed)


def _parse_assign(rest: str) -> AssignCommand | OverrideCommand | Usage:
    names, text = take_mentions(rest)
    if "替" in text:
        before, _, after = text.partition("替")
        if len(names) != 2 or before.strip():
            return Usage(USAGE_ASSIGN)
        after = after.strip()
        ranged = take_range(after)
        if ranged is not None and ranged[0].first_time is not None and not ranged[1]:
            return OverrideCommand(names[0], names[1], None, ranged[0])
        shift = take_shift(after)
        if shift is None or shift[1]:
            return Usage(USAGE_ASSIGN)
        return OverrideCommand(names[0], names[1], shift[0], None)
    shift = take_shift(text)
    if shift is None or not names:
        return Usage(USAGE_ASSIGN)
    role = take_role(shift[1]) if shift[1] else None
    if shift[1] and (role is None or role[1]):
        return Usage(USAGE_ASSIGN)
    return AssignCommand(shift[0], role[0] if role else Role.DUTY_OFFICER, tuple(names))


# -- changes (the steps are in roster_swap, roster_leave and roster_admin) ----------------------------------


@router.command("换班", parse=parse_swap, summary="换班 @对方 日期[班次] [换 对方日期[班次]] — 请对方同意后换班")
async def swap(ctx: Context, command: SwapCommand) -> Outcome:
    return await roster_swap.swap(ctx, command.target, command.give, command.take)


@router.command("代班", "替班", parse=parse_cover, summary="代班 日期[班次] [@原值班人] — 代他人值班")
async def cover(ctx: Context, command: CoverCommand) -> Outcome:
    return await roster_swap.cover(ctx, command.shift, command.replaces)


@router.command("请假", parse=parse_leave, summary="请假 开始日期 [至 结束日期] [事由] — 请假期间由轮班中其他人顶替")
async def leave(ctx: Context, command: LeaveCommand) -> Outcome:
    return await roster_leave.leave(ctx, command.person, command.span, command.reason)


@router.command("销假", "取消请假", parse=parse_cancel_leave, summary="销假 [日期] — 取消请假，恢复本人班次")
async def cancel_leave(ctx: Context, command: CancelLeaveCommand) -> Outcome:
    return await roster_leave.cancel_leave(ctx, command.person, command.day)


@router.command("排班", parse=parse_assign,
                summary="排班 日期[班次] 值班员|带班领导 @某人 / 排班 @甲 替 @乙 日期[班次] — 管理员调整排班")
async def assign(ctx: Context, admin: AdminEdit) -> Outcome:
    command = admin.edit
    if isinstance(command, OverrideCommand):
        return await roster_admin.override(ctx, command.person, command.replaces, command.shift, command.span)
    return await roster_admin.assign(ctx, command.shift, command.role, command.people)


# -- 值班 / 我的值班 -------------------------------------------------------------------------------------


@router.command("值班", "值班表", "值班安排", "谁值班", parse=parse_duty,
                summary="值班 [明天|11-25|本周] — 当前或某日的带班领导、值班员及电话")
async def duty(ctx: Context, command: DutyQuery) -> Outcome:
    if not await store.has_roster(ctx.session, ctx.chat.id):
        on_duty = await ctx.on_duty()
        return Outcome.say(NO_ROSTER.format(
            leaders="、".join(_contacts(ctx, on_duty.leaders)) or "未配置",
            officers="、".join(_contacts(ctx, on_duty.officers)) or "未配置"))
    roster = roster_of(ctx)
    today = ctx.now.astimezone(ctx.tz).date()
    if command.kind == "now":
        return await _duty_now(ctx, roster, today)
    if command.kind == "week":
        first = today - timedelta(days=today.weekday()) + timedelta(weeks=command.week)
        last = first + timedelta(days=6)
        views = await views_of(ctx, roster, first, last)
        label = {0: "本周", 1: "下周", -1: "上周"}.get(command.week, "该周")
        lines = [WEEK_HEADER.format(label=label, first=day_label(first), last=day_label(last))]
        lines += week_lines([first + timedelta(days=i) for i in range(7)], views, roster.calendar.info, ctx.directory)
        lines += _provisional_note(roster, [first + timedelta(days=i) for i in range(7)])
        return Outcome.say("\n".join(lines))
    assert command.day is not None
    day = command.day.resolve(today)
    if day is None:
        return bad_date(command.day)
    title = day_title(roster.calendar.info(day))
    views = await views_of(ctx, roster, day, day)
    if not views:
        return Outcome.say(DAY_EMPTY.format(title=title))
    lines = [DAY_HEADER.format(title=title)] + [shift_line(v, ctx.directory, ctx.tz) for v in views]
    lines += _provisional_note(roster, [day])
    return Outcome.say("\n".join(lines))


def _contacts(ctx: Context, people: tuple[str, ...] | list[str]) -> list[str]:
    result = []
    for person_id in people:
        person = ctx.directory.people.get(person_id)
        result.append(f"{person.name} {person.mobile}" if person and person.mobile else ctx.name(person_id))
    return result


def _provisional_note(roster: Roster, days: list[date]) -> list[str]:
    return provisional_note(days, roster.calendar.info)


async def _duty_now(ctx: Context, roster: Roster, today: date) -> Outcome:
    views = await views_of(ctx, roster, today - timedelta(days=1), today + timedelta(days=2))
    current = [v for v in views if v.start <= ctx.now < v.end]
    active = {role: [s for v in current for s in v.of(role) if s.start <= ctx.now < s.end]
              for role in (Role.DUTY_LEADER, Role.DUTY_OFFICER)}
    if not active[Role.DUTY_LEADER] and not active[Role.DUTY_OFFICER]:
        upcoming = [v for v in views if v.start > ctx.now][:1]
        lines = [NOW_NOBODY] + [NOW_NEXT.format(day=day_label(v.day), next=compact(v, ctx.directory))
                                for v in upcoming]
        return Outcome.say("\n".join(lines))
    view = current[0]
    lines = [NOW_HEADER.format(day=day_label(view.day), shift=view.name, span=span(view.start, view.end, ctx.tz))]
    for role, template in ((Role.DUTY_LEADER, NOW_LEADERS), (Role.DUTY_OFFICER, NOW_OFFICERS)):
        now_view = ShiftView(view.day, view.name, view.start, view.end, view.provisional, {role: active[role]})
        lines.append(template.format(people=people_text(now_view, role, ctx.directory, ctx.tz, phones=True)))
    end = min(s.end for segs in active.values() for s in segs)
    lines.append(NOW_UNTIL.format(end=when_label(max(end, view.end), ctx.tz)))
    upcoming = [v for v in views if v.start >= view.end][:1]
    lines += [NOW_NEXT.format(day=day_label(v.day), next=compact(v, ctx.directory)) for v in upcoming]
    lines += _provisional_note(roster, [view.day]) if view.provisional else []
    return Outcome.say("\n".join(lines))


@router.command("我的值班", "我的班", parse=parse_my_duty, summary="我的值班 — 本人近期的班次")
async def my_duty(ctx: Context, command: MyDuty) -> Outcome:
    found = await segments_of_person(ctx.session, ctx.sender.id, ctx.now, ctx.now + timedelta(days=MY_DAYS))
    if not found:
        return Outcome.say(MY_NONE.format(days=MY_DAYS))
    # The same shift in several chats (one duty team on two platforms) is one line.
    shifts: dict[tuple[datetime, Role, str], list[str]] = {}
    first: dict[tuple[datetime, Role, str], Segment] = {}
    for chat_id, seg in found:
        key = (seg.start, seg.role, seg.shift)
        shifts.setdefault(key, []).append(chat_id)
        first.setdefault(key, seg)
    lines = [MY_HEADER.format(name=ctx.sender.name, days=MY_DAYS)]
    for key, chats in list(shifts.items())[:MY_LIMIT]:
        seg = first[key]
        where = "" if ctx.chat.id in chats else "（" + "、".join(chat_name(ctx, c) for c in chats) + "）"
        lines.append(MY_LINE.format(day=day_label(seg.day), weekday=weekday_name(seg.day), shift=seg.shift,
                                    span=span(seg.start, seg.end, ctx.tz), role=seg.role.value, chat=where))
    return Outcome.say("\n".join(lines))


# -- 点名: the answer --------------------------------------------------------------------------------------


@router.fallback
async def answer_roll_call(ctx: Context) -> Outcome | None:
    if ctx.text.strip() not in ROLL_CALL_WORDS:
        return None
    call = await store.open_roll_call(ctx.session, ctx.chat.id, ctx.now)
    if call is None or ctx.sender.id not in [*call.people, *call.leaders]:
        return None
    await store.answer_roll_call(ctx.session, call.id, ctx.sender.id, ctx.now)
    await record(ctx, "roll_call_answered", f"{ctx.sender.name} 应答点名（{when_label(call.at, ctx.tz)}）",
                 after={"roll_call": call.id, "late": ctx.now > call.due_at})
    template = ROLL_CALL_LATE if ctx.now > call.due_at else ROLL_CALL_ANSWERED
    return Outcome.say(template.format(name=ctx.sender.name, at=when_label(ctx.now, ctx.tz)))
