"""Pure parsing of the roster's chat commands: dates (明天, 11-25, 11月25日, 2026-11-25), weeks
(本周, 下周), times, ranges (11-25 至 11-27), shift names and @-names.

Parsers have no clock, so relative dates stay symbolic (`DayExpr`) until the handler resolves them
against today's date in the deployment's timezone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from domain.vocab import Role

_RELATIVE = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3, "昨天": -1, "昨日": -1}
_WEEKS = {"本周": 0, "这周": 0, "本星期": 0, "下周": 1, "下星期": 1, "上周": -1, "上星期": -1}
_DATE = re.compile(r"^(?:(\d{4})\s*[-/.年]\s*)?(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})\s*(?:日|号)?")
_CLOCK = re.compile(r"^(\d{1,2})[:：](\d{2})")
_RANGE_SEPARATOR = re.compile(r"^(?:至|到|~|～|—|–|－|-)\s*")
_MENTION = re.compile(r"@([^\s@\d,，、:：;；]+)")
_SHIFT_WORD = re.compile(r"^([^\s\d@,，、;；:：]+)")
_CONNECTORS = ("对换", "交换", "换", "和", "与")
_ROLE_WORDS = {"值班员": Role.DUTY_OFFICER, "值班": Role.DUTY_OFFICER, "带班领导": Role.DUTY_LEADER,
               "带班": Role.DUTY_LEADER, "领导": Role.DUTY_LEADER}
# A date more than this far in the past means next year's ("1-2" said on 12-30).
PAST_WINDOW = timedelta(days=180)


@dataclass(frozen=True)
class DayExpr:
    offset: int | None = None
    month: int | None = None
    day: int | None = None
    year: int | None = None
    # What the user wrote ("2月30日"), to echo a date that does not exist back in their own words.
    text: str = field(default="", compare=False)

    def resolve(self, today: date) -> date | None:
        """The date meant, or None for a date that does not exist (2-30)."""
        if self.offset is not None:
            return today + timedelta(days=self.offset)
        assert self.month is not None and self.day is not None
        years = [self.year] if self.year is not None else [today.year, today.year + 1, today.year - 1]
        for year in years:
            try:
                found = date(year, self.month, self.day)
            except ValueError:
                continue
            if self.year is not None or today - PAST_WINDOW <= found <= today + (timedelta(days=366) - PAST_WINDOW):
                return found
        return None


@dataclass(frozen=True)
class ShiftExpr:
    """"11-25 夜班": a date and, optionally, the shift's name."""

    day: DayExpr
    shift: str | None = None


@dataclass(frozen=True)
class RangeExpr:
    """"11-25 至 11-27", "11-25 08:30 至 11-26 17:30", or one date."""

    first: DayExpr
    first_time: time | None = None
    last: DayExpr | None = None
    last_time: time | None = None


def take_day(text: str) -> tuple[DayExpr, str] | None:
    text = text.strip()
    for word in sorted(_RELATIVE, key=len, reverse=True):
        if text.startswith(word):
            return DayExpr(offset=_RELATIVE[word], text=word), text[len(word):].strip()
    match = _DATE.match(text)
    if match is None:
        return None
    year = int(match.group(1)) if match.group(1) else None
    written = match.group(0).strip()
    return (DayExpr(month=int(match.group(2)), day=int(match.group(3)), year=year, text=written),
            text[match.end():].strip())


def take_week(text: str) -> tuple[int, str] | None:
    text = text.strip()
    for word, offset in _WEEKS.items():
        if text.startswith(word):
            return offset, text[len(word):].strip()
    return None


def take_clock(text: str) -> tuple[time, str] | None:
    text = text.strip()
    match = _CLOCK.match(text)
    if match is None or int(match.group(1)) > 24 or int(match.group(2)) > 59:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    clock = time(0, 0) if hour == 24 and minute == 0 else time(hour % 24, minute)
    return clock, text[match.end():].strip()


def take_shift(text: str) -> tuple[ShiftExpr, str] | None:
    """A date, then an optional shift name (a word that is not a connector like 换 or 和)."""
    day = take_day(text)
    if day is None:
        return None
    expr, rest = day
    match = _SHIFT_WORD.match(rest)
    if match is None:
        return ShiftExpr(expr), rest
    word = match.group(1)
    for connector in _CONNECTORS:
        if word.startswith(connector):
            return ShiftExpr(expr), rest
        if connector in word:  # "夜班换11-27白班"
            word = word[: word.index(connector)]
    rest = rest[len(word):].strip()
    return ShiftExpr(expr, word or None), rest


def take_range(text: str) -> tuple[RangeExpr, str] | None:
    day = take_day(text)
    if day is None:
        return None
    first, rest = day
    first_time = None
    clock = take_clock(rest)
    if clock is not None:
        first_time, rest = clock
    separator = _RANGE_SEPARATOR.match(rest)
    if separator is None:
        return RangeExpr(first, first_time), rest
    after = rest[separator.end():]
    last_day = take_day(after)
    if last_day is not None:
        last, rest = last_day
        last_time = None
        clock = take_clock(rest)
        if clock is not None:
            last_time, rest = clock
        return RangeExpr(first, first_time, last, last_time), rest
    clock = take_clock(after)  # "11-25 08:30 至 17:30": the same day
    if clock is not None and first_time is not None:
        return RangeExpr(first, first_time, first, clock[0]), clock[1]
    return None


def take_mentions(text: str) -> tuple[list[str], str]:
    """The @-names in a text (the local channel and WeCom write names), and the text without them."""
    names = _MENTION.findall(text)
    rest = _MENTION.sub(" ", text)
    return names, " ".join(rest.split())


def strip_connector(text: str) -> str:
    text = text.strip().lstrip(",，、;；")
    for connector in _CONNECTORS:
        if text.startswith(connector):
            return text[len(connector):].strip()
    return text.strip()


def take_role(text: str) -> tuple[Role, str] | None:
    text = text.strip()
    for word in sorted(_ROLE_WORDS, key=len, reverse=True):
        if text.startswith(word):
            return _ROLE_WORDS[word], text[len(word):].strip()
    return None
