"""`统计` in chat: the 定期通报 on demand (handlers/records/period.py).

  统计 / 统计 本周            this week (Monday on), up to now
  统计 上周                   last Monday–Sunday (the weekly notice)
  统计 本月 / 统计 上月       this month up to now / last month (the monthly notice)
  统计 9月                    that month (a month still to come this year: last year's)
  统计 11-01 至 11-30         any run of days (至, 到, ~ or -; also 2026-11-01, 11月1日)
The document is written for the chat by the runtime's writer (handlers/records/document.py
ChatWriter), given when the app includes this router (bot/runtime.py build_dispatcher).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from handlers.context import Context, Outcome
from handlers.records.daily_chat import resolve_day
from handlers.records.document import ChatWriter
from handlers.records.period import Period, Span, last_month, last_week, month_of, period_notice, week_of
from handlers.records.period_doc import period_document
from handlers.roster_parse import DayExpr, take_day
from handlers.router import Router, Usage

USAGE = "用法：统计 [本周|上周|本月|上月|9月|11-01 至 11-30]，例如：统计 上周（不写：本周截至现在）"
SUMMARY = "统计 [上周|上月|11-01 至 11-30] — 定期通报（各单位按时签收率、回应率、超时事项、排名）"
NO_SUCH_DAY = "没有“{text}”这一天，请核对日期。"
BACKWARDS = "起始日期（{first}）晚于结束日期（{last}），请核对。"
TOO_LONG = "统计时段最长{days}天，请缩短后再试。"
NOT_BEGUN = "统计时段自{first}起，尚未开始。"
MAX_DAYS = 366
_WORDS = {"本周": "this_week", "这周": "this_week", "上周": "last_week", "本月": "this_month", "这个月": "this_month",
          "上月": "last_month", "上个月": "last_month"}
_MONTH = re.compile(r"^(\d{1,2})\s*月(份)?$")
_SEPARATORS = ("至", "到", "~", "～", "—", "-")


@dataclass(frozen=True)
class StatsCommand:
    word: str | None = None  # this_week, last_week, this_month, last_month, or None for the below
    month: int | None = None  # 统计 9月
    first: DayExpr | None = None  # 统计 11-01 至 11-30
    last: DayExpr | None = None


def parse_stats(rest: str) -> StatsCommand | Usage:
    text = rest.strip()
    if not text:
        return StatsCommand("this_week")
    if text in _WORDS:
        return StatsCommand(_WORDS[text])
    month = _MONTH.match(text)
    if month is not None:
        number = int(month.group(1))
        return StatsCommand(month=number) if 1 <= number <= 12 else Usage(USAGE)
    return _parse_range(text)


def _parse_range(text: str) -> StatsCommand | Usage:
    first = take_day(text)
    if first is None or first[0].offset is not None:
        return Usage(USAGE)
    rest = first[1]
    separator = next((s for s in _SEPARATORS if rest.startswith(s)), None)
    if separator is None:
        return Usage(USAGE)
    last = take_day(rest[len(separator):])
    if last is None or last[1] or last[0].offset is not None:
        return Usage(USAGE)
    return StatsCommand(first=first[0], last=last[0])


def resolve(command: StatsCommand, today: date) -> Period | str:
    """The period meant, or what is wrong with it (the answer's text)."""
    match command.word:
        case "this_week":
            return week_of(today)
        case "last_week":
            return last_week(today)
        case "this_month":
            return month_of(today)
        case "last_month":
            return last_month(today)
    if command.month is not None:
        year = today.year if command.month <= today.month else today.year - 1
        return month_of(date(year, command.month, 1))
    assert command.first is not None and command.last is not None
    first, last = resolve_day(command.first, today), resolve_day(command.last, today)
    if first is None:
        return NO_SUCH_DAY.format(text=command.first.text)
    if last is None:
        return NO_SUCH_DAY.format(text=command.last.text)
    if last < first and command.last.year is None and last.replace(year=last.year + 1) <= today:
        last = last.replace(year=last.year + 1)  # "12-20 至 1-10" asked in January
    if last < first:
        return BACKWARDS.format(first=first.isoformat(), last=last.isoformat())
    if (last - first).days + 1 > MAX_DAYS:
        return TOO_LONG.format(days=MAX_DAYS)
    return Period(first, last, Span.DAYS)


def build_router(write: ChatWriter) -> Router:
    """The 统计 router, posting with the runtime's writer."""
    router = Router("period-stats")

    @router.command("统计", "通报", "定期通报", parse=parse_stats, summary=SUMMARY)
    async def stats(ctx: Context, command: StatsCommand) -> Outcome:
        today = ctx.now.astimezone(ctx.tz).date()
        period = resolve(command, today)
        if isinstance(period, str):
            return Outcome.say(period)
        if period.first > today:
            return Outcome.say(NOT_BEGUN.format(first=period.first.isoformat()))
        notice = await period_notice(ctx.session, ctx.config, ctx.directory, period, ctx.now)
        return Outcome(write(period_document(notice, ctx.directory), ctx.config, ctx.chat))

    return router
