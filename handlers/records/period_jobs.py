"""The 定期通报 on schedule, as engine modules (handlers/engine.py): weekly (default Monday 09:00, the
previous Monday–Sunday) and monthly (default the 1st at 09:00, the previous calendar month), posted
to the coordinators' chat(s) (协调单位, 000 §三).

Each occurrence is claimed in engine_runs by the transaction that posts it, so any number of cycles
or replicas post it once; one missed while the bot was down is posted once on start, marked 补发,
until the next one is due (last week's notice is still worth having on Tuesday). The outbox keys —
one per chat, period and part of a long notice — are a second guard. The document is written for
each chat by the runtime's writer (handlers/records/document.py ChatWriter).
"""

from __future__ import annotations

from datetime import date, timedelta

from domain.config import Config
from handlers.engine import CycleResult, EngineModule, Monthly, Schedule, Weekly, take_due
from handlers.ops.base import Work
from handlers.records.document import ChatWriter
from handlers.records.period import Period, last_month, last_week, period_notice
from handlers.records.period_doc import period_document
from store import outbox

WEEKLY_MODULE = "records-weekly-notice"
MONTHLY_MODULE = "records-monthly-notice"
# The jobs ask to run at their times (next_at); this poll only covers a clock that jumps.
POLL = timedelta(minutes=10)


def period_modules(config: Config, write: ChatWriter) -> list[EngineModule]:
    """The modules the `[records]` settings turn on."""
    modules: list[EngineModule] = []
    if config.records.weekly:
        modules.append(WeeklyNotice(write))
    if config.records.monthly:
        modules.append(MonthlyNotice(write))
    return modules


class _PeriodicNotice:
    name = ""
    interval: timedelta | None = POLL

    def __init__(self, write: ChatWriter) -> None:
        self.write = write

    def schedule(self, config: Config) -> Schedule:
        raise NotImplementedError

    def period(self, day: date) -> Period:
        """The period the occurrence of local `day` reports on."""
        raise NotImplementedError

    async def cycle(self, work: Work) -> CycleResult:
        schedule = self.schedule(work.config)
        posted = late = 0
        for occurrence in await take_due(work.session, self.name, schedule, work.now, since_first_run=True):
            day = occurrence.at.astimezone(work.config.tz).date()
            posted += await post_notice(work, self.write, self.period(day), late=occurrence.late)
            late += int(occurrence.late)
        return CycleResult(queued=posted, late=late, next_at=schedule.next_after(work.now))


class WeeklyNotice(_PeriodicNotice):
    name = WEEKLY_MODULE

    def schedule(self, config: Config) -> Schedule:
        records = config.records
        return Weekly((records.weekly_time,), config.tz, weekday=records.weekly_weekday - 1)

    def period(self, day: date) -> Period:
        return last_week(day)


class MonthlyNotice(_PeriodicNotice):
    name = MONTHLY_MODULE

    def schedule(self, config: Config) -> Schedule:
        records = config.records
        return Monthly((records.monthly_time,), config.tz, day=records.monthly_day)

    def period(self, day: date) -> Period:
        return last_month(day)


async def post_notice(work: Work, write: ChatWriter, period: Period, *, late: bool = False) -> int:
    """Queue the notice of `period` in every coordinators' chat; returns the messages newly queued."""
    notice = await period_notice(work.session, work.config, work.directory, period, work.now)
    doc = period_document(notice, work.directory, late=late)
    posted = 0
    for chat in work.directory.coordinator_chats():
        for index, reply in enumerate(write(doc, work.config, chat)):
            key = f"period:{period.span.name.lower()}:{period.key}:{chat.id}:{index}"
            posted += await outbox.enqueue(work.session, key=key, chat_id=chat.id, text=reply.text,
                                           mentions=reply.mentions, now=work.now)
    return posted
