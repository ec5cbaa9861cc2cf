"""Roster repositories: the definitions (templates, rotations, assignments, overrides, leave), the
materialised shifts and the roll-call records. Functions take an AsyncSession; no rules here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import upsert_insert
from store.models import (
    Counter,
    RosterAssignment,
    RosterLeave,
    RosterOverride,
    RosterRollCall,
    RosterRotation,
    RosterShift,
    RosterTemplate,
)

# The longest shift (a 24-hour shift, plus an hour of slack); bounds the lookup's index range.
MAX_SHIFT = timedelta(hours=25)
INSERT_BATCH = 2000
VERSION = "roster"  # the counters row bumped by every change of roster_shifts
DIRTY = "roster_changed"  # session.info flag: this transaction changed the roster


# -- definitions ---------------------------------------------------------------------------------


async def roster_chats(session: AsyncSession) -> list[str]:
    """Chats that have a roster (at least one shift template)."""
    result = await session.execute(select(RosterTemplate.chat_id).distinct().order_by(RosterTemplate.chat_id))
    return list(result.scalars())


async def has_roster(session: AsyncSession, chat_id: str) -> bool:
    result = await session.execute(select(RosterTemplate.id).where(RosterTemplate.chat_id == chat_id).limit(1))
    return result.first() is not None


async def templates(session: AsyncSession, chat_id: str) -> list[RosterTemplate]:
    result = await session.execute(
        select(RosterTemplate).where(RosterTemplate.chat_id == chat_id).order_by(RosterTemplate.id)
    )
    return list(result.scalars())


async def rotations(session: AsyncSession, chat_id: str) -> list[RosterRotation]:
    result = await session.execute(
        select(RosterRotation).where(RosterRotation.chat_id == chat_id).order_by(RosterRotation.id)
    )
    return list(result.scalars())


async def assignments(session: AsyncSession, chat_id: str | None, first: date | None = None,
                      last: date | None = None) -> list[RosterAssignment]:
    query = select(RosterAssignment).order_by(RosterAssignment.day, RosterAssignment.id)
    if chat_id is not None:
        query = query.where(RosterAssignment.chat_id == chat_id)
    if first is not None:
        query = query.where(RosterAssignment.day >= first)
    if last is not None:
        query = query.where(RosterAssignment.day <= last)
    return list((await session.execute(query)).scalars())


async def overrides(session: AsyncSession, chat_id: str | None, start: datetime | None = None,
                    end: datetime | None = None) -> list[RosterOverride]:
    query = select(RosterOverride).order_by(RosterOverride.id)
    if chat_id is not None:
        query = query.where(RosterOverride.chat_id == chat_id)
    if start is not None:
        query = query.where(RosterOverride.end_at > start)
    if end is not None:
        query = query.where(RosterOverride.start_at < end)
    return list((await session.execute(query)).scalars())


async def leaves(session: AsyncSession, start: datetime | None = None, end: datetime | None = None,
                 person_id: str | None = None) -> list[RosterLeave]:
    query = select(RosterLeave).order_by(RosterLeave.id)
    if start is not None:
        query = query.where(RosterLeave.end_at > start)
    if end is not None:
        query = query.where(RosterLeave.start_at < end)
    if person_id is not None:
        query = query.where(RosterLeave.person_id == person_id)
    return list((await session.execute(query)).scalars())


async def absent_at(session: AsyncSession, person_ids: Sequence[str], at: datetime) -> dict[str, str | None]:
    """Of these people, those on leave at `at`, each with the substitute the roster names for
    them then (an override that replaces them, in any chat), or None."""
    if not person_ids:
        return {}
    on_leave = select(RosterLeave.person_id).where(
        RosterLeave.person_id.in_(person_ids), RosterLeave.start_at <= at, RosterLeave.end_at > at
    )
    absent = {str(p) for p in (await session.execute(on_leave)).scalars()}
    if not absent:
        return {}
    covering = select(RosterOverride.replaces, RosterOverride.person_id).where(
        RosterOverride.replaces.in_(absent), RosterOverride.start_at <= at, RosterOverride.end_at > at
    ).order_by(RosterOverride.id.desc())
    substitutes: dict[str, str | None] = dict.fromkeys(absent)
    for replaced, substitute in (await session.execute(covering)).all():
        substitutes[str(replaced)] = substitutes[str(replaced)] or str(substitute)
    return substitutes


async def replace_definitions(session: AsyncSession, chat_id: str, new_templates: Sequence[RosterTemplate] | None,
                              new_rotations: Sequence[RosterRotation] | None) -> None:
    """A chat's shift templates and/or rotations, each replaced as a whole (an import is the full definition)."""
    if new_templates is not None:
        await session.execute(delete(RosterTemplate).where(RosterTemplate.chat_id == chat_id))
        session.add_all(new_templates)
    if new_rotations is not None:
        await session.execute(delete(RosterRotation).where(RosterRotation.chat_id == chat_id))
        session.add_all(new_rotations)
    await session.flush()


