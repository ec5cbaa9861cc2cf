"""What a roster import does to the roster, read back from the stored roster: the CLI's
排班/替班/请假 rows are confirmed as the roster will actually be, like the same changes in chat.

Runs inside the import's transaction, after the batch is written and the roster re-resolved, so
it sees exactly what the import leaves behind. A 排班 or 替班 row that puts someone on duty while
they are on leave (a leave already stored, or one in the same file) is an error of that row: the
import is refused as a whole, as for any other bad row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from domain.directory import Directory
from handlers.ops.roster_slots import Slot, read_slots
from handlers.ops.roster_text import leave_span, people_between
from handlers.roster_import import ImportBatch, ImportedAssignment, ImportedLeave, ImportedOverride, RowError
from handlers.roster_rules import Segment
from handlers.roster_service import day_start
from handlers.roster_view import day_label, name_of, span, when_label
from store import roster as store

ON_LEAVE = "{name} {span} 请假{reason}，不能排班。请删除该行，或先取消请假。"
ASSIGNED = "第{row}行 排班：{chat} {day} {shift} {role}：{people}"
DIFFERS = "（与导入行不同：该时段另有替班或请假）"
OVERRIDDEN = "第{row}行 替班：{chat} {new} 替 {old}"
OVERRIDE_NONE = "第{row}行 替班：{old}在 {span} 没有{chat}的班次，未作调整。"
LEAVE = "第{row}行 请假：{name} {span}"
LEAVE_NONE = "第{row}行 请假：{name} {span}，期间没有班次。"
SLOT_LINE = "  {chat} {day} {shift} {role}：{people}"
NOBODY = "无人可顶替，请补排（见 dutybot roster check）"
MORE = "……另有 {count} 项调整，可用 dutybot roster show 查看。"
SHOWN = 30  # lines of confirmation at most: an import of a year's overrides must stay readable


@dataclass
class Review:
    errors: list[RowError] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def confirmation(self) -> list[str]:
        if len(self.lines) <= SHOWN:
            return self.lines
        return [*self.lines[:SHOWN], MORE.format(count=len(self.lines) - SHOWN)]


@dataclass(frozen=True)
class Reviewer:
    session: AsyncSession
    directory: Directory
    tz: ZoneInfo
    now: datetime

    def _chat(self, chat_id: str) -> str:
        chat = self.directory.chats.get(chat_id)
        return chat.name if chat is not None else chat_id

    def _name(self, person_id: str) -> str:
        return name_of(person_id, self.directory)

    async def leave_error(self, row: int, person: str, start: datetime, end: datetime) -> RowError | None:
        leaves = await store.leaves(self.session, start, end, person_id=person)
        if not leaves:
            return None
        text, _ = leave_span(leaves[0], self.tz)
        reason = f"（{leaves[0].reason}）" if leaves[0].reason else ""
        return RowError(row, ON_LEAVE.format(name=self._name(person), span=text, reason=reason))

    async def assignment(self, review: Review, a: ImportedAssignment) -> None:
        slots = await read_slots(self.session, *self._day_window(a), chats=[a.chat])
        found = [(slot, segs) for slot, segs in slots.items()
                 if (slot.day, slot.shift, slot.role) == (a.day, a.shift, a.role)]
        if not found:
            return  # a shift the calendar does not hold that day: validate() reports such rows
        slot, segments = found[0]
        if slot.end <= self.now:
            return  # a shift already over: nothing follows from it
        for person in a.people:
            error = await self.leave_error(a.row, person, max(slot.start, self.now), slot.end)
            if error is not None:
                review.errors.append(error)
        people = people_between(self.directory, self.tz, segments, slot.start, slot.end)
        line = ASSIGNED.format(row=a.row, day=day_label(a.day), shift=a.shift, role=a.role.value,
                               chat=self._chat(a.chat), people=people)
        if {s.person for s in segments} != set(a.people):
            line += DIFFERS
        review.lines.append(line)

    def _day_window(self, a: ImportedAssignment) -> tuple[datetime, datetime]:
        # A shift of day D starts on D and may run into D+1.
        start = day_start(a.day, self.directory.config)
        return start, start + timedelta(days=2)

    async def override(self, review: Review, o: ImportedOverride) -> None:
        error = await self.leave_error(o.row, o.person, max(o.start, self.now), o.end)
        if error is not None:
            review.errors.append(error)
        slots = await read_slots(self.session, o.start, o.end, chats=[o.chat], person_id=o.person)
        window = f"{when_label(o.start, self.tz)}—{when_label(o.end, self.tz)}"
        if not slots:
            review.lines.append(OVERRIDE_NONE.format(row=o.row, old=self._name(o.replaces), span=window,
                                                     chat=self._chat(o.chat)))
            return
        review.lines.append(OVERRIDDEN.format(row=o.row, new=self._name(o.person), old=self._name(o.replaces),
                                              chat=self._chat(o.chat)))
        review.lines += self._slot_lines(slots, o.start, o.end)

    def _slot_lines(self, slots: dict[Slot, list[Segment]], start: datetime, end: datetime) -> list[str]:
        lines = []
        for slot, segments in sorted(slots.items(), key=lambda pair: (pair[0].start, pair[0].chat_id)):
            lo, hi = max(slot.start, start), min(slot.end, end)
            held = [s for s in segments if s.start < hi and lo < s.end]
            people = people_between(self.directory, self.tz, segments, lo, hi) if held else NOBODY
            lines.append(SLOT_LINE.format(day=day_label(slot.day), shift=self._shift_part(slot, lo, hi),
                                          role=slot.role.value, chat=self._chat(slot.chat_id), people=people))
        return lines

    def _shift_part(self, slot: Slot, lo: datetime, hi: datetime) -> str:
        """"夜班 17:30—次日08:30", or the part a change covers: "夜班（其中 11月24日 00:00—08:30）"."""
        if (lo, hi) == (slot.start, slot.end):
            return f"{slot.shift} {span(lo, hi, self.tz)}"
        return f"{slot.shift}（其中 {when_label(lo, self.tz)}—{span(lo, hi, self.tz).split('—', 1)[1]}）"

    async def leave(self, review: Review, v: ImportedLeave, before: dict[Slot, list[Segment]]) -> None:
        window = f"{when_label(v.start, self.tz)} 至 {when_label(v.end, self.tz)}"
        if not before:
            review.lines.append(LEAVE_NONE.format(row=v.row, name=self._name(v.person), span=window))
            return
        review.lines.append(LEAVE.format(row=v.row, name=self._name(v.person), span=window))
        after = await read_slots(self.session, max(v.start, self.now), v.end)
        review.lines += self._slot_lines({slot: after.get(slot, []) for slot in before}, v.start, v.end)


async def slots_before(session: AsyncSession, batch: ImportBatch, now: datetime
                       ) -> dict[int, dict[Slot, list[Segment]]]:
    """For each leave row, the stored slots its person holds during it, read before the import
    (after it, the person is no longer on them: the confirmation names who took each over)."""
    found: dict[int, dict[Slot, list[Segment]]] = {}
    for v in batch.leaves:
        if v.end > now:
            found[v.row] = await read_slots(session, max(v.start, now), v.end, person_id=v.person)
    return found


async def review_import(reviewer: Reviewer, batch: ImportBatch, before: dict[int, dict[Slot, list[Segment]]]
                        ) -> Review:
    """Errors (someone put on duty while on leave) and the confirmation lines, in file order.
    Changes wholly in the past are not confirmed (nothing can follow from them)."""
    review = Review()
    changes: list[tuple[int, ImportedAssignment | ImportedOverride | ImportedLeave]] = [
        *((a.row, a) for a in batch.assignments), *((o.row, o) for o in batch.overrides if o.end > reviewer.now),
        *((v.row, v) for v in batch.leaves if v.end > reviewer.now),
    ]
    for _, change in sorted(changes, key=lambda pair: pair[0]):
        if isinstance(change, ImportedAssignment):
            await reviewer.assignment(review, change)
        elif isinstance(change, ImportedOverride):
            await reviewer.override(review, change)
        else:
            await reviewer.leave(review, change, before.get(change.row, {}))
    return review
