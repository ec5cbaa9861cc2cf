"""Day types for the roster: 工作日, 休息日 or 法定节假日, from the chinese-calendar library plus the
deployment's own overrides.

The State Council publishes each year's holidays and 调休 (weekend days that become working
days) only late in the year before. A date of a year the library does not know yet is reported
as *unknown*: the roster still covers it provisionally with the weekday rule (so nobody is left
without a duty officer), but the coverage check names it until the year is published (upgrade
chinese-calendar, or enter the year in `[roster].day_types` and `[roster].published_years`).
No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import chinese_calendar


class DayType(StrEnum):
    WORKDAY = "工作日"
    RESTDAY = "休息日"
    HOLIDAY = "法定节假日"


# The library's English holiday names, as people in the duty group say them.
HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}
WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class DayInfo:
    day: date
    day_type: DayType
    known: bool  # False: the year is not published yet; day_type is the provisional weekday rule
    holiday: str | None = None  # 国庆节 … for a holiday or a 调休 working day that belongs to one
    source: str = "library"  # library | config | weekday

    @property
    def adjusted_workday(self) -> bool:
        """A 调休 Saturday or Sunday that is a working day."""
        return self.day_type is DayType.WORKDAY and self.day.weekday() >= 5

    def label(self) -> str:
        """"工作日（调休）", "法定节假日（国庆节）"; a provisional day is labelled by its weekday rule
        alone (the answer notes the unpublished year once, not on every day)."""
        if not self.known:
            return self.day_type.value
        if self.adjusted_workday:
            return f"{self.day_type.value}（调休）"
        if self.day_type is DayType.HOLIDAY and self.holiday:
            return f"{self.day_type.value}（{self.holiday}）"
        return self.day_type.value


def weekday_rule(day: date) -> DayType:
    return DayType.RESTDAY if day.weekday() >= 5 else DayType.WORKDAY


def weekday_name(day: date) -> str:
    return f"周{WEEKDAYS[day.weekday()]}"


class HolidayCalendar:
    """Answers "what kind of day is this" for the roster; overrides first, then the library."""

    def __init__(self, overrides: Mapping[date, DayType] | None = None, published_years: Iterable[int] = ()) -> None:
        self._overrides = dict(overrides or {})
        self._published = frozenset(published_years)
        self._cache: dict[date, DayInfo] = {}

    def info(self, day: date) -> DayInfo:
        cached = self._cache.get(day)
        if cached is None:
            cached = self._cache[day] = self._compute(day)
        return cached

    def day_type(self, day: date) -> DayType:
        return self.info(day).day_type

    def _compute(self, day: date) -> DayInfo:
        if day in self._overrides:
            return DayInfo(day, self._overrides[day], True, source="config")
        if day.year in self._published:
            return DayInfo(day, weekday_rule(day), True, source="config")
        try:
            workday = bool(chinese_calendar.is_workday(day))
            on_holiday, name = chinese_calendar.get_holiday_detail(day)
        except NotImplementedError:  # a year the library has no data for (not published yet)
            return DayInfo(day, weekday_rule(day), False, source="weekday")
        holiday = HOLIDAY_NAMES.get(str(name), str(name)) if name else None
        if workday:
            return DayInfo(day, DayType.WORKDAY, True, holiday if day.weekday() >= 5 else None)
        if on_holiday and name:
            return DayInfo(day, DayType.HOLIDAY, True, holiday)
        return DayInfo(day, DayType.RESTDAY, True)

    def unknown_days(self, days: Iterable[date]) -> list[date]:
        return [d for d in days if not self.info(d).known]
