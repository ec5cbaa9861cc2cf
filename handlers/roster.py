"""值班 lookups and roster changes in chat: 值班, 我的值班, 换班 (with the other person's 同意/拒绝),
代班, 请假, 排班 (admins), and the 在 answer to a roll call.

Every change writes the definition (override, leave, assignment), re-resolves the affected dates
in the same transaction, is recorded in the audit trail and announced in the group with the
people concerned @-mentioned. A change that leaves a slot nobody can take says so at once, here
and in the admins' chat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from bot.config import PersonConfig
from bot.vocab import Role
from handlers.calendar import weekday_name
from handlers.context import Context, Outcome
from handlers.permissions import is_privileged
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
from handlers.roster_rules import DUTY_ROLES, Coverage, Gap, Segment
from handlers.roster_service import Roster, day_start, segments_for_days, segments_of_person
from handlers.roster_view import (
    ShiftView,
    compact,
    day_label,
    day_title,
    group_shifts,
    name_of,
    people_text,
    shift_line,
    span,
    week_lines,
    when_label,
)
from handlers.router import Router, Usage
from store import audit, outbox, pending
from store import roster as store
from store.models import PendingQuestion, RosterAssignment, RosterLeave, RosterOverride

USAGE_DUTY = "用法：值班（当前值班）、值班 明天、值班 11-25、值班 11月25日、值班 本周、值班 下周"
USAGE_SWAP = ("用法：换班 @对方 日期[班次] [换 对方的日期[班次]]，例如：换班 @孙丽 11-25夜班；"
              "互换：换班 @孙丽 11-25夜班 换 11-27白班")
USAGE_COVER = "用法：代班 日期[班次] [@原值班人]，例如：代班 11-25夜班"
USAGE_LEAVE = ("用法：请假 开始日期 [至 结束日期] [事由]，例如：请假 11-25 至 11-27 外出培训；"
               "也可写时间：请假 11-25 08:30 至 11-25 17:30")
USAGE_ASSIGN = ("用法：排班 日期[班次] 值班员|带班领导 @某人，例如：排班 11-25夜班 值班员 @孙丽；"
                "或替班：排班 @孙丽 替 @赵敏 11-25夜班（也可写起止时间）")
NO_ROSTER = "本群尚未启用排班表（按配置的值班人员）：\n带班领导：{leaders}\n值班员：{officers}"
NO_ROSTER_CHANGE = "本群尚未启用排班表，无法{action}。请管理员先用 `dutybot roster import` 导入排班表。"
NOW_HEADER = "当前值班（{day} {shift} {span}）："
NOW_LEADERS = "带班领导：{people}"
NOW_OFFICERS = "值班员：{people}"
NOW_UNTIL = "本班至 {end}。"
NOW_NEXT = "下一班：{day} {next}（值班员/带班领导）"
NOW_NOBODY = "当前无人值班（排班缺口）。请管理员尽快补排：排班 日期班次 值班员 @某人。"
PROVISIONAL = "注：{days} 的日期类型（节假日安排）尚未公布，暂按星期排定，公布后可能调整。"
DAY_HEADER = "{title}值班安排："
DAY_EMPTY = "{title}没有班次。"
WEEK_HEADER = "{label}值班（{first}—{last}，值班员/带班领导）："
MY_HEADER = "{name}的近期值班（{days}天内）："
MY_NONE = "您在{days}天内没有值班安排。"
MY_LINE = "{day} {weekday} {shift} {span} {role}{chat}"
BAD_DATE = "日期“{text}”不存在，请核对。"
UNKNOWN_PERSON = "未找到人员“{name}”，请写配置中的姓名，例如 @孙丽。"
NO_SHIFT_NAMED = "{day}没有“{shift}”班次。当天班次：{names}。"
NO_SHIFTS_ON = "{day}没有班次。"
NOT_YOURS = "您在{day}{shift}没有值班安排，无法换班。发送“我的值班”查看您的班次。"
WHICH_SHIFT = "您在{day}有多个班次（{names}），请写明班次，例如：{example}"
NOT_THEIRS = "{name}在{day}{shift}没有值班安排，无法互换。"
ENDED = "{day}{shift}已结束，无法{action}。"
SELF_SWAP = "不能和自己换班。"
ALREADY_ON = "{name}已在{day}{shift}值班（{role}）。"
NOT_ELIGIBLE = "{name}不是{role}（既无该全局角色，也不在本群{role}轮班中），不能担任该班次的{role}。"
SWAP_ASKED = ("已向{to}发出换班申请：\n{lines}\n请{to}回复“同意”或“拒绝”（{expires}前有效）。")
SWAP_DONE = "【换班】{a} 与 {b} 换班已确认：\n{lines}"
SWAP_DECLINED = "{b} 拒绝了 {a} 的换班申请（{summary}），排班不变。"
SWAP_EXPIRED = "该换班申请已于 {at} 过期，排班不变。如仍需换班，请 {a} 重新发起。"
SWAP_STALE = "该换班申请已失效：{summary} 的安排已有变动，排班不变。请重新发起。"
NO_QUESTION = "您当前没有待答复的换班申请。"
SWAP_LINE = "{day} {shift} {span} {role}：{old} → {new}"
COVER_WHOM = "{day}{shift}有多位{role}（{names}），请写明代谁值班，例如：代班 {example} @{first}"
COVER_NOBODY = "{day}{shift}没有可代的{role}班次。"
COVER_SELF = "您已在{day}{shift}值班。"
COVERED = "【代班】{new} 代 {old} 值班：\n{lines}"
NOT_PERMITTED = "抱歉，只有管理员或协调人员可以{action}。"
LEAVE_BAD_RANGE = "请假的结束时间应晚于开始时间，且不早于现在。"
LEAVE_TOO_LONG = "请假时间超过{days}天，请分段登记或联系管理员。"
LEAVE_DONE = "【请假】{name} 请假：{span}{reason}。"
LEAVE_NONE_AFFECTED = "期间没有{name}的班次，排班不变。"
LEAVE_CHANGES = "期间班次调整："
LEAVE_LINE = "{day} {shift} {role}：{people}"
GAP_WARNING = "⚠ 以下时段无人可排，请管理员补排：\n{lines}"
GAP_NOTICE = "【排班缺口】{chat}因{cause}出现缺口：\n{lines}\n请补排：排班 日期班次 值班员|带班领导 @某人。"
GAP_LINE = "{span} {role}：{reason}"
ASSIGNED = "【排班】{day} {shift} {role}：{people}（原：{old}）"
OVERRIDDEN = "【排班】{new} 替 {old} 值班：\n{lines}"
OVERRIDE_NOTHING = "{old}在该时段没有本群的班次，未作调整。"
ROLL_CALL_ANSWERED = "已确认{name}在岗（{at}）。"
ROLL_CALL_LATE = "已记录{name}的应答（{at}，已超过应答时限）。"

MY_DAYS = 60
MY_LIMIT = 10
LEAVE_MAX_DAYS = 90
ANSWERS_YES = frozenset({"同意", "同意换班", "接受"})
ANSWERS_NO = frozenset({"拒绝", "不同意", "拒绝换班"})
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
        return Usage(USAGE_LEAVE)
    return LeaveCommand(names[0] if names else None, span_[0], span_[1].strip())


@dataclass(frozen=True)
class AdminEdit:
    """排班 by an admin: either form."""

    edit: AssignCommand | OverrideCommand


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


# -- shared steps --------------------------------------------------------------------------------------


def _roster(ctx: Context) -> Roster:
    return Roster.build(ctx.config, ctx.directory)


def _today(ctx: Context) -> date:
    return ctx.now.astimezone(ctx.tz).date()


def _person(ctx: Context, name: str) -> PersonConfig | None:
    for person in ctx.config.people:
        if name in (person.name, person.id):
            return person
    return None


async def _views(ctx: Context, roster: Roster, first: date, last: date) -> list[ShiftView]:
    return group_shifts(await segments_for_days(roster, ctx.session, ctx.chat.id, first, last))


async def _shifts_named(ctx: Context, roster: Roster, expr: ShiftExpr) -> list[ShiftView] | Outcome:
    """The shifts a "日期[班次]" names in this chat, or the answer explaining why there are none."""
    day = expr.day.resolve(_today(ctx))
    if day is None:
        return Outcome.say(BAD_DATE.format(text=_expr_text(expr.day)))
    views = await _views(ctx, roster, day, day)
    if not views:
        return Outcome.say(NO_SHIFTS_ON.format(day=day_label(day)))
    if expr.shift is None:
        return views
    named = [v for v in views if v.name == expr.shift]
    if not named:
        names = "、".join(v.name for v in views)
        return Outcome.say(NO_SHIFT_NAMED.format(day=day_label(day), shift=expr.shift, names=names))
    return named


def _expr_text(expr: DayExpr) -> str:
    if expr.month is not None:
        return f"{expr.year or ''}{'-' if expr.year else ''}{expr.month}-{expr.day}"
    return str(expr.offset)


async def _eligible(ctx: Context, person_id: str, role: Role) -> bool:
    if ctx.directory.has_role(person_id, role):
        return True
    return any(role.value == r.role and person_id in r.people for r in await store.rotations(ctx.session, ctx.chat.id))


def _person_range(view: ShiftView, person_id: str, now: datetime) -> tuple[Role, datetime, datetime] | None:
    """The role and the still-to-come part of a person's time in a shift."""
    for role in (Role.DUTY_OFFICER, Role.DUTY_LEADER):
        mine = [s for s in view.of(role) if s.person == person_id and s.end > now]
        if mine:
            return role, max(min(s.start for s in mine), now), max(s.end for s in mine)
    return None


