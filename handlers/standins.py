"""AB角: a person the bot would @-mention who is on leave is replaced by their stand-in.

The stand-in is the substitute the roster names for that time (an override that replaces the
person), else the person's configured deputy (people[].deputy). The notice says so in a line of
its own, so nobody wonders why someone else was called. Applied to every reply and notice that
@-mentions people (bot/dispatch.py, handlers/reminders.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domain.directory import Directory
from store import roster as roster_store

STAND_IN = "（{absent}请假，由{deputy}代为接收）"
NO_STAND_IN = "（{absent}请假，未指定AB角，请管理员安排）"


async def with_stand_ins(
    session: AsyncSession, at: datetime, directory: Directory, text: str, mentions: Sequence[str]
) -> tuple[str, tuple[str, ...]]:
    """The text and mentions with everyone on leave replaced by their stand-in (and a note)."""
    if not mentions:
        return text, tuple(mentions)
    absent = await roster_store.absent_at(session, list(mentions), at)
    if not absent:
        return text, tuple(mentions)
    people: list[str] = []
    notes: list[str] = []
    for person in mentions:
        if person not in absent:
            people.append(person)
            continue
        deputy = _stand_in(person, absent, directory)
        if deputy is None:
            people.append(person)  # nobody to call instead: still tell the person, and say so
            notes.append(NO_STAND_IN.format(absent=_name(person, directory)))
            continue
        people.append(deputy)
        notes.append(STAND_IN.format(absent=_name(person, directory), deputy=_name(deputy, directory)))
    return "\n".join([text, *notes]), tuple(dict.fromkeys(people))


def _stand_in(person: str, absent: dict[str, str | None], directory: Directory) -> str | None:
    """The roster's substitute, else the configured deputy — unless that one is away too."""
    named = absent.get(person)
    if named is not None and named not in absent:
        return named
    config = directory.people.get(person)
    deputy = config.deputy if config else None
    return deputy if deputy is not None and deputy not in absent else None


def _name(person: str, directory: Directory) -> str:
    config = directory.people.get(person)
    return config.name if config else person
