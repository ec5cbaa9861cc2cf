"""请假 and 销假: the operations (handlers/ops/roster.py says what every roster change does).

请假: the person's shifts in the period go to substitutes chosen by the roster's rules (the
rotation's substitute order, within the limits of continuous duty and rest); a shift nobody can
take goes to the admins like the daily gap report. 销假: a leave not yet begun is removed, one
under way ends now; the person's shifts come back. Each event carries the slots concerned as
stored before and after, for the confirmation.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from domain.config import ChatConfig, PersonConfig
from handlers.ops.base import Actor, Work
from handlers.ops.roster import (
    BadDate,
    BadLeaveRange,
    LeaveCancelled,
    LeaveTaken,
    LeaveTooLong,
    NoLeave,
    NotAPerson,
    PrivilegedOnly,
    RosterChange,
    UnknownPerson,
)
from handlers.ops.roster_slots import read_slots
from handlers.ops.roster_steps import find_person, leave_of, person_of, range_times, record, roster_of, settle, today
from handlers.ops.roster_text import leave_span
from handlers.permissions import is_privileged
from handlers.roster_parse import DayExpr, RangeExpr
from handlers.roster_view import when_label
from store import roster as store
from store.models import RosterLeave

LEAVE_MAX_DAYS = 90

Subject = PersonConfig | NotAPerson | UnknownPerson | PrivilegedOnly


def subject(work: Work, actor: Actor, name: str | None, change: RosterChange) -> Subject:
    """The person a 请假/销假 is for: the actor, or (admins and coordinators only) someone named."""
    me = person_of(work, actor)
    if name is None or isinstance(me, NotAPerson):
        return me
    found = find_person(work, name)
    if found is None:
        return UnknownPerson(name)
    if found.id != me.id and not is_privileged(me.id, work.directory):
        return PrivilegedOnly(change)
    return found


async def take_leave(
    work: Work, actor: Actor, chat: ChatConfig | None, name: str | None, expr: RangeExpr, reason: str
) -> LeaveTaken | NotAPerson | UnknownPerson | PrivilegedOnly | BadDate | BadLeaveRange | LeaveTooLong:
    """请假 for the actor, or for the person named (by an admin or coordinator)."""
    person = subject(work, actor, name, RosterChange.LEAVE)
    if not isinstance(person, PersonConfig):
        return person
    times = range_times(work, expr)
    if isinstance(times, BadDate):
        return times
    start, end = times
    if end <= start or end <= work.now:
        return BadLeaveRange()
    if end - start > timedelta(days=LEAVE_MAX_DAYS):
        return LeaveTooLong(LEAVE_MAX_DAYS)
    before = await read_slots(work.session, max(start, work.now), end, person_id=person.id)
    await store.add(work.session, RosterLeave(person_id=person.id, start_at=start, end_at=end, reason=reason,
                                              created_at=work.now, created_by=actor.id))
    tz = work.config.tz
    reason_text = f"（{reason}）" if reason else ""
    event = await record(work, actor, chat, "roster_leave",
                         f"{person.name} 请假 {when_label(start, tz)} 至 {when_label(end, tz)}{reason_text}",
                         after={"person": person.id, "start": start.isoformat(), "end": end.isoformat(),
                                "reason": reason})
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    await settle(work, roster_of(work), first, last, f"{person.name}请假", event)
    after = await read_slots(work.session, max(start, work.now), end) if before else {}
    return LeaveTaken(person, start, end, reason, event, before, after)


async def cancel_leave(
    work: Work, actor: Actor, chat: ChatConfig | None, name: str | None, day_expr: DayExpr | None
) -> LeaveCancelled | NotAPerson | UnknownPerson | PrivilegedOnly | BadDate | NoLeave:
    """销假: every leave of the person not yet ended (or the one on the day named)."""
    person = subject(work, actor, name, RosterChange.CANCEL_LEAVE)
    if not isinstance(person, PersonConfig):
        return person
    tz = work.config.tz
    window_start, window_end = work.now, None
    day = None
    if day_expr is not None:
        day = day_expr.resolve(today(work))
        if day is None:
            return BadDate(day_expr)
        window_start = max(work.now, datetime.combine(day, time(0), tzinfo=tz))
        window_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    rows = await store.leaves(work.session, window_start, window_end, person_id=person.id)
    if not rows:
        return NoLeave(person, day)
    leaves = tuple(leave_of(row) for row in rows)  # as they were, before one under way is ended
    start = max(work.now, min(v.start_at for v in leaves))
    end = max(v.end_at for v in leaves)
    before = await read_slots(work.session, start, end)
    for row in rows:
        if row.start_at >= work.now:
            await store.delete_leave(work.session, row.id)
        else:
            row.end_at = work.now  # under way: it ends now, and stays in the record as taken so far
    await work.session.flush()
    spans = "；".join(leave_span(v, tz)[0] + (f"（{v.reason}）" if v.reason else "") for v in leaves)
    event = await record(work, actor, chat, "roster_leave_cancelled", f"{person.name} 销假：{spans}",
                         before={"leaves": [v.id for v in leaves]}, after={"person": person.id})
    await settle(work, roster_of(work), start.astimezone(tz).date() - timedelta(days=1),
                 (end - timedelta(microseconds=1)).astimezone(tz).date(), f"{person.name}销假", event)
    after = await read_slots(work.session, start, end, person_id=person.id)
    return LeaveCancelled(person, leaves, event, before, after)