def _iso(when: datetime) -> str:
    return when.isoformat()


async def _after_change(ctx: Context, roster: Roster, first: date, last: date, cause: str, event_id: int,
                        chats: list[str] | None = None) -> list[str]:
    """Re-resolve the changed dates; when a slot is left empty, warn (here and in the admins' chat)."""
    await roster.rebuild_changed(ctx.session, ctx.now, first, last, chats)
    start = max(ctx.now, day_start(first, ctx.config))
    end = day_start(last + timedelta(days=2), ctx.config)
    if end <= start:
        return []
    found = await roster.check(ctx.session, start, end, chats)
    lines: list[str] = []
    for chat_id, result in found.items():
        if not result.gaps:
            continue
        chat_lines = _gap_lines(ctx, result)
        chat_name = _chat_name(ctx, chat_id)
        lines += chat_lines if chat_id == ctx.chat.id else [f"{line}（{chat_name}）" for line in chat_lines]
        for admin_chat in ctx.directory.admin_chats():
            await outbox.enqueue(ctx.session, key=f"gaps-change:{event_id}:{chat_id}:{admin_chat.id}",
                                 chat_id=admin_chat.id, now=ctx.now,
                                 text=GAP_NOTICE.format(chat=chat_name, cause=cause, lines="\n".join(chat_lines)),
                                 mentions=[p.id for p in ctx.directory.people_with(Role.ADMIN)])
    return [GAP_WARNING.format(lines="\n".join(lines))] if lines else []


