"""The steps the roster's operations share: who acts, the shift a day and shift name point to, whether
a person may take it (role, leave), recording the change, re-resolving the roster and reporting
gaps, and reading the changed slots back from the stored roster."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from domain.config import ChatConfig, PersonConfig
from domain.dialogues import ShiftPart
from domain.vocab import Role
from handlers.ops.base import Actor, Work
from handlers.ops.roster import (
    BadDate,
    LeaveSpan,
    NoRoster,
    NoShiftNamed,
    NoShiftsOn,
    NotAPerson,
    OnLeave,
    RosterChange,
    StoredPart,
)
from handlers.ops.roster_slots import read_slots, slot_segments
from handlers.ops.roster_text import chat_name, gap_lines
from handlers.roster_gaps import GAP_NOTICE, report_to_admins
from handlers.roster_parse import RangeExpr, ShiftExpr
from handlers.roster_rules import Coverage
from handlers.roster_service import Roster, day_start, segments_for_days
from handlers.roster_view import ShiftView, group_shifts
from store import audit
from store import roster as store
from store.models import RosterLeave


def roster_of(work: Work) -> Roster:
    return Roster.build(work.config, work.directory)


def today(work: Work) -> date:
    return work.now.astimezone(work.config.tz).date()


def person_of(work: Work, actor: Actor) -> PersonConfig | NotAPerson:
    """The configured person acting (an API client has no shifts, leave or rotation of its own)."""
    person = work.directory.people.get(actor.id) if actor.is_person else None
    return person if person is not None else NotAPerson(actor.id)


def find_person(work: Work, name: str) -> PersonConfig | None:
    """A person by name or id (as written after @)."""
    for person in work.config.people:
        if name in (person.name, person.id):
            return person
    return None


def name(work: Work, person_id: str) -> str:
    person = work.directory.people.get(person_id)
    return person.name if person else person_id


async def has_roster(work: Work, chat: ChatConfig, change: RosterChange) -> NoRoster | None:
    return None if await store.has_roster(work.session, chat.id) else NoRoster(change)


async def views_of(work: Work, roster: Roster, chat_id: str, first: date, last: date) -> list[ShiftView]:
    return group_shifts(await segments_for_days(roster, work.session, chat_id, first, last))


async def shifts_named(work: Work, roster: Roster, chat: ChatConfig, expr: ShiftExpr
                       ) -> list[ShiftView] | BadDate | NoShiftsOn | NoShiftNamed:
    """The shifts a day and (optionally) a shift name point to in the chat, or why there are none."""
    day = expr.day.resolve(today(work))
    if day is None:
        return BadDate(expr.day)
    views = await views_of(work, roster, chat.id, day, day)
    if not views:
        return NoShiftsOn(day)
    if expr.shift is None:
        return views
    named = [v for v in views if v.name == expr.shift]
    if not named:
        return NoShiftNamed(day, expr.shift, tuple(v.name for v in views))
    return named


async def eligible(work: Work, chat: ChatConfig, person_id: str, role: Role) -> bool:
    if work.directory.has_role(person_id, role):
        return True
    return any(role.value == r.role and person_id in r.people for r in await store.rotations(work.session, chat.id))


def person_range(view: ShiftView, person_id: str, now: datetime) -> tuple[Role, datetime, datetime] | None:
    """The role and the still-to-come part of a person's time in a shift."""
    for role in (Role.DUTY_OFFICER, Role.DUTY_LEADER):
        mine = [s for s in view.of(role) if s.person == person_id and s.end > now]
        if mine:
            return role, max(min(s.start for s in mine), now), max(s.end for s in mine)
    return None


def range_times(work: Work, expr: RangeExpr) -> tuple[datetime, datetime] | BadDate:
    """The instants a "11-25 [08:30] 至 11-27 [17:30]" means (a date alone: the whole day)."""
    tz = work.config.tz
    first = expr.first.resolve(today(work))
    if first is None:
        return BadDate(expr.first)
    last = first
    if expr.last is not None:
        found = expr.last.resolve(today(work))
        if found is None:
            return BadDate(expr.last)
        last = found
        if last < first and expr.last.year is None and (last.month, last.day) != (2, 29):
            last = last.replace(year=last.year + 1)  # "12-30 至 1-2"
    start = datetime.combine(first, expr.first_time or time(0), tzinfo=tz)
    if expr.last_time is not None:
        return start, datetime.combine(last, expr.last_time, tzinfo=tz)
    return start, datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)


def leave_of(row: RosterLeave) -> LeaveSpan:
    return LeaveSpan(row.id, row.person_id, row.start_at, row.end_at, row.reason)


async def on_leave(work: Work, person: PersonConfig, start: datetime, end: datetime, change: RosterChange
                   ) -> OnLeave | None:
    """The refusal when `person` is on leave for part of [start, end): with that leave."""
    leaves = await store.leaves(work.session, start, end, person_id=person.id)
    return OnLeave(change, person, leave_of(leaves[0])) if leaves else None


async def record(work: Work, actor: Actor, chat: ChatConfig | None, action: str, detail: str,
                 before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> int:
    """An audit row of a roster change (about no item)."""
    return await audit.record(work.session, at=work.now, actor=actor.id, chat_id=chat.id if chat else None,
                              action=action, detail=detail, before=before, after=after)


def slot_of(part: ShiftPart) -> dict[str, Any]:
    """The audit's description of a part's slot (as the question's payload writes it)."""
    dumped = part.model_dump(mode="json", by_alias=True)
    return {k: dumped[k] for k in ("day", "shift", "role", "start", "end")}


async def settle(work: Work, roster: Roster, first: date, last: date, cause: str, event_id: int,
                 chats: Sequence[str] | None = None) -> dict[str, Coverage]:
    """Re-resolve the changed dates, and report any slot left empty to the admins (as the daily gap
    report does); returns the coverage of the dates concerned, per chat."""
    await roster.rebuild_changed(work.session, work.now, first, last, chats)
    start = max(work.now, day_start(first, work.config))
    end = day_start(last + timedelta(days=2), work.config)
    if end <= start:
        return {}
    found = await roster.check(work.session, start, end, chats)
    for chat_id, result in found.items():
        if result.gaps:
            text = GAP_NOTICE.format(chat=chat_name(work.directory, chat_id), cause=cause,
                                     lines="\n".join(gap_lines(result, work.config.tz)))
            await report_to_admins(work.session, work.directory, work.now, key=f"gaps-change:{event_id}:{chat_id}",
                                   text=text, chats_with_gaps=[chat_id])
    return found


async def stored_parts(work: Work, chat: ChatConfig, parts: Sequence[ShiftPart]) -> tuple[StoredPart, ...]:
    """Each changed part with its slot as the stored roster has it now (from now on)."""
    found = []
    for part in parts:
        start = max(part.start, work.now)
        slots = await read_slots(work.session, start, part.end, chats=[chat.id])
        found.append(StoredPart(part, start, tuple(slot_segments(slots, part.day, part.shift, part.role))))
    return tuple(found)
