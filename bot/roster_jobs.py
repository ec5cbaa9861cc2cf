"""Roster jobs as engine modules (handlers/engine.py): keep the roster resolved up to the horizon,
post the 交接班 at each shift change, remind tomorrow's people, report the gaps of the coming days
to the admins, and hold the 点名 (roll call) with its escalation.

Each module reloads what it needs from the database and works out what is due at the cycle's time.
The daily ones (the reminder at `remind_time`, the gap report at `gap_report_time`, the roll calls
at `roll_call_times`) and the handover of each shift are occurrences claimed in engine_runs by the
transaction that posts them, so any number of cycles or replicas post each once, and a cycle that
comes late (after downtime) still posts what is due — but never a handover for a shift that is
already over, a reminder for a day that has begun, or a roll call whose answer time has passed
(each occurrence expires then). The outbox's idempotency keys stay as a second guard.
The handover's text and its 补发 rule are in bot/roster_handover.py.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.roster_handover import HANDOVER_MODULE, post_handovers
from bot.runtime import Runtime
from domain.config import Config, RosterSection
from domain.vocab import Role
from handlers.calendar import weekday_name
from handlers.engine import (
    CycleResult,
    EngineModule,
    Occurrence,
    daily,
    run_cycles,
    same_day,
    take_due,
    within,
)
from handlers.ops.base import Work
from handlers.roster_gaps import report_to_admins
from handlers.roster_service import Roster, segment_of
from handlers.roster_view import (
    ShiftView,
    coverage_lines,
    day_label,
    group_shifts,
    name_of,
    span,
    when_label,
)
from store import audit, outbox
from store import roster as store

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


# Roster edits (an import, a 代班) show in the handovers within this; a shift's start is kept exactly
# by the module's wish to run then (CycleResult.next_at).
ROSTER_POLL = timedelta(seconds=30)
# The daily jobs run at their times (next_at); this poll only covers a clock that jumps.
DAILY_POLL = timedelta(minutes=10)


async def run_roster_jobs(runtime: Runtime) -> None:
    """One cycle of every roster module, each in its own transaction (as the engine runs them)."""
    def work_for(session: AsyncSession) -> Work:
        return Work(session=session, config=runtime.config, directory=runtime.directory, duty=runtime.duty,
                    now=runtime.clock.now())

    for module in roster_modules(runtime.config):
        await run_cycles(runtime.db, module, work_for)


def roster_modules(config: Config) -> list[EngineModule]:
    """The roster's engine modules, as the config turns them on (the horizon always)."""
    modules: list[EngineModule] = [Horizon()]
    if config.roster.handover:
        modules.append(Handovers())
    if config.roster.remind:
        modules.append(RemindTomorrow())
    modules += [GapReport(), RollCall()]
    return modules


def _roster(work: Work) -> Roster:
    return Roster.build(work.config, work.directory)


class Horizon:
    """Keep every chat's roster resolved up to the horizon as days pass."""

    name = "roster-horizon"
    interval: timedelta | None = ROSTER_POLL

    async def cycle(self, work: Work) -> CycleResult:
        await _roster(work).extend_horizon(work.session, work.now)
        return CycleResult()


class Handovers:
    """The 交接班 of every shift that has begun and is not over, once per chat and shift."""

    name = HANDOVER_MODULE
    interval: timedelta | None = ROSTER_POLL

    async def cycle(self, work: Work) -> CycleResult:
        posted, late = await post_handovers(work.session, _roster(work), work.now)
        starts = await store.shift_starts_between(work.session, work.now, work.now + ROSTER_POLL)
        return CycleResult(queued=posted, late=late, next_at=starts[0][1] if starts else None)