def _gap_lines(ctx: Context, result: Coverage) -> list[str]:
    return [_gap_line(ctx, gap) for gap in result.gaps]


def _gap_line(ctx: Context, gap: Gap) -> str:
    return GAP_LINE.format(span=f"{when_label(gap.start, ctx.tz)}—{when_label(gap.end, ctx.tz)}",
                           role=gap.role.value, reason=gap.reason)


async def _record(ctx: Context, action: str, detail: str, before: dict[str, Any] | None = None,
                  after: dict[str, Any] | None = None) -> int:
    return await audit.record(ctx.session, at=ctx.now, actor=ctx.sender.id, chat_id=ctx.chat.id, action=action,
                              detail=detail, before=before, after=after)


# -- 值班 / 我的值班 -------------------------------------------------------------------------------------


@router.command("值班", "值班表", "值班安排", "谁值班", parse=parse_duty,
                summary="值班 [明天|11-25|本周] — 当前或某日的带班领导、值班员及电话")
async def duty(ctx: Context, command: DutyQuery) -> Outcome:
    if not await store.has_roster(ctx.session, ctx.chat.id):
        on_duty = await ctx.on_duty()
        return Outcome.say(NO_ROSTER.format(
            leaders="、".join(_contacts(ctx, on_duty.leaders)) or "未配置",
            officers="、".join(_contacts(ctx, on_duty.officers)) or "未配置"))
    roster = _roster(ctx)
    today = _today(ctx)
    if command.kind == "now":
        return await _duty_now(ctx, roster, today)
    if command.kind == "week":
        first = today - timedelta(days=today.weekday()) + timedelta(weeks=command.week)
        last = first + timedelta(days=6)
        views = await _views(ctx, roster, first, last)
        label = {0: "本周", 1: "下周", -1: "上周"}.get(command.week, "该周")
        lines = [WEEK_HEADER.format(label=label, first=day_label(first), last=day_label(last))]
        lines += week_lines([first + timedelta(days=i) for i in range(7)], views, roster.calendar.info, ctx.directory)
        lines += _provisional_note(roster, [first + timedelta(days=i) for i in range(7)])
        return Outcome.say("\n".join(lines))
    assert command.day is not None
    day = command.day.resolve(today)
    if day is None:
        return Outcome.say(BAD_DATE.format(text=_expr_text(command.day)))
    title = day_title(roster.calendar.info(day))
    views = await _views(ctx, roster, day, day)
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
    unknown = [d for d in days if not roster.calendar.info(d).known]
    if not unknown:
        return []
    text = day_label(unknown[0]) + (f"—{day_label(unknown[-1])}" if len(unknown) > 1 else "")
    return [PROVISIONAL.format(days=text)]


