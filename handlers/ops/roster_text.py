"""Wording the roster's changes share wherever they are told: the audit rows' details and the
admins' gap notice written by the operations, the chat confirmations, and an import's review.
Pure functions of the stored shifts, the directory and the timezone."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.dialogues import ShiftPart
from domain.directory import Directory
from handlers.ops.roster import LeaveSpan
from handlers.roster_rules import Coverage, Segment
from handlers.roster_view import ShiftView, day_label, name_of, people_text, span, when_label
from store.models import RosterLeave

# One changed part: "11月25日 白班 08:30—17:30 值班员：赵敏 → 孙丽".
SWAP_LINE = "{day} {shift} {span} {role}：{old} → {new}"
GAP_LINE = "{span} {role}：{reason}"
VACANT = "空缺"


def chat_name(directory: Directory, chat_id: str) -> str:
    chat = directory.chats.get(chat_id)
    return chat.name if chat else chat_id


def part_line(part: ShiftPart, directory: Directory, tz: ZoneInfo, new: str | None = None) -> str:
    """One changed part: as asked (new=None: the taker), or with who the stored roster now has."""
    return SWAP_LINE.format(day=day_label(part.day), shift=part.shift, span=span(part.start, part.end, tz),
                            role=part.role.value, old=name_of(part.giver, directory),
                            new=name_of(part.taker, directory) if new is None else new)


def leave_span(leave: RosterLeave | LeaveSpan, tz: ZoneInfo) -> tuple[str, str]:
    """"11月25日至11月27日" for whole days (else the times), and the first date as a 销假 argument."""
    start, end = leave.start_at.astimezone(tz), leave.end_at.astimezone(tz)
    first = start.date()
    if start.time() == time(0) and end.time() == time(0):
        last = end.date() - timedelta(days=1)
        text = day_label(first) + (f"至{day_label(last)}" if last > first else "")
    else:
        text = f"{when_label(start, tz)} 至 {when_label(end, tz)}"
    return text, day_label(first)


def people_between(directory: Directory, tz: ZoneInfo, segments: list[Segment] | tuple[Segment, ...],
                   start: datetime, end: datetime) -> str:
    """Who holds a slot in [start, end), from the stored segments: "孙丽", "赵敏（至20:00）、孙丽（20:00起）"."""
    inside = [s for s in segments if s.start < end and start < s.end]
    if not inside:
        return VACANT
    clipped = [replace(s, start=max(s.start, start), end=min(s.end, end)) for s in inside]
    view = ShiftView(inside[0].day, inside[0].shift, start, end, inside[0].provisional, {inside[0].role: clipped})
    return people_text(view, inside[0].role, directory, tz, phones=False)


def holders_between(segments: list[Segment] | tuple[Segment, ...], start: datetime, end: datetime) -> list[str]:
    """The people holding a slot in [start, end) (to @-mention), in order."""
    return list(dict.fromkeys(s.person for s in segments if s.start < end and start < s.end))


def gap_lines(result: Coverage, tz: ZoneInfo) -> list[str]:
    return [GAP_LINE.format(span=f"{when_label(g.start, tz)}—{when_label(g.end, tz)}", role=g.role.value,
                            reason=g.reason) for g in result.gaps]