async def shift_names(session: AsyncSession) -> dict[str, set[str]]:
    """Shift names per chat, as in the database."""
    result = await session.execute(select(RosterTemplate.chat_id, RosterTemplate.name))
    names: dict[str, set[str]] = {}
    for chat_id, name in result.all():
        names.setdefault(chat_id, set()).add(name)
    return names


async def set_assignment(session: AsyncSession, assignment: RosterAssignment) -> None:
    """The people of one role for one shift and date; replaces an earlier assignment of that slot."""
    await session.execute(
        delete(RosterAssignment).where(
            RosterAssignment.chat_id == assignment.chat_id, RosterAssignment.day == assignment.day,
            RosterAssignment.shift == assignment.shift, RosterAssignment.role == assignment.role,
        )
    )
    session.add(assignment)
    await session.flush()


async def add(session: AsyncSession, row: RosterOverride | RosterLeave) -> None:
    session.add(row)
    await session.flush()


async def delete_leave(session: AsyncSession, leave_id: int) -> None:
    await session.execute(delete(RosterLeave).where(RosterLeave.id == leave_id))


# -- the materialised shifts -----------------------------------------------------------------------


async def replace_shifts(session: AsyncSession, chat_id: str, first: date, last: date,
                         rows: Sequence[dict[str, Any]]) -> None:
    """Swap in the resolved shifts of dates first..last (inclusive) for one chat."""
    await session.execute(
        delete(RosterShift).where(RosterShift.chat_id == chat_id, RosterShift.day >= first, RosterShift.day <= last)
    )
    for index in range(0, len(rows), INSERT_BATCH):
        await session.execute(insert(RosterShift), list(rows[index : index + INSERT_BATCH]))


async def bump_version(session: AsyncSession) -> None:
    """Mark the materialised roster as changed (lookup caches compare this number)."""
    await session.execute(update(Counter).where(Counter.name == VERSION).values(value=Counter.value + 1))
    session.info[DIRTY] = True
    # Seen by the engine's commit event, so this process's lookup caches drop the old roster at once.
    (await session.connection()).info[DIRTY] = True


async def version(session: AsyncSession) -> int:
    result = await session.execute(select(Counter.value).where(Counter.name == VERSION))
    return int(result.scalar_one_or_none() or 0)


def changed_in(session: AsyncSession) -> bool:
    """True when this session changed the roster and has not committed yet."""
    return bool(session.info.get(DIRTY))


async def rows_since(session: AsyncSession, chat_id: str, since: datetime) -> list[tuple[Any, ...]]:
    """(start, end, role, slot, person) of every row ending after `since`, by start (for a lookup index)."""
    result = await session.execute(
        select(RosterShift.start_at, RosterShift.end_at, RosterShift.role, RosterShift.slot, RosterShift.person_id)
        .where(RosterShift.chat_id == chat_id, RosterShift.end_at > since)
        .order_by(RosterShift.start_at)
    )
    return [tuple(row) for row in result.all()]


async def last_day(session: AsyncSession, chat_id: str) -> date | None:
    result = await session.execute(select(func.max(RosterShift.day)).where(RosterShift.chat_id == chat_id))
    value: date | None = result.scalar_one_or_none()
    return value


async def on_duty_at(session: AsyncSession, chat_id: str, at: datetime) -> list[tuple[str, str]]:
    """(role, person id) on duty in a chat at an instant, by slot: one bounded index range scan."""
    result = await session.execute(
        select(RosterShift.role, RosterShift.person_id)
        .where(
            RosterShift.chat_id == chat_id,
            RosterShift.start_at <= at,
            RosterShift.start_at > at - MAX_SHIFT,
            RosterShift.end_at > at,
        )
        .order_by(RosterShift.role, RosterShift.slot, RosterShift.start_at)
    )
    return [(row[0], row[1]) for row in result.all()]