async def _duty_now(ctx: Context, roster: Roster, today: date) -> Outcome:
    views = await _views(ctx, roster, today - timedelta(days=1), today + timedelta(days=2))
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
        where = "" if ctx.chat.id in chats else "（" + "、".join(_chat_name(ctx, c) for c in chats) + "）"
        lines.append(MY_LINE.format(day=day_label(seg.day), weekday=weekday_name(seg.day), shift=seg.shift,
                                    span=span(seg.start, seg.end, ctx.tz), role=seg.role.value, chat=where))
    return Outcome.say("\n".join(lines))


# -- 换班 ------------------------------------------------------------------------------------------------


def _one_of_mine(views: list[ShiftView], person_id: str, now: datetime) -> list[ShiftView]:
    return [v for v in views if _person_range(v, person_id, now) is not None]


@router.command("换班", parse=parse_swap, summary="换班 @对方 日期[班次] [换 对方日期[班次]] — 请对方同意后换班")
async def swap(ctx: Context, command: SwapCommand) -> Outcome:
    if not await store.has_roster(ctx.session, ctx.chat.id):
        return Outcome.say(NO_ROSTER_CHANGE.format(action="换班"))
    target = _person(ctx, command.target)
    if target is None:
        return Outcome.say(UNKNOWN_PERSON.format(name=command.target))
    if target.id == ctx.sender.id:
        return Outcome.say(SELF_SWAP)
    roster = _roster(ctx)
    give = await _pick_shift(ctx, roster, command.give, ctx.sender.id, NOT_YOURS, ctx.sender.name)
    if isinstance(give, Outcome):
        return give
    give_role, give_start, give_end = give[1]
    if _holds(give[0], target.id, give_role):
        return Outcome.say(ALREADY_ON.format(name=target.name, day=day_label(give[0].day), shift=give[0].name,
                                             role=give_role.value))
    if not await _eligible(ctx, target.id, give_role):
        return Outcome.say(NOT_ELIGIBLE.format(name=target.name, role=give_role.value))
    parts = [{"day": give[0].day.isoformat(), "shift": give[0].name, "role": give_role.value,
              "start": _iso(give_start), "end": _iso(give_end), "from": ctx.sender.id, "to": target.id}]
    if command.take is not None:
        take = await _pick_shift(ctx, roster, command.take, target.id, NOT_THEIRS, target.name)
        if isinstance(take, Outcome):
            return take
        take_role, take_start, take_end = take[1]
        if not await _eligible(ctx, ctx.sender.id, take_role):
            return Outcome.say(NOT_ELIGIBLE.format(name=ctx.sender.name, role=take_role.value))
        parts.append({"day": take[0].day.isoformat(), "shift": take[0].name, "role": take_role.value,
                      "start": _iso(take_start), "end": _iso(take_end), "from": target.id, "to": ctx.sender.id})
    # The question lapses after the configured hours, or when the first shift concerned begins.
    expires = ctx.now + timedelta(hours=ctx.config.roster.swap_answer_hours)
    starts = [datetime.fromisoformat(p["start"]) for p in parts]
    expires = max(min([expires, *(s for s in starts if s > ctx.now)]), ctx.now + timedelta(minutes=5))
    await pending.ask(ctx.session, platform=ctx.chat.platform.value, chat_id=ctx.chat.id, users=[target.id],
                      kind="swap", item_id=None, asked_at=ctx.now, expires_at=expires,
                      payload={"from": ctx.sender.id, "to": target.id, "parts": parts})
    lines = "\n".join(_part_line(ctx, p) for p in parts)
    await _record(ctx, "roster_swap_asked", f"{ctx.sender.name} 请 {target.name} 换班", after={"parts": parts})
    return Outcome.say(SWAP_ASKED.format(to=target.name, lines=lines, expires=when_label(expires, ctx.tz)),
                       [target.id])


def _holds(view: ShiftView, person_id: str, role: Role) -> bool:
    return any(s.person == person_id for s in view.of(role))


