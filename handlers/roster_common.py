"""The steps the roster's chat commands share: finding the shift a "日期[班次]" names, checking a
person may take it (role, leave), recording the change, re-resolving the roster and reporting gaps,
and reading the roster back after the change.

Every confirmation is rendered from the shifts as stored after the change (`read_slots`), never
from the command: a change the rules do not let stand (someone on leave, nobody within the limits
of duty and rest) is then visible at once instead of being confirmed and silently not applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from domain.config import PersonConfig
from domain.directory import Directory
from domain.vocab import Role
from handlers.context import Context, Outcome
from handlers.roster_gaps import GAP_NOTICE, report_to_admins
from handlers.roster_parse import DayExpr, RangeExpr, ShiftExpr
from handlers.roster_rules import Coverage, Segment
from handlers.roster_service import Roster, day_start, segment_of, segments_for_days
from handlers.roster_view import ShiftView, day_label, group_shifts, people_text, when_label
from store import audit
from store import roster as store
from store.models import RosterLeave

BAD_DATE = "没有“{text}”这一天，请检查日期。"
UNKNOWN_PERSON = "未找到人员“{name}”，请写配置中的姓名，例如 @孙丽。"
NO_SHIFT_NAMED = "{day}没有“{shift}”班次。当天班次：{names}。"
NO_SHIFTS_ON = "{day}没有班次。"
NO_ROSTER_CHANGE = "本群尚未启用排班表，无法{action}。请管理员先用 `dutybot roster import` 导入排班表。"
NOT_ELIGIBLE = "{name}不是{role}（既无该全局角色，也不在本群{role}轮班中），不能担任该班次的{role}。"
NOT_PERMITTED = "抱歉，只有管理员或协调人员可以{action}。"
WHICH_SHIFT = "您在{day}有多个班次（{names}），请写明班次，例如：{example}"
ENDED_TEXT = "{day}{shift}已结束，无法{action}。"
ON_LEAVE = ("{name} {span} 请假{reason}，不能{action}。如需取消请假，请{name}发送“销假 {day}”，"
            "或由管理员发送“销假 @{name} {day}”。")
GAP_WARNING = "⚠ 以下时段无人可排，请管理员补排：\n{lines}"
GAP_LINE = "{span} {role}：{reason}"
VACANT = "空缺"


@dataclass(frozen=True)
class Slot:
    """One role in one shift of one chat."""

    chat_id: str
    day: date
    shift: str
    start: datetime
    end: datetime
    role: Role


def roster_of(ctx: Context) -> Roster:
    return Roster.build(ctx.config, ctx.directory)


def today(ctx: Context) -> date:
    return ctx.now.astimezone(ctx.tz).date()


def find_person(ctx: Context, name: str) -> PersonConfig | None:
    for person in ctx.config.people:
        if name in (person.name, person.id):
            return person
    return None


def chat_name(ctx: Context, chat_id: str) -> str:
    chat = ctx.directory.chats.get(chat_id)
    return chat.name if chat else chat_id


def bad_date(expr: DayExpr) -> Outcome:
    return Outcome.say(BAD_DATE.format(text=expr.text or f"{expr.month}月{expr.day}日"))


async def views_of(ctx: Context, roster: Roster, first: date, last: date) -> list[ShiftView]:
    return group_shifts(await segments_for_days(roster, ctx.session, ctx.chat.id, first, last))


async def shifts_named(ctx: Context, roster: Roster, expr: ShiftExpr) -> list[ShiftView] | Outcome:
    """The shifts a "日期[班次]" names in this chat, or the answer explaining why there are none."""
    day = expr.day.resolve(today(ctx))
    if day is None:
        return bad_date(expr.day)
    views = await views_of(ctx, roster, day, day)
    if not views:
        return Outcome.say(NO_SHIFTS_ON.format(day=day_label(day)))
    if expr.shift is None:
        return views
    named = [v for v in views if v.name == expr.shift]
    if not named:
        names = "、".join(v.name for v in views)
        return Outcome.say(NO_SHIFT_NAMED.format(day=day_label(day), shift=expr.shift, names=names))
    return named


async def eligible(ctx: Context, person_id: str, role: Role) -> bool:
    if ctx.directory.has_role(person_id, role):
        return True
    return any(role.value == r.role and person_id in r.people for r in await store.rotations(ctx.session, ctx.chat.id))


def person_range(view: ShiftView, person_id: str, now: datetime) -> tuple[Role, datetime, datetime] | None:
    """The role and the still-to-come part of a person's time in a shift."""
    for role in (Role.DUTY_OFFICER, Role.DUTY_LEADER):
        mine = [s for s in view.of(role) if s.person == person_id and s.end > now]
        if mine:
            return role, max(min(s.start for s in mine), now), max(s.end for s in mine)
    return None


def range_times(ctx: Context, expr: RangeExpr) -> tuple[datetime, datetime] | Outcome:
    """The instants a "11-25 [08:30] 至 11-27 [17:30]" means (a date alone: the whole day)."""
    first = expr.first.resolve(today(ctx))
    if first is None:
        return bad_date(expr.first)
    last = first
    if expr.last is not None:
        found = expr.last.resolve(today(ctx))
        if found is None:
            return bad_date(expr.last)
        last = found
        if last < first and expr.last.year is None and (last.month, last.day) != (2, 29):
            last = last.replace(year=last.year + 1)  # "12-30 至 1-2"
    start = datetime.combine(first, expr.first_time or time(0), tzinfo=ctx.tz)
    if expr.last_time is not None:
        return start, datetime.combine(last, expr.last_time, tzinfo=ctx.tz)
    return start, datetime.combine(last + timedelta(days=1), time(0), tzinfo=ctx.tz)


