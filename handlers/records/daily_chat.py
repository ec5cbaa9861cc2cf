"""`日志`, `日志 昨天`, `日志 11-25` in chat: the 舆情日志 on demand (handlers/records/daily.py).

The log of a day runs from that day's log time (08:30) to the next day's — the duty day, as the
shifts run — so `日志` alone is the current duty day's, up to now; `日志 昨天` is yesterday's (the
one posted this morning); `日志 11-25` the 25th's. The chat's own log: its units' items (the
coordinators' chat: the whole county). The document is written for the chat by the runtime's
writer (handlers/records/document.py ChatWriter), given when the app includes this router.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from handlers.context import Context, Outcome
from handlers.records.daily import build_daily_log
from handlers.records.daily_facts import current_day, period_of
from handlers.records.document import ChatWriter
from handlers.roster_parse import DayExpr, take_day
from handlers.router import Router, Usage

USAGE = "用法：日志 [昨天|前天|11-25]，例如：日志 昨天（不写日期：当前值班日截至现在的日志）"
NO_SUCH_DAY = "没有“{text}”这一天，请核对日期。"
NOT_BEGUN = "{day}的日志自{day}{time}起统计，尚未开始。发送“日志”查看当前值班日的日志。"
SUMMARY = "日志 [昨天|11-25] — 舆情日志（新增、办结、超时、在办、点名、零报告）"


@dataclass(frozen=True)
class DailyCommand:
    day: DayExpr | None  # None: the current duty day


def parse_daily(rest: str) -> DailyCommand | Usage:
    text = rest.strip()
    if not text:
        return DailyCommand(None)
    if text.startswith("前天") or text.startswith("前日"):
        return DailyCommand(DayExpr(offset=-2, text=text[:2])) if not text[2:].strip() else Usage(USAGE)
    taken = take_day(text)
    if taken is None or taken[1]:
        return Usage(USAGE)
    return DailyCommand(taken[0])


def resolve_day(expr: DayExpr, today: date) -> date | None:
    """The date meant; a month-day that falls after today means last year's (a log is of the past)."""
    day = expr.resolve(today)
    if day is not None and expr.offset is None and expr.year is None and day > today:
        try:
            return day.replace(year=day.year - 1)
        except ValueError:  # 2-29 of a leap year
            return None
    return day


def build_router(write: ChatWriter) -> Router:
    """The 日志 router, posting with the runtime's writer."""
    router = Router("daily-log")

    @router.command("日志", "舆情日志", parse=parse_daily, summary=SUMMARY)
    async def daily_log(ctx: Context, command: DailyCommand) -> Outcome:
        settings = ctx.config.records
        if command.day is None:
            day = current_day(ctx.now, settings.daily_log_time, ctx.tz)
        else:
            found = resolve_day(command.day, ctx.now.astimezone(ctx.tz).date())
            if found is None:
                return Outcome.say(NO_SUCH_DAY.format(text=command.day.text))
            day = found
        period = period_of(day, settings.daily_log_time, ctx.tz, ctx.now)
        if period.partial and period.end <= period.start:
            return Outcome.say(NOT_BEGUN.format(day=f"{day.month}月{day.day}日",
                                                time=f"{settings.daily_log_time:%H:%M}"))
        doc = await build_daily_log(ctx.session, ctx.config, ctx.directory, ctx.chat, period)
        return Outcome(write(doc, ctx.config, ctx.chat))

    return router
