"""The 舆情日志 and the 零报告 reminder as engine modules (handlers/engine.py).

- `DailyLog`: at `records.daily_log_time` (08:30) each duty chat gets the log of the duty day that
  has just ended (handlers/records/daily.py): every chat but the admins' (ops) chat.
- `ZeroReminder`: at `records.zero_report_reminder_time` (17:00) the units that have neither had an
  item reported today nor sent their 零报告 are reminded, in each unit's duty chat (the chat of
  the unit or the nearest unit above it, else the coordinators'), their 联络员 @-mentioned (a unit
  without one: its 分管领导), stand-ins (AB角) called instead of anyone on leave.

Each day's occurrence is claimed in engine_runs by the transaction that posts it, so any number of
cycles or replicas post it once; one missed while the bot was down is posted once on start, marked
补发 — the log until the next one is due, the reminder only the same day (tomorrow it would be
about a day gone). The outbox keys (one per chat and day, and per part of a long log) are a second
guard. The document is written for each chat by the runtime's writer (ChatWriter).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from domain.config import ChatConfig, Config
from domain.directory import Directory
from domain.vocab import Role
from handlers.engine import CycleResult, EngineModule, Expiry, Occurrence, daily, same_day, take_due
from handlers.ops.base import Work
from handlers.ops.intake import duty_chat
from handlers.ops.zero_report import day_status, expected_units
from handlers.records.daily import build_daily_log
from handlers.records.daily_facts import period_of
from handlers.records.document import ChatWriter
from handlers.standins import with_stand_ins
from store import outbox

LOG_MODULE = "records-daily-log"
REMINDER_MODULE = "records-zero-reminder"
# The daily jobs run at their times (next_at); this poll only covers a clock that jumps.
POLL = timedelta(minutes=10)
LATE = "（补发）"
REMIND = "【零报告提醒】{day}{late}：截至{time}，以下单位今日既未报送舆情，也未零报告："
REMIND_LINE = "{unit}（{role}：{people}）"
REMIND_NOBODY = "{unit}（未登记联络员）"
REMIND_CLOSE = "请联络员核实：有舆情请发送“上报 内容”；确无舆情请发送“零报告”。"


def daily_modules(config: Config, write: ChatWriter) -> list[EngineModule]:
    """The modules the `[records]` settings turn on."""
    modules: list[EngineModule] = []
    if config.records.daily_log:
        modules.append(DailyLog(write))
    if config.records.zero_report_reminder:
        modules.append(ZeroReminder())
    return modules


def log_chats(directory: Directory) -> list[ChatConfig]:
    """The chats that get the daily log: the duty chats and the coordinators', not the admins' alone."""
    return [c for c in directory.config.chats if c.coordinators or not c.admins]


async def _enqueue(session: AsyncSession, directory: Directory, now: datetime, *, key: str, chat_id: str,
                   text: str, mentions: Sequence[str]) -> int:
    """Queue one message, anyone on leave replaced by their stand-in; 1 when it was new."""
    text, people = await with_stand_ins(session, now, directory, text, mentions)
    return int(await outbox.enqueue(session, key=key, chat_id=chat_id, text=text, mentions=people, now=now))


class _Daily:
    """A job once a day at a local time; a missed occurrence is done later that day, marked late."""

    name = ""
    interval: timedelta | None = POLL

    def time_of(self, config: Config) -> time:
        raise NotImplementedError

    def expiry(self, config: Config) -> Expiry | None:
        """When a missed occurrence stops being worth posting (None: when the next one comes)."""
        return same_day(config.tz)

    async def run(self, work: Work, occurrence: Occurrence) -> int:
        raise NotImplementedError

    async def cycle(self, work: Work) -> CycleResult:
        tz = work.config.tz
        schedule = daily(self.time_of(work.config), tz)
        posted = late = 0
        expires = self.expiry(work.config)
        due = await take_due(work.session, self.name, schedule, work.now, expires=expires, since_first_run=True)
        for occurrence in due:
            posted += await self.run(work, occurrence)
            late += int(occurrence.late)
        return CycleResult(queued=posted, late=late, next_at=schedule.next_after(work.now))


class DailyLog(_Daily):
    """At the log time, the log of the duty day that has just ended, in every duty chat."""

    name = LOG_MODULE

    def __init__(self, write: ChatWriter) -> None:
        self.write = write

    def time_of(self, config: Config) -> time:
        return config.records.daily_log_time

    def expiry(self, config: Config) -> Expiry | None:
        return None  # yesterday's log is still worth posting late, until today's is due

    async def run(self, work: Work, occurrence: Occurrence) -> int:
        tz = work.config.tz
        day = occurrence.at.astimezone(tz).date() - timedelta(days=1)
        period = period_of(day, work.config.records.daily_log_time, tz, occurrence.at)
        posted = 0
        for chat in log_chats(work.directory):
            doc = await build_daily_log(work.session, work.config, work.directory, chat, period,
                                        late=occurrence.late)
            for index, reply in enumerate(self.write(doc, work.config, chat)):
                posted += await _enqueue(work.session, work.directory, work.now, chat_id=chat.id, text=reply.text,
                                         key=f"daily-log:{chat.id}:{day.isoformat()}:{index}", mentions=reply.mentions)
        return posted


class ZeroReminder(_Daily):
    """At the reminder time, the units without an item or a 零报告 today, chat by chat."""

    name = REMINDER_MODULE

    def time_of(self, config: Config) -> time:
        return config.records.zero_report_reminder_time

    async def run(self, work: Work, occurrence: Occurrence) -> int:
        day = occurrence.at.astimezone(work.config.tz).date()
        return await remind_zero_reports(work, day, late=occurrence.late)


async def remind_zero_reports(work: Work, day: date, *, late: bool = False) -> int:
    """Remind the units missing the day's 零报告, one message per duty chat."""
    status = await day_status(work.session, day, work.config.tz)
    by_chat: dict[str, list[str]] = {}
    for unit in status.missing(expected_units(work.directory)):
        chat = duty_chat(work.directory, unit)
        if chat is not None:
            by_chat.setdefault(chat.id, []).append(unit)
    posted = 0
    at = f"{work.config.records.zero_report_reminder_time:%H:%M}"
    for chat_id, units in by_chat.items():
        lines = [REMIND.format(day=f"{day.month}月{day.day}日", late=LATE if late else "", time=at)]
        mentions: list[str] = []
        for unit in units:
            role, people = _contacts(work.directory, unit)
            names = "、".join(work.directory.people[p].name for p in people)
            lines.append(REMIND_LINE.format(unit=work.directory.unit_name(unit), role=role, people=names)
                         if people else REMIND_NOBODY.format(unit=work.directory.unit_name(unit)))
            mentions += people
        lines.append(REMIND_CLOSE)
        posted += await _enqueue(work.session, work.directory, work.now, key=f"zero-remind:{chat_id}:{day.isoformat()}",
                                 chat_id=chat_id, text="\n".join(lines), mentions=list(dict.fromkeys(mentions)))
    return posted


def _contacts(directory: Directory, unit: str) -> tuple[str, list[str]]:
    """Whom a unit's reminder calls: its 联络员 (up the tree, 属地管理), else its 分管领导."""
    for role in (Role.LIAISON, Role.LEADER):
        people = [p.id for p in directory.responsible(role, unit)]
        if people:
            return role.value, people
    return Role.LIAISON.value, []
