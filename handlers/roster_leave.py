"""请假 and 销假 in chat.

请假: the person's shifts in the period go to substitutes chosen by the roster's rules (the
rotation's substitute order, within the limits of continuous duty and rest). The confirmation
names, per shift, who covers it as the stored roster now says, or that nobody can — and that gap
goes to the admins like the daily gap report.
销假: a leave not yet begun is removed, one under way ends now; the person's shifts come back and
the confirmation names them, read back from the roster.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from domain.config import PersonConfig
from domain.vocab import Role
from handlers.context import Context, Outcome
from handlers.permissions import is_privileged
from handlers.roster_common import (
    NOT_PERMITTED,
    UNKNOWN_PERSON,
    Slot,
    bad_date,
    chat_name,
    find_person,
    leave_span,
    range_times,
    read_slots,
    record,
    roster_of,
    settle,
    today,
)
from handlers.roster_gaps import admins_reachable
from handlers.roster_parse import DayExpr, RangeExpr
from handlers.roster_rules import Segment
from handlers.roster_view import day_label, name_of, when_label
from store import roster as store
from store.models import RosterLeave

USAGE_LEAVE = ("用法：请假 开始日期 [至 结束日期] [事由]，例如：请假 11-25 至 11-27 外出培训；"
               "也可写时间：请假 11-25 08:30 至 11-25 17:30")
USAGE_CANCEL = "用法：销假 [日期]，例如：销假 11-25；管理员为他人销假：销假 @孙丽 11-25"
LEAVE_BAD_RANGE = "请假的结束时间应晚于开始时间，且不早于现在。"
LEAVE_TOO_LONG = "请假时间超过{days}天，请分段登记或联系管理员。"
LEAVE_DONE = "【请假】{name} 请假：{span}{reason}。"
LEAVE_NONE_AFFECTED = "期间没有{name}的班次，排班不变。"
LEAVE_CHANGES = "期间班次安排："
LEAVE_LINE = "{day} {shift}{role}：{text}"
COVERED_BY = "{people}顶替"
NOBODY_TO_ADMINS = "无人可顶替，已报管理员"
NOBODY_HERE = "无人可顶替，请管理员补排"
STILL_ON = "仍由{people}值班"
CANCEL_NONE = "{name}没有尚未结束的请假。"
CANCEL_NONE_ON = "{name}在{day}没有请假。"
CANCEL_DONE = "【销假】{name} 销假：{spans}。"
CANCEL_BACK = "恢复的班次："
CANCEL_NO_SHIFTS = "期间没有{name}的班次。"
CANCEL_LINE = "{day} {shift} {role}：{people}"
LEAVE_MAX_DAYS = 90


async def _subject(ctx: Context, name: str | None, action: str) -> PersonConfig | Outcome:
    """The person a 请假/销假 is for: the sender, or (admins and coordinators only) someone named."""
    if name is None:
        return ctx.sender
    found = find_person(ctx, name)
    if found is None:
        return Outcome.say(UNKNOWN_PERSON.format(name=name))
    if found.id != ctx.sender.id and not is_privileged(ctx.sender.id, ctx.directory):
        return await ctx.refuse(NOT_PERMITTED.format(action=f"为他人{action}"), action=action.removeprefix("登记"))
    return found


def _people(ctx: Context, segments: list[Segment]) -> str:
    return "、".join(dict.fromkeys(name_of(s.person, ctx.directory) for s in segments))


def _grouped(ctx: Context, lines: list[tuple[str, str]]) -> list[str]:
    """The same line in several chats (one team on two platforms) once; other chats named."""
    chats: dict[str, list[str]] = {}
    for chat_id, line in lines:
        chats.setdefault(line, []).append(chat_id)
    return [line if ctx.chat.id in where else line + "（" + "、".join(chat_name(ctx, c) for c in where) + "）"
            for line, where in chats.items()]


def _slot_line(slot: Slot, text: str) -> str:
    role = "" if slot.role is Role.DUTY_OFFICER else f" {slot.role.value}"
    return LEAVE_LINE.format(day=day_label(slot.day), shift=slot.shift, role=role, text=text)


async def leave(ctx: Context, name: str | None, expr: RangeExpr, reason: str) -> Outcome:
    person = await _subject(ctx, name, "登记请假")
    if isinstance(person, Outcome):
        return person
    times = range_times(ctx, expr)
    if isinstance(times, Outcome):
        return times
    start, end = times
    if end <= start or end <= ctx.now:
        return Outcome.say(LEAVE_BAD_RANGE)
    if end - start > timedelta(days=LEAVE_MAX_DAYS):
        return Outcome.say(LEAVE_TOO_LONG.format(days=LEAVE_MAX_DAYS))
    before = await read_slots(ctx.session, max(start, ctx.now), end, person_id=person.id)
    await store.add(ctx.session, RosterLeave(person_id=person.id, start_at=start, end_at=end, reason=reason,
                                             created_at=ctx.now, created_by=ctx.sender.id))
    span_text = f"{when_label(start, ctx.tz)} 至 {when_label(end, ctx.tz)}"
    reason_text = f"（{reason}）" if reason else ""
    event = await record(ctx, "roster_leave", f"{person.name} 请假 {span_text}{reason_text}",
                         after={"person": person.id, "start": start.isoformat(), "end": end.isoformat(),
                                "reason": reason})
    first = start.astimezone(ctx.tz).date() - timedelta(days=1)
    last = (end - timedelta(microseconds=1)).astimezone(ctx.tz).date()
    await settle(ctx, roster_of(ctx), first, last, f"{person.name}请假", event)
    lines = [LEAVE_DONE.format(name=person.name, span=span_text, reason=reason_text)]
    if not before:
        lines.append(LEAVE_NONE_AFFECTED.format(name=person.name))
        return Outcome.say("\n".join(lines), [person.id])
    after = await read_slots(ctx.session, max(start, ctx.now), end)
    nobody = NOBODY_TO_ADMINS if admins_reachable(ctx.directory) else NOBODY_HERE
    found: list[tuple[str, str]] = []
    mentions = [person.id]
    for slot, segments in sorted(before.items(), key=lambda pair: (pair[0].start, pair[0].chat_id)):
        had = {s.person for s in segments}
        now_on = after.get(slot, [])
        new = [s for s in now_on if s.person not in had]
        if any(s.person == person.id for s in now_on):
            text = STILL_ON.format(people=_people(ctx, [s for s in now_on if s.person == person.id]))
        else:
            text = COVERED_BY.format(people=_people(ctx, new)) if new else nobody
        mentions += [s.person for s in new]
        found.append((slot.chat_id, _slot_line(slot, text)))
    lines += [LEAVE_CHANGES, *_grouped(ctx, found)]
    return Outcome.say("\n".join(lines), list(dict.fromkeys(mentions)))


# -- 销假 ------------------------------------------------------------------------------------------------


async def cancel_leave(ctx: Context, name: str | None, day_expr: DayExpr | None) -> Outcome:
    person = await _subject(ctx, name, "销假")
    if isinstance(person, Outcome):
        return person
    window_start, window_end = ctx.now, None
    day = None
    if day_expr is not None:
        day = day_expr.resolve(today(ctx))
        if day is None:
            return bad_date(day_expr)
        window_start = max(ctx.now, datetime.combine(day, time(0), tzinfo=ctx.tz))
        window_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ctx.tz)
    leaves = await store.leaves(ctx.session, window_start, window_end, person_id=person.id)
    if not leaves:
        if day is not None:
            return Outcome.say(CANCEL_NONE_ON.format(name=person.name, day=day_label(day)))
        return Outcome.say(CANCEL_NONE.format(name=person.name))
    start = max(ctx.now, min(v.start_at for v in leaves))
    end = max(v.end_at for v in leaves)
    before = await read_slots(ctx.session, start, end)
    spans = "；".join(leave_span(v, ctx.tz)[0] + (f"（{v.reason}）" if v.reason else "") for v in leaves)
    for row in leaves:
        if row.start_at >= ctx.now:
            await store.delete_leave(ctx.session, row.id)
        else:
            row.end_at = ctx.now  # under way: it ends now, and stays in the record as taken so far
    await ctx.session.flush()
    event = await record(ctx, "roster_leave_cancelled", f"{person.name} 销假：{spans}",
                         before={"leaves": [v.id for v in leaves]}, after={"person": person.id})
    await settle(ctx, roster_of(ctx), start.astimezone(ctx.tz).date() - timedelta(days=1),
                 (end - timedelta(microseconds=1)).astimezone(ctx.tz).date(), f"{person.name}销假", event)
    after = await read_slots(ctx.session, start, end, person_id=person.id)
    lines = [CANCEL_DONE.format(name=person.name, spans=spans)]
    mentions = [person.id]
    back: list[tuple[str, str]] = []
    for slot, segments in sorted(after.items(), key=lambda pair: (pair[0].start, pair[0].chat_id)):
        mentions += [s.person for s in before.get(slot, []) if s.person != person.id]  # no longer needed
        back.append((slot.chat_id, CANCEL_LINE.format(day=day_label(slot.day), shift=slot.shift,
                                                      role=slot.role.value, people=_people(ctx, segments))))
    lines += [CANCEL_BACK, *_grouped(ctx, back)] if back else [CANCEL_NO_SHIFTS.format(name=person.name)]
    return Outcome.say("\n".join(lines), list(dict.fromkeys(mentions)))
