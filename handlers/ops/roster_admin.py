"""排班 by admins and coordinators: name the people of one role in one shift (`assign`), or put one
person in another's place for a shift or a time range (`replace`). Someone on leave then is not
put on duty (the refusal names the leave). handlers/ops/roster.py says what every change does.
"""

from __future__ import annotations

from datetime import datetime

from domain.config import ChatConfig, PersonConfig
from domain.dialogues import ShiftPart
from domain.vocab import Role
from handlers.ops.base import Actor, Work
from handlers.ops.roster import (
    BadDate,
    BadRange,
    NotAPerson,
    NothingToReplace,
    PrivilegedOnly,
    RosterChange,
    RosterRefusal,
    ShiftAssigned,
    ShiftEnded,
    ShiftReplaced,
    UnknownPerson,
    WhichShift,
)
from handlers.ops.roster_slots import read_slots, slot_segments
from handlers.ops.roster_steps import (
    find_person,
    has_roster,
    name,
    on_leave,
    person_of,
    person_range,
    range_times,
    record,
    roster_of,
    settle,
    shifts_named,
    stored_parts,
)
from handlers.ops.roster_text import part_line
from handlers.permissions import is_privileged
from handlers.roster_parse import RangeExpr, ShiftExpr
from handlers.roster_service import Roster
from handlers.roster_view import day_label
from store import roster as store
from store.models import RosterAssignment, RosterOverride

CAUSE = "排班调整"  # what the admins' gap notice says caused a gap


async def _admin(work: Work, actor: Actor, chat: ChatConfig) -> PersonConfig | RosterRefusal:
    me = person_of(work, actor)
    if isinstance(me, NotAPerson):
        return me
    if not is_privileged(me.id, work.directory):
        return PrivilegedOnly(RosterChange.ASSIGN)
    refused = await has_roster(work, chat, RosterChange.ASSIGN)
    return me if refused is None else refused


async def assign(
    work: Work, actor: Actor, chat: ChatConfig, expr: ShiftExpr, role: Role, names: tuple[str, ...]
) -> ShiftAssigned | RosterRefusal:
    """The people named hold `role` in the shift (in that order), whoever the rotation had."""
    me = await _admin(work, actor, chat)
    if not isinstance(me, PersonConfig):
        return me
    roster = roster_of(work)
    views = await shifts_named(work, roster, chat, expr)
    if not isinstance(views, list):
        return views
    if len(views) > 1:
        return WhichShift(RosterChange.ASSIGN, views[0].day, tuple(v.name for v in views))
    view = views[0]
    if view.end <= work.now:
        return ShiftEnded(RosterChange.ASSIGN, view.day, view.name)
    people = []
    for person_name in names:
        person = find_person(work, person_name)
        if person is None:
            return UnknownPerson(person_name)
        leave = await on_leave(work, person, max(view.start, work.now), view.end, RosterChange.ASSIGN)
        if leave is not None:
            return leave
        people.append(person.id)
    old = view.person_ids(role)
    await store.set_assignment(work.session, RosterAssignment(
        chat_id=chat.id, day=view.day, shift=view.name, role=role.value, people=people,
        created_at=work.now, created_by=me.id))
    detail = f"{day_label(view.day)} {view.name} {role.value}：{'、'.join(name(work, p) for p in people)}"
    event = await record(work, actor, chat, "roster_assign", detail, before={"people": old}, after={
        "people": people, "day": view.day.isoformat(), "shift": view.name, "role": role.value})
    gaps = await settle(work, roster, view.day, view.day, CAUSE, event, [chat.id])
    slots = await read_slots(work.session, view.start, view.end, chats=[chat.id])
    return ShiftAssigned(view.day, view.name, role, view.start, view.end, tuple(people), tuple(old),
                         tuple(slot_segments(slots, view.day, view.name, role)), gaps, event)


async def replace(
    work: Work, actor: Actor, chat: ChatConfig, new_name: str, old_name: str, expr: ShiftExpr | None,
    range_expr: RangeExpr | None,
) -> ShiftReplaced | RosterRefusal:
    """`new_name` takes `old_name`'s place in a shift, or in whatever `old_name` holds in a time range."""
    me = await _admin(work, actor, chat)
    if not isinstance(me, PersonConfig):
        return me
    new, old = find_person(work, new_name), find_person(work, old_name)
    if new is None or old is None:
        return UnknownPerson(new_name if new is None else old_name)
    roster = roster_of(work)
    if range_expr is not None:
        times = range_times(work, range_expr)
        if isinstance(times, BadDate):
            return times
        if times[1] <= times[0]:
            return BadRange()
        start, end = times[0].astimezone(work.now.tzinfo), times[1].astimezone(work.now.tzinfo)
    else:
        assert expr is not None
        views = await shifts_named(work, roster, chat, expr)
        if not isinstance(views, list):
            return views
        ranges = [r for r in (person_range(v, old.id, work.now) for v in views) if r is not None]
        if not ranges:
            return NothingToReplace(old)
        start, end = min(r[1] for r in ranges), max(r[2] for r in ranges)
    return await _replace(work, actor, chat, roster, (me, new, old), (max(start, work.now), end))


async def _replace(work: Work, actor: Actor, chat: ChatConfig, roster: Roster,
                   people: tuple[PersonConfig, PersonConfig, PersonConfig], window: tuple[datetime, datetime]
                   ) -> ShiftReplaced | RosterRefusal:
    (me, new, old), (start, end) = people, window
    rows = await store.shifts_between(work.session, start, end, chat_id=chat.id, person_id=old.id)
    if not rows or end <= start:
        return NothingToReplace(old)
    leave = await on_leave(work, new, start, end, RosterChange.ASSIGN)
    if leave is not None:
        return leave
    await store.add(work.session, RosterOverride(chat_id=chat.id, person_id=new.id, replaces=old.id, start_at=start,
                                                 end_at=end, kind="admin", created_at=work.now, created_by=me.id))
    parts = [ShiftPart(day=row.day, shift=row.shift, role=Role(row.role), start=max(row.start_at, start),
                       end=min(row.end_at, end), giver=old.id, taker=new.id) for row in rows]
    asked = "；".join(part_line(p, work.directory, work.config.tz, new.name) for p in parts)
    event = await record(work, actor, chat, "roster_override", f"{new.name} 替 {old.name}：{asked}",
                         before={"person": old.id},
                         after={"person": new.id, "start": start.isoformat(), "end": end.isoformat()})
    gaps = await settle(work, roster, min(r.day for r in rows), max(r.day for r in rows), CAUSE, event, [chat.id])
    return ShiftReplaced(new, old, await stored_parts(work, chat, parts), gaps, event)

