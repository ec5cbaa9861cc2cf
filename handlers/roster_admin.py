"""排班 by admins and coordinators in chat: name the people of one role in one shift, or put one
person in another's place for a shift or a time range.

Someone on leave then is not put on duty (the admin is told why and how the leave is cancelled);
the confirmation is what the stored roster says after the change.
"""

from __future__ import annotations

from datetime import date, datetime

from domain.vocab import Role
from handlers.context import Context, Outcome
from handlers.permissions import is_privileged
from handlers.roster_common import (
    ENDED_TEXT,
    NO_ROSTER_CHANGE,
    NOT_PERMITTED,
    UNKNOWN_PERSON,
    VACANT,
    WHICH_SHIFT,
    find_person,
    gap_warning,
    holders,
    person_range,
    range_times,
    record,
    refuse_if_on_leave,
    roster_of,
    settle,
    shifts_named,
)
from handlers.roster_parse import RangeExpr, ShiftExpr
from handlers.roster_swap import SWAP_LINE
from handlers.roster_view import day_label, span
from store import roster as store
from store.models import RosterAssignment, RosterOverride

USAGE_ASSIGN = ("用法：排班 日期[班次] 值班员|带班领导 @某人，例如：排班 11-25夜班 值班员 @孙丽；"
                "或替班：排班 @孙丽 替 @赵敏 11-25夜班（也可写起止时间）")
ASSIGNED = "【排班】{day} {shift} {role}：{people}（原：{old}）"
OVERRIDDEN = "【排班】{new} 替 {old} 值班：\n{lines}"
OVERRIDE_NOTHING = "{old}在该时段没有本群的班次，未作调整。"


async def _allowed(ctx: Context) -> Outcome | None:
    if not is_privileged(ctx.sender.id, ctx.directory):
        return await ctx.refuse(NOT_PERMITTED.format(action="调整排班"), action="排班")
    if not await store.has_roster(ctx.session, ctx.chat.id):
        return Outcome.say(NO_ROSTER_CHANGE.format(action="排班"))
    return None


async def assign(ctx: Context, expr: ShiftExpr, role: Role, names: tuple[str, ...]) -> Outcome:
    refused = await _allowed(ctx)
    if refused is not None:
        return refused
    roster = roster_of(ctx)
    views = await shifts_named(ctx, roster, expr)
    if isinstance(views, Outcome):
        return views
    day = day_label(views[0].day)
    if len(views) > 1:
        example = f"排班 {day}{views[0].name} 值班员 @某人"
        return Outcome.say(WHICH_SHIFT.format(day=day, names="、".join(v.name for v in views), example=example))
    view = views[0]
    if view.end <= ctx.now:
        return Outcome.say(ENDED_TEXT.format(day=day, shift=view.name, action="排班"))
    people = []
    for name in names:
        person = find_person(ctx, name)
        if person is None:
            return Outcome.say(UNKNOWN_PERSON.format(name=name))
        on_leave = await refuse_if_on_leave(ctx, person, max(view.start, ctx.now), view.end, "排班")
        if on_leave is not None:
            return on_leave
        people.append(person.id)
    old = view.person_ids(role)
    await store.set_assignment(ctx.session, RosterAssignment(
        chat_id=ctx.chat.id, day=view.day, shift=view.name, role=role.value, people=people,
        created_at=ctx.now, created_by=ctx.sender.id))
    detail = f"{day} {view.name} {role.value}：{'、'.join(ctx.name(p) for p in people)}"
    event = await record(ctx, "roster_assign", detail, before={"people": old}, after={
        "people": people, "day": view.day.isoformat(), "shift": view.name, "role": role.value})
    found = await settle(ctx, roster, view.day, view.day, "排班调整", event, [ctx.chat.id])
    text, held = await holders(ctx, ctx.chat.id, view.day, view.name, role, view.start, view.end)
    reply = ASSIGNED.format(day=day, shift=view.name, role=role.value, people=text,
                            old="、".join(ctx.name(p) for p in old) or VACANT)
    return Outcome.say("\n".join([reply, *gap_warning(ctx, found)]), list(dict.fromkeys([*held, *people, *old])))


async def override(ctx: Context, new_name: str, old_name: str, expr: ShiftExpr | None, range_expr: RangeExpr | None
                   ) -> Outcome:
    refused = await _allowed(ctx)
    if refused is not None:
        return refused
    new, old = find_person(ctx, new_name), find_person(ctx, old_name)
    if new is None or old is None:
        return Outcome.say(UNKNOWN_PERSON.format(name=new_name if new is None else old_name))
    roster = roster_of(ctx)
    if range_expr is not None:
        times = range_times(ctx, range_expr)
        if isinstance(times, Outcome):
            return times
        if times[1] <= times[0]:
            return Outcome.say(USAGE_ASSIGN)
        start, end = times[0].astimezone(ctx.now.tzinfo), times[1].astimezone(ctx.now.tzinfo)
    else:
        assert expr is not None
        views = await shifts_named(ctx, roster, expr)
        if isinstance(views, Outcome):
            return views
        ranges = [r for r in (person_range(v, old.id, ctx.now) for v in views) if r is not None]
        if not ranges:
            return Outcome.say(OVERRIDE_NOTHING.format(old=old.name))
        start, end = min(r[1] for r in ranges), max(r[2] for r in ranges)
    start = max(start, ctx.now)
    rows = await store.shifts_between(ctx.session, start, end, chat_id=ctx.chat.id, person_id=old.id)
    if not rows or end <= start:
        return Outcome.say(OVERRIDE_NOTHING.format(old=old.name))
    on_leave = await refuse_if_on_leave(ctx, new, start, end, "排班")
    if on_leave is not None:
        return on_leave
    await store.add(ctx.session, RosterOverride(chat_id=ctx.chat.id, person_id=new.id, replaces=old.id,
                                                start_at=start, end_at=end, kind="admin", created_at=ctx.now,
                                                created_by=ctx.sender.id))
    parts = [(row.day, row.shift, Role(row.role), max(row.start_at, start), min(row.end_at, end)) for row in rows]
    asked = "；".join(SWAP_LINE.format(day=day_label(d), shift=n, span=span(s, e, ctx.tz), role=r.value, old=old.name,
                                      new=new.name) for d, n, r, s, e in parts)
    event = await record(ctx, "roster_override", f"{new.name} 替 {old.name}：{asked}", before={"person": old.id},
                         after={"person": new.id, "start": start.isoformat(), "end": end.isoformat()})
    found = await settle(ctx, roster, min(r.day for r in rows), max(r.day for r in rows), "排班调整", event,
                         [ctx.chat.id])
    lines, mentions = await _readback(ctx, parts, old.name)
    text = OVERRIDDEN.format(new=new.name, old=old.name, lines="\n".join(lines))
    return Outcome.say("\n".join([text, *gap_warning(ctx, found)]), list(dict.fromkeys([new.id, old.id, *mentions])))


async def _readback(ctx: Context, parts: list[tuple[date, str, Role, datetime, datetime]], old: str
                    ) -> tuple[list[str], list[str]]:
    """Each replaced part as the stored roster has it now."""
    lines: list[str] = []
    mentions: list[str] = []
    for day, shift, role, start, end in parts:
        text, held = await holders(ctx, ctx.chat.id, day, shift, role, start, end)
        lines.append(SWAP_LINE.format(day=day_label(day), shift=shift, span=span(start, end, ctx.tz),
                                      role=role.value, old=old, new=text))
        mentions += held
    return lines, mentions