async def _pick_shift(ctx: Context, roster: Roster, expr: ShiftExpr, person_id: str, missing: str, name: str
                      ) -> tuple[ShiftView, tuple[Role, datetime, datetime]] | Outcome:
    views = await _shifts_named(ctx, roster, expr)
    if isinstance(views, Outcome):
        return views
    day = day_label(views[0].day)
    shift = expr.shift or ""
    ended = [v for v in views if any(s.person == person_id for r in (Role.DUTY_OFFICER, Role.DUTY_LEADER)
                                     for s in v.of(r)) and v.end <= ctx.now]
    mine = _one_of_mine(views, person_id, ctx.now)
    if not mine:
        if ended:
            return Outcome.say(ENDED.format(day=day, shift=shift, action="换班"))
        return Outcome.say(missing.format(day=day, shift=shift, name=name))
    if len(mine) > 1:
        names = "、".join(v.name for v in mine)
        return Outcome.say(WHICH_SHIFT.format(day=day, names=names, example=f"换班 @某人 {day}{mine[0].name}"))
    found = _person_range(mine[0], person_id, ctx.now)
    assert found is not None
    return mine[0], found


def _part_line(ctx: Context, part: dict[str, Any]) -> str:
    start, end = datetime.fromisoformat(part["start"]), datetime.fromisoformat(part["end"])
    return SWAP_LINE.format(day=day_label(date.fromisoformat(part["day"])), shift=part["shift"],
                            span=span(start, end, ctx.tz), role=part["role"], old=ctx.name(part["from"]),
                            new=ctx.name(part["to"]))


async def _swap_question(ctx: Context) -> PendingQuestion | None:
    question = await pending.find(ctx.session, ctx.chat.platform.value, ctx.chat.id, ctx.sender.id)
    return question if question is not None and question.kind == "swap" else None


@router.fallback
async def answer_swap(ctx: Context) -> Outcome | None:
    """同意 / 拒绝 from the person asked to swap (the question survives restarts; it expires)."""
    word = ctx.text.strip().rstrip("。！!")
    if word not in ANSWERS_YES and word not in ANSWERS_NO:
        return None
    question = await _swap_question(ctx)
    if question is None:
        return Outcome.say(NO_QUESTION) if word in ("同意", "拒绝", "不同意") else None
    asker = str(question.payload.get("from", ""))
    parts: list[dict[str, Any]] = list(question.payload.get("parts", []))
    summary = "；".join(_part_line(ctx, p) for p in parts)
    await ctx.session.delete(question)
    if question.expires_at <= ctx.now:
        return Outcome.say(SWAP_EXPIRED.format(at=when_label(question.expires_at, ctx.tz), a=ctx.name(asker)),
                           [asker])
    if word in ANSWERS_NO:
        await _record(ctx, "roster_swap_declined", f"{ctx.sender.name} 拒绝 {ctx.name(asker)} 的换班申请",
                      after={"parts": parts})
        return Outcome.say(SWAP_DECLINED.format(a=ctx.name(asker), b=ctx.sender.name, summary=summary), [asker])
    for part in parts:  # the roster may have changed since the question was asked
        rows = await store.shifts_between(ctx.session, max(datetime.fromisoformat(part["start"]), ctx.now),
                                          datetime.fromisoformat(part["end"]), chat_id=ctx.chat.id,
                                          person_id=part["from"])
        if not any(r.role == part["role"] for r in rows):
            return Outcome.say(SWAP_STALE.format(summary=_part_line(ctx, part)), [asker])
    for part in parts:
        await store.add(ctx.session, RosterOverride(
            chat_id=ctx.chat.id, person_id=part["to"], replaces=part["from"],
            start_at=max(datetime.fromisoformat(part["start"]), ctx.now), end_at=datetime.fromisoformat(part["end"]),
            kind="swap", created_at=ctx.now, created_by=ctx.sender.id))
    event = await _record(ctx, "roster_swap", f"{ctx.name(asker)} 与 {ctx.sender.name} 换班：{summary}",
                          before={"parts": [{"person": p["from"], **_slot(p)} for p in parts]},
                          after={"parts": [{"person": p["to"], **_slot(p)} for p in parts]})
    days = [date.fromisoformat(p["day"]) for p in parts]
    warnings = await _after_change(ctx, _roster(ctx), min(days), max(days), "换班", event, [ctx.chat.id])
    text = SWAP_DONE.format(a=ctx.name(asker), b=ctx.sender.name, lines="\n".join(_part_line(ctx, p) for p in parts))
    return Outcome.say("\n".join([text, *warnings]), [asker, ctx.sender.id])