async def shifts_between(session: AsyncSession, start: datetime, end: datetime, *, chat_id: str | None = None,
                         person_id: str | None = None) -> list[RosterShift]:
    """Rows overlapping [start, end), in time order."""
    query = select(RosterShift).where(
        RosterShift.start_at < end, RosterShift.start_at > start - MAX_SHIFT, RosterShift.end_at > start
    )
    if chat_id is not None:
        query = query.where(RosterShift.chat_id == chat_id)
    if person_id is not None:
        query = query.where(RosterShift.person_id == person_id)
    query = query.order_by(RosterShift.start_at, RosterShift.chat_id, RosterShift.role, RosterShift.slot)
    return list((await session.execute(query)).scalars())


async def shifts_on_days(session: AsyncSession, chat_id: str, first: date, last: date) -> list[RosterShift]:
    result = await session.execute(
        select(RosterShift)
        .where(RosterShift.chat_id == chat_id, RosterShift.day >= first, RosterShift.day <= last)
        .order_by(RosterShift.shift_start, RosterShift.role, RosterShift.slot, RosterShift.start_at)
    )
    return list(result.scalars())


async def shift_starts_between(session: AsyncSession, start: datetime, end: datetime
                               ) -> list[tuple[str, datetime]]:
    """(chat, shift start) of every shift beginning in (start, end]: the handovers due."""
    result = await session.execute(
        select(RosterShift.chat_id, RosterShift.shift_start)
        .where(RosterShift.start_at > start - MAX_SHIFT, RosterShift.shift_start > start,
               RosterShift.shift_start <= end)
        .distinct()
        .order_by(RosterShift.shift_start, RosterShift.chat_id)
    )
    return [(row[0], row[1]) for row in result.all()]


# -- roll calls ------------------------------------------------------------------------------------


async def create_roll_call(session: AsyncSession, *, chat_id: str, at: datetime, due_at: datetime,
                           people: Sequence[str], leaders: Sequence[str]) -> bool:
    """Record a roll call once per chat and time (any number of ticks or replicas). True if new."""
    values = {"chat_id": chat_id, "at": at, "due_at": due_at, "people": list(people), "leaders": list(leaders)}
    statement = upsert_insert(session, RosterRollCall).values(**values)
    result = await session.execute(statement.on_conflict_do_nothing(index_elements=["chat_id", "at"]))
    return bool(getattr(result, "rowcount", 0))


ROLL_CALL_ANSWERABLE = timedelta(hours=12)


async def open_roll_call(session: AsyncSession, chat_id: str, now: datetime) -> RosterRollCall | None:
    """The latest unanswered roll call of a chat in the last hours (a late 在 is still recorded, with its time)."""
    result = await session.execute(
        select(RosterRollCall)
        .where(RosterRollCall.chat_id == chat_id, RosterRollCall.answered_at.is_(None), RosterRollCall.at <= now,
               RosterRollCall.at > now - ROLL_CALL_ANSWERABLE)
        .order_by(RosterRollCall.at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def answer_roll_call(session: AsyncSession, roll_call_id: int, person_id: str, now: datetime) -> bool:
    result = await session.execute(
        update(RosterRollCall)
        .where(RosterRollCall.id == roll_call_id, RosterRollCall.answered_at.is_(None))
        .values(answered_by=person_id, answered_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def unanswered_due(session: AsyncSession, now: datetime) -> list[RosterRollCall]:
    """Roll calls past their answer time with no answer and no escalation yet."""
    result = await session.execute(
        select(RosterRollCall)
        .where(RosterRollCall.due_at <= now, RosterRollCall.answered_at.is_(None),
               RosterRollCall.escalated_at.is_(None))
        .order_by(RosterRollCall.at)
    )
    return list(result.scalars())


async def mark_escalated(session: AsyncSession, roll_call_id: int, now: datetime) -> bool:
    result = await session.execute(
        update(RosterRollCall)
        .where(RosterRollCall.id == roll_call_id, RosterRollCall.escalated_at.is_(None))
        .values(escalated_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def roll_calls(session: AsyncSession, chat_id: str | None = None) -> list[RosterRollCall]:
    query = select(RosterRollCall).order_by(RosterRollCall.at)
    if chat_id is not None:
        query = query.where(RosterRollCall.chat_id == chat_id)
    return list((await session.execute(query)).scalars())
