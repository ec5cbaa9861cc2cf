"""The 交接班 (handover) posted at each shift change: who takes over, who hands over, and the chat's
open items, most urgent first. Run by the roster's handover module (bot/roster_jobs.py), once per
chat and shift: each shift start is an occurrence claimed in engine_runs by the posting transaction.

A handover found more than `HANDOVER_GRACE` after its shift began (the bot was down at the
change, or has just been started for the first time) is posted once, marked 补发, and names the
people on duty at the moment it is posted: by then a 代班 or a partial override may have changed
who holds the shift, and the outgoing people are no longer the ones handing over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocab import FINAL_STATUSES, Role
from handlers.engine import Occurrence, claim
from handlers.items import public_summary
from handlers.policy import next_due, remaining_text
from handlers.roster_service import Roster, segment_of
from handlers.roster_view import ShiftView, contact, day_label, group_shifts, name_of, span, when_label
from store import engine_runs, outbox
from store import items as item_store
from store import roster as store
from store.models import Item

HANDOVER = "【交接班】{day} {shift}（{span}）开始"
HANDOVER_LATE = "【交接班】{day} {shift}（{span}）已开始（补发）"
HANDOVER_LEADERS = "带班领导：{people}"
HANDOVER_OFFICERS = "值班员：{people}"
HANDOVER_FROM = "交班：{people}"
HANDOVER_ITEMS = "待办事项 {count} 项（最紧急在前）："
HANDOVER_ITEM = "#{n}【{grade}】{status}{clock}｜{summary}"
HANDOVER_MORE = "……另有 {count} 项，请发送“待办”查看。"
HANDOVER_NO_ITEMS = "当前没有待办事项。"
HANDOVER_CLOSE = "请接班人员查看待办，按时限处置。"

HANDOVER_MODULE = "handover"  # the engine module's name, and its occurrences' in engine_runs
ITEMS_SHOWN = 10
HANDOVER_GRACE = timedelta(minutes=10)
SUMMARY_CHARS = 24


async def post_handovers(session: AsyncSession, roster: Roster, now: datetime) -> tuple[int, int]:
    """A 交接班 for every shift that has begun and is not over yet, once per chat and shift.
    Returns (posted, of which late)."""
    running = await store.shifts_between(session, now, now + timedelta(microseconds=1))
    shifts = [Occurrence(at=start, key=f"{chat_id}:{start.isoformat()}", late=now - start > HANDOVER_GRACE)
              for chat_id, start in dict.fromkeys((r.chat_id, r.shift_start) for r in running)
              if chat_id in roster.directory.chats]
    done = await engine_runs.done_keys(session, HANDOVER_MODULE, (s.key for s in shifts))
    posted = late = 0
    for shift in shifts:
        if shift.key in done:
            continue
        chat_id = shift.key.split(":", 1)[0]
        if await _post_handover(session, roster, chat_id, shift, now):
            posted += 1
            late += int(shift.late)
    return posted, late


async def _post_handover(session: AsyncSession, roster: Roster, chat_id: str, shift: Occurrence,
                         now: datetime) -> bool:
    shift_start = shift.at
    at = now if shift.late else shift_start
    rows = await store.shifts_between(session, at, at + timedelta(microseconds=1), chat_id=chat_id)
    incoming = [v for v in group_shifts(segment_of(r) for r in rows) if v.start == shift_start]
    if not incoming or not await claim(session, HANDOVER_MODULE, shift, now):
        return False
    outgoing = [] if shift.late else [segment_of(r) for r in await store.shifts_between(
        session, shift_start - timedelta(microseconds=1), shift_start, chat_id=chat_id) if r.end_at == shift_start]
    text, mentions = await _handover_text(session, roster, chat_id, incoming[0], outgoing, now, at)
    key = f"handover:{chat_id}:{shift_start.isoformat()}"
    return await outbox.enqueue(session, key=key, chat_id=chat_id, text=text, mentions=mentions, now=now)


async def _handover_text(session: AsyncSession, roster: Roster, chat_id: str, view: ShiftView,
                         outgoing: list[Any], now: datetime, at: datetime) -> tuple[str, list[str]]:
    """The handover of `view`, naming its people on duty at `at` (the shift's start, or now when late)."""
    tz, directory = roster.config.tz, roster.directory
    leaders = list(dict.fromkeys(s.person for s in view.of(Role.DUTY_LEADER) if s.start <= at < s.end))
    officers = list(dict.fromkeys(s.person for s in view.of(Role.DUTY_OFFICER) if s.start <= at < s.end))
    header = HANDOVER if at == view.start else HANDOVER_LATE
    lines = [header.format(day=day_label(view.day), shift=view.name, span=span(view.start, view.end, tz)),
             HANDOVER_LEADERS.format(people="、".join(contact(p, directory) for p in leaders) or "（空缺）"),
             HANDOVER_OFFICERS.format(people="、".join(contact(p, directory) for p in officers) or "（空缺）")]
    if outgoing:
        names = "、".join(dict.fromkeys(f"{name_of(s.person, directory)}（{s.role.value}）" for s in outgoing))
        lines.append(HANDOVER_FROM.format(people=names))
    items = await _open_items(session, roster, chat_id)
    if items:
        lines.append(HANDOVER_ITEMS.format(count=len(items)))
        for item in items[:ITEMS_SHOWN]:
            due = _urgency(item)
            clock = f"｜{due[0]}截止 {when_label(due[1], tz)}（{remaining_text(due[1], now)}）" if due else ""
            summary = public_summary(item)  # 涉密: the authorised summary only (001 第十七条)
            summary = summary if len(summary) <= SUMMARY_CHARS else summary[: SUMMARY_CHARS - 1] + "…"
            lines.append(HANDOVER_ITEM.format(n=item.number, grade=item.grade or "未定级", status=item.status,
                                              clock=clock, summary=summary))
        if len(items) > ITEMS_SHOWN:
            lines.append(HANDOVER_MORE.format(count=len(items) - ITEMS_SHOWN))
    else:
        lines.append(HANDOVER_NO_ITEMS)
    lines.append(HANDOVER_CLOSE)
    return "\n".join(lines), list(dict.fromkeys([*officers, *leaders]))


def _urgency(item: Item) -> tuple[str, datetime] | None:
    return next_due(item.grade_due_at, item.grade is not None, item.pass_on_due_at,
                    item.acknowledged_at is not None, item.response_due_at, item.responded_at is not None)


async def _open_items(session: AsyncSession, roster: Roster, chat_id: str) -> list[Item]:
    """The chat's open items, as its 待办 lists them: its unit and the units below (all for coordinators)."""
    chat = roster.directory.chats[chat_id]
    if chat.coordinators or chat.unit is None:
        found = await item_store.open_all(session)
    else:
        scope = [chat.unit]
        for unit_id in scope:  # grows while iterating: a breadth-first walk of the unit tree
            scope += [u.id for u in roster.config.units if u.parent == unit_id and u.id not in scope]
        found = await item_store.open_for_units(session, scope)
        found += [i for i in await item_store.open_reported_in_chat(session, chat_id) if i not in found]
    found = [i for i in found if i.status not in FINAL_STATUSES]
    far = datetime.max.replace(tzinfo=roster.config.tz)
    found.sort(key=lambda i: ((_urgency(i) or ("", far))[1], i.number))
    return found