def _slot(part: dict[str, Any]) -> dict[str, Any]:
    return {k: part[k] for k in ("day", "shift", "role", "start", "end")}


# -- 代班 ------------------------------------------------------------------------------------------------


@router.command("代班", "替班", parse=parse_cover, summary="代班 日期[班次] [@原值班人] — 代他人值班")
async def cover(ctx: Context, command: CoverCommand) -> Outcome:
    if not await store.has_roster(ctx.session, ctx.chat.id):
        return Outcome.say(NO_ROSTER_CHANGE.format(action="代班"))
    roster = _roster(ctx)
    views = await _shifts_named(ctx, roster, command.shift)
    if isinstance(views, Outcome):
        return views
    original = None
    if command.replaces is not None:
        original = _person(ctx, command.replaces)
        if original is None:
            return Outcome.say(UNKNOWN_PERSON.format(name=command.replaces))
    roles = [r for r in (Role.DUTY_OFFICER, Role.DUTY_LEADER) if await _eligible(ctx, ctx.sender.id, r)]
    day, shift = day_label(views[0].day), command.shift.shift or ""
    if not roles:
        return Outcome.say(NOT_ELIGIBLE.format(name=ctx.sender.name, role="值班员或带班领导"))
    open_views = [v for v in views if v.end > ctx.now]
    if not open_views:
        return Outcome.say(ENDED.format(day=day, shift=shift, action="代班"))
    free = [v for v in open_views if not any(ctx.sender.id in v.person_ids(r) for r in DUTY_ROLES)]
    if not free:
        return Outcome.say(COVER_SELF.format(day=day, shift=shift))
    choices = [(v, role, p) for v in free for role in roles for p in v.person_ids(role)
               if original is None or p == original.id]
    if not choices:
        return Outcome.say(COVER_NOBODY.format(day=day, shift=shift, role="或".join(r.value for r in roles)))
    if len(choices) > 1:
        names = "、".join(f"{v.name}{ctx.name(p)}" for v, _, p in choices)
        first = ctx.name(choices[0][2])
        return Outcome.say(COVER_WHOM.format(day=day, shift=shift, role="值班人员", names=names,
                                             example=f"{day}{choices[0][0].name}", first=first))
    view, role, person = choices[0]
    found = _person_range(view, person, ctx.now)
    assert found is not None
    _, start, end = found
    await store.add(ctx.session, RosterOverride(chat_id=ctx.chat.id, person_id=ctx.sender.id, replaces=person,
                                                start_at=start, end_at=end, kind="cover", created_at=ctx.now,
                                                created_by=ctx.sender.id))
    part = {"day": view.day.isoformat(), "shift": view.name, "role": role.value, "start": _iso(start),
            "end": _iso(end), "from": person, "to": ctx.sender.id}
    event = await _record(ctx, "roster_cover", f"{ctx.sender.name} 代 {ctx.name(person)} 值班：{_part_line(ctx, part)}",
                          before={"person": person, **_slot(part)}, after={"person": ctx.sender.id, **_slot(part)})
    warnings = await _after_change(ctx, roster, view.day, view.day, "代班", event, [ctx.chat.id])
    text = COVERED.format(new=ctx.sender.name, old=ctx.name(person), lines=_part_line(ctx, part))
    return Outcome.say("\n".join([text, *warnings]), [ctx.sender.id, person])


# -- 请假 ------------------------------------------------------------------------------------------------


def _range_times(ctx: Context, expr: RangeExpr) -> tuple[datetime, datetime] | None:
    today = _today(ctx)
    first = expr.first.resolve(today)
    last = expr.last.resolve(today) if expr.last is not None else first
    if first is None or last is None:
        return None
    if last < first and expr.last is not None and expr.last.year is None and expr.last.month is not None:
        last = last.replace(year=last.year + 1) if (last.month, last.day) != (2, 29) else last
    start = datetime.combine(first, expr.first_time or time(0), tzinfo=ctx.tz)
    if expr.last_time is not None:
        end = datetime.combine(last, expr.last_time, tzinfo=ctx.tz)
    else:
        end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=ctx.tz)
    return start, end