def leave_span(leave: RosterLeave, tz: ZoneInfo) -> tuple[str, str]:
    """"11月25日至11月27日" for whole days (else the times), and the first date as a 销假 argument."""
    start, end = leave.start_at.astimezone(tz), leave.end_at.astimezone(tz)
    first = start.date()
    if start.time() == time(0) and end.time() == time(0):
        last = end.date() - timedelta(days=1)
        text = day_label(first) + (f"至{day_label(last)}" if last > first else "")
    else:
        text = f"{when_label(start, tz)} 至 {when_label(end, tz)}"
    return text, day_label(first)


async def refuse_if_on_leave(ctx: Context, person: PersonConfig, start: datetime, end: datetime,
                             action: str) -> Outcome | None:
    """The refusal when `person` is on leave for part of [start, end): why, and how to cancel it."""
    leaves = await store.leaves(ctx.session, start, end, person_id=person.id)
    if not leaves:
        return None
    text, day = leave_span(leaves[0], ctx.tz)
    reason = f"（{leaves[0].reason}）" if leaves[0].reason else ""
    return Outcome.say(ON_LEAVE.format(name=person.name, span=text, reason=reason, action=action, day=day))


async def record(ctx: Context, action: str, detail: str, before: dict[str, Any] | None = None,
                 after: dict[str, Any] | None = None) -> int:
    return await audit.record(ctx.session, at=ctx.now, actor=ctx.sender.id, chat_id=ctx.chat.id, action=action,
                              detail=detail, before=before, after=after)


# -- after a change ---------------------------------------------------------------------------------------


async def settle(ctx: Context, roster: Roster, first: date, last: date, cause: str, event_id: int,
                 chats: list[str] | None = None) -> dict[str, Coverage]:
    """Re-resolve the changed dates, and report any slot left empty to the admins (as the daily gap
    report does); returns the coverage of the dates concerned, per chat, for the reply."""
    await roster.rebuild_changed(ctx.session, ctx.now, first, last, chats)
    start = max(ctx.now, day_start(first, ctx.config))
    end = day_start(last + timedelta(days=2), ctx.config)
    if end <= start:
        return {}
    found = await roster.check(ctx.session, start, end, chats)
    for chat_id, result in found.items():
        if result.gaps:
            text = GAP_NOTICE.format(chat=chat_name(ctx, chat_id), cause=cause,
                                     lines="\n".join(gap_lines(ctx, result)))
            await report_to_admins(ctx.session, ctx.directory, ctx.now, key=f"gaps-change:{event_id}:{chat_id}",
                                   text=text, chats_with_gaps=[chat_id])
    return found


def gap_lines(ctx: Context, result: Coverage) -> list[str]:
    return [GAP_LINE.format(span=f"{when_label(g.start, ctx.tz)}—{when_label(g.end, ctx.tz)}", role=g.role.value,
                            reason=g.reason) for g in result.gaps]


def gap_warning(ctx: Context, found: dict[str, Coverage]) -> list[str]:
    """The reply's warning about slots left empty (other chats named)."""
    lines: list[str] = []
    for chat_id, result in found.items():
        mine = gap_lines(ctx, result)
        lines += mine if chat_id == ctx.chat.id else [f"{line}（{chat_name(ctx, chat_id)}）" for line in mine]
    return [GAP_WARNING.format(lines="\n".join(lines))] if lines else []


async def read_slots(session: AsyncSession, start: datetime, end: datetime, *, chats: list[str] | None = None,
                     person_id: str | None = None) -> dict[Slot, list[Segment]]:
    """The stored shifts overlapping [start, end) by slot (only the slots `person_id` holds, if given)."""
    rows = await store.shifts_between(session, start, end, chat_id=chats[0] if chats and len(chats) == 1 else None)
    found: dict[Slot, list[Segment]] = {}
    for row in rows:
        if chats is not None and row.chat_id not in chats:
            continue
        seg = segment_of(row)
        slot = Slot(row.chat_id, seg.day, seg.shift, seg.shift_start, seg.shift_end, seg.role)
        found.setdefault(slot, []).append(seg)
    if person_id is not None:
        found = {k: v for k, v in found.items() if any(s.person == person_id for s in v)}
    return found


def people_between(directory: Directory, tz: ZoneInfo, segments: list[Segment], start: datetime, end: datetime
                   ) -> str:
    """Who holds a slot in [start, end), from the stored segments: "孙丽", "赵敏（至20:00）、孙丽（20:00起）"."""
    inside = [s for s in segments if s.start < end and start < s.end]
    if not inside:
        return VACANT
    clipped = [Segment(s.day, s.shift, s.shift_start, s.shift_end, s.role, s.slot, s.person, max(s.start, start),
                       min(s.end, end), s.source, s.provisional) for s in inside]
    view = ShiftView(inside[0].day, inside[0].shift, start, end, inside[0].provisional, {inside[0].role: clipped})
    return people_text(view, inside[0].role, directory, tz, phones=False)


async def holders(ctx: Context, chat_id: str, day: date, shift: str, role: Role, start: datetime, end: datetime
                  ) -> tuple[str, list[str]]:
    """Who holds one role of one stored shift in [start, end): the text, and the people (to @-mention)."""
    slots = await read_slots(ctx.session, start, end, chats=[chat_id])
    segments = next((v for k, v in slots.items() if (k.day, k.shift, k.role) == (day, shift, role)), [])
    inside = [s for s in segments if s.start < end and start < s.end]
    return people_between(ctx.directory, ctx.tz, segments, start, end), list(dict.fromkeys(s.person for s in inside))
