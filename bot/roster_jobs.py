"""Roster jobs, run on every scheduler tick: keep the roster resolved up to the horizon, post the
交接班 at each shift change, remind tomorrow's people, report the gaps of the coming days to the
admins, and hold the 点名 (roll call) with its escalation.

Each job reloads what it needs from the database, works out what is due at `runtime.clock.now()`
and queues messages in the outbox under deterministic idempotency keys, so any number of ticks or
replicas post each message once, and a tick that comes late (after downtime) still posts what is
due — but never a handover for a shift that is already over, a reminder for a day that has begun,
or a roll call whose answer time has passed.

A handover found more than `HANDOVER_GRACE` after its shift began (the bot was down at the
change, or has just been started for the first time) is posted once, marked 补发, and names the
people on duty at the moment it is posted: by then a 代班 or a partial override may have changed
who holds the shift, and the outgoing people are no longer the ones handing over.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from domain.vocab import FINAL_STATUSES, Role
from handlers.calendar import weekday_name
from handlers.items import public_summary
from handlers.policy import next_due, remaining_text
from handlers.roster_gaps import report_to_admins
from handlers.roster_service import Roster, segment_of
from handlers.roster_view import (
    ShiftView,
    contact,
    coverage_lines,
    day_label,
    group_shifts,
    name_of,
    span,
    when_label,
)
from store import audit, outbox
from store import items as item_store
from store import outbox as outbox_store
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
REMIND = "【值班提醒】{name}：您明天（{day} {weekday}）值班："
REMIND_LINE = "{shift} {span} {role}{chat}"
REMIND_CLOSE = "如需调整，请发送“换班 @对方 日期班次”或“请假 日期”。"
GAPS = "【排班缺口】未来{days}天（{start}起）检查结果："
GAPS_CLOSE = "请补排：排班 日期班次 值班员|带班领导 @某人；或运行 `dutybot roster check` 查看。"
ROLL_CALL = "【点名】请值班员{people}于{due}前回复“在”。"
ROLL_CALL_ESCALATE = "【点名未应答】值班员{people}未于{due}前回复“在”（{time}点名），请带班领导{leaders}核实值班情况。"
ROLL_CALL_NO_LEADER = ("【点名未应答】值班员{people}未于{due}前回复“在”（{time}点名）。"
                       "当班无带班领导，请管理员核实值班情况。")

log = logging.getLogger(__name__)
BOT = "bot"
ITEMS_SHOWN = 10
HANDOVER_GRACE = timedelta(minutes=10)
SUMMARY_CHARS = 24


async def run_roster_jobs(runtime: Runtime) -> None:
    """One tick of every roster job."""
    roster = Roster.build(runtime.config, runtime.directory)
    now = runtime.clock.now()
    async with runtime.db.transaction() as session:
        await roster.extend_horizon(session, now)
    async with runtime.db.transaction() as session:
        if runtime.config.roster.handover:
            await post_handovers(session, roster, now)
        if runtime.config.roster.remind:
            await remind_tomorrow(session, roster, now)
    async with runtime.db.transaction() as session:
        await report_gaps(session, roster, now)
    async with runtime.db.transaction() as session:
        await call_roll(session, roster, now)
        await escalate_roll_calls(session, roster, now)


def add_roster_jobs(scheduler: Any, runtime: Runtime) -> None:
    scheduler.add_job(run_roster_jobs, "interval", seconds=30, id="roster", args=[runtime], max_instances=1,
                      coalesce=True, misfire_grace_time=30)


async def _key_exists(session: AsyncSession, key: str) -> bool:
    return await outbox_store.key_exists(session, key)


def _local(roster: Roster, when: datetime) -> datetime:
    return when.astimezone(roster.config.tz)


# -- 交接班 -------------------------------------------------------------------------------------------------


async def post_handovers(session: AsyncSession, roster: Roster, now: datetime) -> int:
    """A 交接班 for every shift that has begun and is not over yet, once per chat and shift."""
    running = await store.shifts_between(session, now, now + timedelta(microseconds=1))
    posted = 0
    for chat_id, shift_start in dict.fromkeys((r.chat_id, r.shift_start) for r in running):
        key = f"handover:{chat_id}:{shift_start.isoformat()}"
        if chat_id not in roster.directory.chats or await _key_exists(session, key):
            continue
        late = now - shift_start > HANDOVER_GRACE
        at = now if late else shift_start
        rows = await store.shifts_between(session, at, at + timedelta(microseconds=1), chat_id=chat_id)
        incoming = [v for v in group_shifts(segment_of(r) for r in rows) if v.start == shift_start]
        if not incoming:
            continue
        outgoing = [] if late else [segment_of(r) for r in await store.shifts_between(
            session, shift_start - timedelta(microseconds=1), shift_start, chat_id=chat_id) if r.end_at == shift_start]
        text, mentions = await _handover_text(session, roster, chat_id, incoming[0], outgoing, now, at)
        if await outbox.enqueue(session, key=key, chat_id=chat_id, text=text, mentions=mentions, now=now):
            posted += 1
    return posted


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


# -- tomorrow's people ----------------------------------------------------------------------------------------


async def remind_tomorrow(session: AsyncSession, roster: Roster, now: datetime) -> int:
    """After the reminder time, each person on duty tomorrow is reminded once (in their first shift's chat)."""
    local = _local(roster, now)
    if local.time() < roster.config.roster.remind_time:
        return 0
    tomorrow = local.date() + timedelta(days=1)
    by_person: dict[str, list[tuple[str, ShiftView, Role]]] = {}
    for chat_id in await store.roster_chats(session):
        if chat_id not in roster.directory.chats:
            continue
        rows = await store.shifts_on_days(session, chat_id, tomorrow, tomorrow)
        for view in group_shifts(segment_of(r) for r in rows):
            for role in (Role.DUTY_LEADER, Role.DUTY_OFFICER):
                for person in view.person_ids(role):
                    by_person.setdefault(person, []).append((chat_id, view, role))
    order = {c.id: i for i, c in enumerate(roster.config.chats)}
    posted = 0
    for person, shifts in by_person.items():
        key = f"roster-remind:{person}:{tomorrow.isoformat()}"
        shifts.sort(key=lambda s: (s[1].start, order.get(s[0], len(order))))
        home = shifts[0][0]
        lines = [REMIND.format(name=name_of(person, roster.directory), day=day_label(tomorrow),
                               weekday=weekday_name(tomorrow))]
        # The same shift in several chats (one duty team on two platforms) is one line.
        merged: dict[tuple[datetime, Role, str], list[str]] = {}
        spans: dict[tuple[datetime, Role, str], str] = {}
        for chat_id, view, role in shifts:
            mine = [s for s in view.of(role) if s.person == person]
            merged.setdefault((view.start, role, view.name), []).append(chat_id)
            spans[(view.start, role, view.name)] = span(mine[0].start, mine[-1].end, roster.config.tz)
        for (_, role, name), chats in merged.items():
            where = "" if home in chats else "（" + "、".join(roster.directory.chats[c].name for c in chats) + "）"
            lines.append(REMIND_LINE.format(shift=name, span=spans[(_, role, name)], role=role.value, chat=where))
        lines.append(REMIND_CLOSE)
        if await outbox.enqueue(session, key=key, chat_id=home, text="\n".join(lines), mentions=[person], now=now):
            posted += 1
    return posted


# -- gaps of the coming days ---------------------------------------------------------------------------------


async def report_gaps(session: AsyncSession, roster: Roster, now: datetime) -> int:
    """Once a day after the report time: the gaps (and unknown day types, unreachable people) of the next days."""
    settings = roster.config.roster
    local = _local(roster, now)
    if local.time() < settings.gap_report_time:
        return 0
    today = local.date()
    targets = [c.id for c in roster.directory.admin_chats()]
    keys = {chat: f"gaps:{today.isoformat()}:{chat}" for chat in targets}
    if targets and all([await _key_exists(session, k) for k in keys.values()]):
        return 0
    chats = await store.roster_chats(session)
    if not chats:
        return 0
    results = await roster.check(session, now, now + timedelta(days=settings.gap_report_days), chats)
    problems = {c: r for c, r in results.items() if r.gaps or r.unknown_days or r.unreachable or r.strains}
    if not problems:
        return 0
    lines, _ = coverage_lines(problems, roster.directory, roster.config.tz)
    text = "\n".join([GAPS.format(days=settings.gap_report_days, start=when_label(now, roster.config.tz)),
                      *lines, GAPS_CLOSE])
    return await report_to_admins(session, roster.directory, now, key=f"gaps:{today.isoformat()}", text=text,
                                  chats_with_gaps=[c for c, r in problems.items() if r.gaps])


# -- 点名 -------------------------------------------------------------------------------------------------------


def _roll_call_instants(roster: Roster, now: datetime) -> list[datetime]:
    """Today's (and, just after midnight, yesterday's) roll-call times whose answer time is still running."""
    settings = roster.config.roster
    local = _local(roster, now)
    window = timedelta(minutes=settings.roll_call_minutes)
    found = []
    for day in (local.date() - timedelta(days=1), local.date()):
        for at_time in settings.roll_call_times:
            at = datetime.combine(day, at_time, tzinfo=roster.config.tz)
            if at <= now < at + window:
                found.append(at)
    return found


async def call_roll(session: AsyncSession, roster: Roster, now: datetime) -> int:
    posted = 0
    minutes = timedelta(minutes=roster.config.roster.roll_call_minutes)
    tz = roster.config.tz
    for at in _roll_call_instants(roster, now):
        for chat_id in await store.roster_chats(session):
            if chat_id not in roster.directory.chats:
                continue
            on_duty = await store.on_duty_at(session, chat_id, at)
            officers = list(dict.fromkeys(p for role, p in on_duty if role == Role.DUTY_OFFICER.value))
            leaders = list(dict.fromkeys(p for role, p in on_duty if role == Role.DUTY_LEADER.value))
            if not officers:
                continue  # nobody to call: the gap report names the gap
            created = await store.create_roll_call(session, chat_id=chat_id, at=at, due_at=at + minutes,
                                                   people=officers, leaders=leaders)
            if not created:
                continue
            text = ROLL_CALL.format(people="、".join(name_of(p, roster.directory) for p in officers),
                                    due=f"{(at + minutes).astimezone(tz):%H:%M}")
            await outbox.enqueue(session, key=f"rollcall:{chat_id}:{at.isoformat()}", chat_id=chat_id, text=text,
                                 mentions=officers, now=now)
            posted += 1
    return posted


async def escalate_roll_calls(session: AsyncSession, roster: Roster, now: datetime) -> int:
    """Roll calls nobody answered in time: @ the 带班领导 once, and keep it in the audit trail."""
    tz = roster.config.tz
    posted = 0
    for call in await store.unanswered_due(session, now):
        if not await store.mark_escalated(session, call.id, now):
            continue
        leaders = [str(p) for p in call.leaders]
        template = ROLL_CALL_ESCALATE if leaders else ROLL_CALL_NO_LEADER
        text = template.format(
            people="、".join(name_of(str(p), roster.directory) for p in call.people),
            due=f"{call.due_at.astimezone(tz):%H:%M}", time=f"{call.at.astimezone(tz):%H:%M}",
            leaders="、".join(name_of(p, roster.directory) for p in leaders))
        mentions = leaders or [p.id for p in roster.directory.people_with(Role.ADMIN)]
        await outbox.enqueue(session, key=f"rollcall-escalate:{call.chat_id}:{call.at.isoformat()}",
                             chat_id=call.chat_id, text=text, mentions=mentions, now=now)
        await audit.record(session, at=now, actor=BOT, chat_id=call.chat_id, action="roll_call_unanswered",
                           detail=text, after={"roll_call": call.id, "people": list(call.people)})
        posted += 1
    return posted