@router.command("请假", parse=parse_leave, summary="请假 开始日期 [至 结束日期] [事由] — 请假期间由轮班中其他人顶替")
async def leave(ctx: Context, command: LeaveCommand) -> Outcome:
    person = ctx.sender
    if command.person is not None:
        found = _person(ctx, command.person)
        if found is None:
            return Outcome.say(UNKNOWN_PERSON.format(name=command.person))
        if found.id != ctx.sender.id and not is_privileged(ctx.sender.id, ctx.directory):
            return await ctx.refuse(NOT_PERMITTED.format(action="为他人登记请假"), action="请假")
        person = found
    times = _range_times(ctx, command.span)
    if times is None:
        return Outcome.say(USAGE_LEAVE)
    start, end = times
    if end <= start or end <= ctx.now:
        return Outcome.say(LEAVE_BAD_RANGE)
    if end - start > timedelta(days=LEAVE_MAX_DAYS):
        return Outcome.say(LEAVE_TOO_LONG.format(days=LEAVE_MAX_DAYS))
    before = [(chat, seg) for chat, seg in await segments_of_person(ctx.session, person.id, start, end)]
    await store.add(ctx.session, RosterLeave(person_id=person.id, start_at=start, end_at=end, reason=command.reason,
                                             created_at=ctx.now, created_by=ctx.sender.id))
    span_text = f"{when_label(start, ctx.tz)} 至 {when_label(end, ctx.tz)}"
    reason = f"（{command.reason}）" if command.reason else ""
    event = await _record(ctx, "roster_leave", f"{person.name} 请假 {span_text}{reason}",
                          after={"person": person.id, "start": _iso(start), "end": _iso(end),
                                 "reason": command.reason})
    first = start.astimezone(ctx.tz).date() - timedelta(days=1)
    last = (end - timedelta(microseconds=1)).astimezone(ctx.tz).date()
    warnings = await _after_change(ctx, _roster(ctx), first, last, f"{person.name}请假", event)
    lines = [LEAVE_DONE.format(name=person.name, span=span_text, reason=reason)]
    mentions = [person.id]
    if not before:
        lines.append(LEAVE_NONE_AFFECTED.format(name=person.name))
    else:
        lines.append(LEAVE_CHANGES)
        seen: set[tuple[str, datetime, Role]] = set()
        for chat_id, seg in before:
            if (chat_id, seg.shift_start, seg.role) in seen:
                continue
            seen.add((chat_id, seg.shift_start, seg.role))
            rows = await store.shifts_between(ctx.session, seg.shift_start, seg.shift_end, chat_id=chat_id)
            now_on = [r.person_id for r in rows if r.role == seg.role.value and r.shift_start == seg.shift_start]
            now_on = list(dict.fromkeys(now_on))
            mentions += [p for p in now_on if p != person.id]
            names = "、".join(name_of(p, ctx.directory) for p in now_on) or "空缺"
            where = "" if chat_id == ctx.chat.id else f"（{_chat_name(ctx, chat_id)}）"
            lines.append(LEAVE_LINE.format(day=day_label(seg.day), shift=seg.shift, role=seg.role.value,
                                           people=names) + where)
    return Outcome.say("\n".join(lines + warnings), list(dict.fromkeys(mentions)))


def _chat_name(ctx: Context, chat_id: str) -> str:
    chat = ctx.directory.chats.get(chat_id)
    return chat.name if chat else chat_id


# -- 排班 (admins) ------------------------------------------------------------------------------------------


@router.command("排班", parse=parse_assign,
                summary="排班 日期[班次] 值班员|带班领导 @某人 / 排班 @甲 替 @乙 日期[班次] — 管理员调整排班")
async def assign(ctx: Context, admin: AdminEdit) -> Outcome:
    command = admin.edit
    if not is_privileged(ctx.sender.id, ctx.directory):
        return await ctx.refuse(NOT_PERMITTED.format(action="调整排班"), action="排班")
    if not await store.has_roster(ctx.session, ctx.chat.id):
        return Outcome.say(NO_ROSTER_CHANGE.format(action="排班"))
    if isinstance(command, OverrideCommand):
        return await _override(ctx, command)
    roster = _roster(ctx)
    views = await _shifts_named(ctx, roster, command.shift)
    if isinstance(views, Outcome):
        return views
    if len(views) > 1:
        names = "、".join(v.name for v in views)
        day = day_label(views[0].day)
        return Outcome.say(WHICH_SHIFT.format(day=day, names=names, example=f"排班 {day}{views[0].name} 值班员 @某人"))
    view = views[0]
    people = []
    for name in command.people:
        person = _person(ctx, name)
        if person is None:
            return Outcome.say(UNKNOWN_PERSON.format(name=name))
        people.append(person.id)
    old = view.person_ids(command.role)
    await store.set_assignment(ctx.session, RosterAssignment(
        chat_id=ctx.chat.id, day=view.day, shift=view.name, role=command.role.value, people=people,
        created_at=ctx.now, created_by=ctx.sender.id))
    detail = f"{day_label(view.day)} {view.name} {command.role.value}：{'、'.join(ctx.name(p) for p in people)}"
    event = await _record(ctx, "roster_assign", detail, before={"people": old}, after={"people": people,
                          "day": view.day.isoformat(), "shift": view.name, "role": command.role.value})
    warnings = await _after_change(ctx, roster, view.day, view.day, "排班调整", event, [ctx.chat.id])
    text = ASSIGNED.format(day=day_label(view.day), shift=view.name, role=command.role.value,
                           people="、".join(ctx.name(p) for p in people),
                           old="、".join(ctx.name(p) for p in old) or "空缺")
    return Outcome.say("\n".join([text, *warnings]), list(dict.fromkeys([*people, *old])))


