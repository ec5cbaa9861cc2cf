"""The roster as stored, by slot: what the roster's changes are confirmed from (in chat, by the
operations in handlers/ops/roster*.py, and by an import's review), never from the request itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocab import Role
from handlers.roster_rules import Segment
from handlers.roster_service import segment_of
from store import roster as store


@dataclass(frozen=True)
class Slot:
    """One role in one shift of one chat."""

    chat_id: str
    day: date
    shift: str
    start: datetime
    end: datetime
    role: Role


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


def slot_segments(slots: dict[Slot, list[Segment]], day: date, shift: str, role: Role) -> list[Segment]:
    """The segments of one role of one shift among `slots` (none: nobody holds it)."""
    return next((v for k, v in slots.items() if (k.day, k.shift, k.role) == (day, shift, role)), [])