class _DailyJob:
    """A roster job once a day at a configured local time; a missed one is done later that day."""

    name = ""
    interval: timedelta | None = DAILY_POLL

    def time_of(self, settings: RosterSection) -> time:
        raise NotImplementedError

    async def run(self, session: AsyncSession, roster: Roster, now: datetime, today: date) -> int:
        raise NotImplementedError

    async def cycle(self, work: Work) -> CycleResult:
        """The first run of the day claims the occurrence (and says whether it was late); every
        later cycle that day checks again, so someone put on tomorrow's roster after the time (a
        file imported at 17:00) is still reminded, a gap found after it still reported. The outbox
        keys (per person and day, per day) keep each message to one."""
        roster = _roster(work)
        tz = roster.config.tz
        schedule = daily(self.time_of(roster.config.roster), tz)
        posted, late = 0, 0
        for occurrence in await take_due(work.session, self.name, schedule, work.now, expires=same_day(tz)):
            posted += await self.run(work.session, roster, work.now, _day_of(roster, occurrence))
            late += occurrence.late
        today_at = datetime.combine(work.now.astimezone(tz).date(), self.time_of(roster.config.roster), tzinfo=tz)
        if posted == 0 and work.now >= today_at:
            posted = await self.run(work.session, roster, work.now, today_at.date())
        return CycleResult(queued=posted, late=late, next_at=schedule.next_after(work.now))


class RemindTomorrow(_DailyJob):
    """At `remind_time`, each person on duty tomorrow is reminded once."""

    name = "roster-remind"

    def time_of(self, settings: RosterSection) -> time:
        return settings.remind_time

    async def run(self, session: AsyncSession, roster: Roster, now: datetime, today: date) -> int:
        return await remind_tomorrow(session, roster, now, today)


class GapReport(_DailyJob):
    """At `gap_report_time`, the gaps of the coming days to the admins."""

    name = "roster-gaps"

    def time_of(self, settings: RosterSection) -> time:
        return settings.gap_report_time

    async def run(self, session: AsyncSession, roster: Roster, now: datetime, today: date) -> int:
        return await report_gaps(session, roster, now, today)


class RollCall:
    """The 点名 at each of `roll_call_times` (while its answer time runs), and the escalation of
    the calls nobody answered in time."""

    name = "roll-call"
    interval: timedelta | None = ROSTER_POLL

    async def cycle(self, work: Work) -> CycleResult:
        roster = _roster(work)
        settings = roster.config.roster
        window = timedelta(minutes=settings.roll_call_minutes)
        schedule = daily(settings.roll_call_times, roster.config.tz)
        posted = 0
        for occurrence in await take_due(work.session, self.name, schedule, work.now, expires=within(window)):
            posted += await call_roll(work.session, roster, work.now, occurrence.at)
        posted += await escalate_roll_calls(work.session, roster, work.now)
        # Next: the next call, or the end of the answer time of one just made (its escalation).
        wishes = [at + window for at in schedule.occurrences(work.now - window, work.now)]
        following = schedule.next_after(work.now)
        return CycleResult(queued=posted, next_at=min([*wishes, following] if following else wishes, default=None))


def _day_of(roster: Roster, occurrence: Occurrence) -> date:
    return occurrence.at.astimezone(roster.config.tz).date()


# -- tomorrow's people ----------------------------------------------------------------------------------------


async def remind_tomorrow(session: AsyncSession, roster: Roster, now: datetime, today: date) -> int:
    """Each person on duty the day after `today` is reminded once (in their first shift's chat)."""
    tomorrow = today + timedelta(days=1)
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


async def report_gaps(session: AsyncSession, roster: Roster, now: datetime, today: date) -> int:
    """The day's report: the gaps (and unknown day types, unreachable people) of the next days."""
    settings = roster.config.roster
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


async def call_roll(session: AsyncSession, roster: Roster, now: datetime, at: datetime) -> int:
    """The roll call of `at` in every duty chat with officers on duty then."""
    posted = 0
    minutes = timedelta(minutes=roster.config.roster.roll_call_minutes)
    tz = roster.config.tz
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