async def _override(ctx: Context, command: OverrideCommand) -> Outcome:
    new, old = _person(ctx, command.person), _person(ctx, command.replaces)
    if new is None or old is None:
        return Outcome.say(UNKNOWN_PERSON.format(name=command.person if new is None else command.replaces))
    roster = _roster(ctx)
    if command.span is not None:
        times = _range_times(ctx, command.span)
        if times is None or times[1] <= times[0]:
            return Outcome.say(USAGE_ASSIGN)
        start, end = times[0].astimezone(ctx.now.tzinfo), times[1].astimezone(ctx.now.tzinfo)
    else:
        assert command.shift is not None
        views = await _shifts_named(ctx, roster, command.shift)
        if isinstance(views, Outcome):
            return views
        mine = [v for v in views if _person_range(v, old.id, ctx.now) is not None]
        if not mine:
            return Outcome.say(OVERRIDE_NOTHING.format(old=old.name))
        ranges = [_person_range(v, old.id, ctx.now) for v in mine]
        start = min(r[1] for r in ranges if r is not None)
        end = max(r[2] for r in ranges if r is not None)
    start = max(start, ctx.now)
    rows = [r for r in await store.shifts_between(ctx.session, start, end, chat_id=ctx.chat.id, person_id=old.id)]
    if not rows or end <= start:
        return Outcome.say(OVERRIDE_NOTHING.format(old=old.name))
    await store.add(ctx.session, RosterOverride(chat_id=ctx.chat.id, person_id=new.id, replaces=old.id,
                                                start_at=start, end_at=end, kind="admin", created_at=ctx.now,
                                                created_by=ctx.sender.id))
    lines = []
    for row in rows:
        s, e = max(row.start_at, start), min(row.end_at, end)
        lines.append(SWAP_LINE.format(day=day_label(row.day), shift=row.shift, span=span(s, e, ctx.tz),
                                      role=row.role, old=old.name, new=new.name))
    event = await _record(ctx, "roster_override", f"{new.name} 替 {old.name}：{'；'.join(lines)}",
                          before={"person": old.id}, after={"person": new.id, "start": _iso(start), "end": _iso(end)})
    first = min(r.day for r in rows)
    last = max(r.day for r in rows)
    warnings = await _after_change(ctx, roster, first, last, "排班调整", event, [ctx.chat.id])
    text = OVERRIDDEN.format(new=new.name, old=old.name, lines="\n".join(lines))
    return Outcome.say("\n".join([text, *warnings]), [new.id, old.id])


# -- 点名: the answer --------------------------------------------------------------------------------------


@router.fallback
async def answer_roll_call(ctx: Context) -> Outcome | None:
    if ctx.text.strip() not in ROLL_CALL_WORDS:
        return None
    call = await store.open_roll_call(ctx.session, ctx.chat.id, ctx.now)
    if call is None or ctx.sender.id not in [*call.people, *call.leaders]:
        return None
    await store.answer_roll_call(ctx.session, call.id, ctx.sender.id, ctx.now)
    await _record(ctx, "roll_call_answered", f"{ctx.sender.name} 应答点名（{when_label(call.at, ctx.tz)}）",
                  after={"roll_call": call.id, "late": ctx.now > call.due_at})
    template = ROLL_CALL_LATE if ctx.now > call.due_at else ROLL_CALL_ANSWERED
    return Outcome.say(template.format(name=ctx.sender.name, at=when_label(ctx.now, ctx.tz)))
