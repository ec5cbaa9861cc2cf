"""Pure rendering of roster shifts for people: the chat answers, the handover, the terminal table.
All Chinese wording of these views is here."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from domain.directory import Directory
from domain.vocab import Role
from handlers.calendar import DayInfo, weekday_name
from handlers.roster_rules import Coverage, Segment

VACANT = "（空缺）"
CHECK_CHAT_OK = "{chat}：无缺口"
CHECK_CHAT_GAPS = "{chat}：缺口 {count} 处"
CHECK_GAP = "  ✗ {start}—{end} {role}：{reason}"
CHECK_UNKNOWN = ("  ⚠ 日期类型待确认：{days}（节假日安排尚未公布，暂按星期排定；"
                 "公布后请升级 chinesecalendar 或在配置 [roster] 中补充）")
CHECK_UNREACHABLE = "  ⚠ 无法联系：{when} {shift} {role} {name}（无手机号、无平台账号）"
CHECK_STRAIN = "  ⚠ 连续值班{hours}小时，超过上限：{name} {start}—{end}"
# Said once per answer (never as a tag on each day): which dates are provisional, and why.
PROVISIONAL = "注：{years}年节假日安排尚未公布，{days}暂按星期排定，公布后可能调整。"
ROLE_SHORT = {Role.DUTY_LEADER: "带班", Role.DUTY_OFFICER: "值班"}


@dataclass
class ShiftView:
    """One shift with its people by role (from one or more segments)."""

    day: date
    name: str
    start: datetime
    end: datetime
    provisional: bool
    people: dict[Role, list[Segment]] = field(default_factory=dict)

    def of(self, role: Role) -> list[Segment]:
        return self.people.get(role, [])

    def person_ids(self, role: Role) -> list[str]:
        return list(dict.fromkeys(s.person for s in self.of(role)))


def group_shifts(segments: Iterable[Segment]) -> list[ShiftView]:
    views: dict[tuple[date, str, datetime], ShiftView] = {}
    for seg in segments:
        key = (seg.day, seg.shift, seg.shift_start)
        view = views.get(key)
        if view is None:
            view = views[key] = ShiftView(seg.day, seg.shift, seg.shift_start, seg.shift_end, seg.provisional)
        view.people.setdefault(seg.role, []).append(seg)
    for view in views.values():
        for role in view.people:
            view.people[role].sort(key=lambda s: (s.slot, s.start))
    return sorted(views.values(), key=lambda v: v.start)


def clock(when: datetime, tz: ZoneInfo, since: date | None = None) -> str:
    """"17:30", or "次日08:30" when the time falls on the day after `since`."""
    local = when.astimezone(tz)
    if since is not None and local.date() > since:
        days = (local.date() - since).days
        return f"{'次日' if days == 1 else f'{days}日后'}{local:%H:%M}"
    return f"{local:%H:%M}"


def span(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """"08:30—17:30" or "17:30—次日08:30"."""
    return f"{clock(start, tz)}—{clock(end, tz, start.astimezone(tz).date())}"


def day_label(day: date) -> str:
    return f"{day.month}月{day.day}日"


def when_label(when: datetime, tz: ZoneInfo) -> str:
    local = when.astimezone(tz)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def contact(person_id: str, directory: Directory) -> str:
    """"赵敏 13800000003" (the name alone when there is no mobile)."""
    person = directory.people.get(person_id)
    if person is None:
        return person_id
    return f"{person.name} {person.mobile}" if person.mobile else person.name


def name_of(person_id: str, directory: Directory) -> str:
    person = directory.people.get(person_id)
    return person.name if person else person_id


def people_text(view: ShiftView, role: Role, directory: Directory, tz: ZoneInfo, *, phones: bool) -> str:
    """"赵敏 13800000003、孙丽（12:00起）"; partial segments say from/until when."""
    parts = []
    for seg in view.of(role):
        text = contact(seg.person, directory) if phones else name_of(seg.person, directory)
        if seg.start > view.start and seg.end < view.end:
            text += f"（{clock(seg.start, tz)}—{clock(seg.end, tz, seg.start.astimezone(tz).date())}）"
        elif seg.start > view.start:
            text += f"（{clock(seg.start, tz, view.day)}起）"
        elif seg.end < view.end:
            text += f"（至{clock(seg.end, tz, view.day)}）"
        parts.append(text)
    return "、".join(parts) or VACANT


def shift_line(view: ShiftView, directory: Directory, tz: ZoneInfo) -> str:
    """"白班 08:30—17:30｜带班领导 李华 138…｜值班员 赵敏 138…"."""
    return (f"{view.name} {span(view.start, view.end, tz)}｜带班领导 "
            f"{people_text(view, Role.DUTY_LEADER, directory, tz, phones=True)}｜值班员 "
            f"{people_text(view, Role.DUTY_OFFICER, directory, tz, phones=True)}")


def compact(view: ShiftView, directory: Directory) -> str:
    """"白班 赵敏/李华" (值班员/带班领导) for the weekly table."""
    officers = "、".join(name_of(p, directory) for p in view.person_ids(Role.DUTY_OFFICER)) or "空缺"
    leaders = "、".join(name_of(p, directory) for p in view.person_ids(Role.DUTY_LEADER)) or "空缺"
    return f"{view.name} {officers}/{leaders}"


def day_title(info: DayInfo) -> str:
    return f"{day_label(info.day)}（{weekday_name(info.day)}，{info.label()}）"


def week_lines(days: Sequence[date], views: Sequence[ShiftView], info: Callable[[date], DayInfo],
               directory: Directory) -> list[str]:
    lines = []
    for day in days:
        mine = [v for v in views if v.day == day]
        text = "｜".join(compact(v, directory) for v in mine) or "无班次"
        lines.append(f"{day:%m-%d} {weekday_name(day)} {text}")
    return lines


def provisional_note(days: Sequence[date], info: Callable[[date], DayInfo]) -> list[str]:
    """One sentence for the dates whose year's holidays are not published yet (none: no sentence)."""
    unknown = [d for d in days if not info(d).known]
    if not unknown:
        return []
    years = "、".join(str(y) for y in dict.fromkeys(d.year for d in unknown))
    span_text = day_label(unknown[0]) + (f"至{day_label(unknown[-1])}" if len(unknown) > 1 else "")
    return [PROVISIONAL.format(years=years, days=span_text)]


def pad(text: str, width: int) -> str:
    """Left-justify for a terminal, counting a Chinese character as two columns."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - used, 1)


def table(views: Sequence[ShiftView], info: Callable[[date], DayInfo], directory: Directory, tz: ZoneInfo,
          chat_name: str) -> list[str]:
    """The terminal table of `dutybot roster show`."""
    widths = (12, 6, 22, 6, 18, 18)
    header = ("日期", "星期", "日期类型", "班次", "时间", "带班领导")
    lines = [chat_name, "".join(pad(h, w) for h, w in zip(header, widths, strict=True)) + "值班员"]
    for view in views:
        cells = (view.day.isoformat(), weekday_name(view.day), info(view.day).label(), view.name,
                 span(view.start, view.end, tz), people_text(view, Role.DUTY_LEADER, directory, tz, phones=False))
        officers = people_text(view, Role.DUTY_OFFICER, directory, tz, phones=False)
        lines.append("".join(pad(c, w) for c, w in zip(cells, widths, strict=True)) + officers)
    return lines + provisional_note(sorted({v.day for v in views}), info)


def coverage_lines(results: dict[str, Coverage], directory: Directory, tz: ZoneInfo) -> tuple[list[str], int]:
    """The report of `dutybot roster check` and of the daily gap job: lines, and the number of gaps."""
    lines: list[str] = []
    total = 0
    for chat_id, result in results.items():
        chat = directory.chats.get(chat_id)
        name = chat.name if chat else chat_id
        total += len(result.gaps)
        lines.append(CHECK_CHAT_GAPS.format(chat=name, count=len(result.gaps)) if result.gaps
                     else CHECK_CHAT_OK.format(chat=name))
        for gap in result.gaps:
            lines.append(CHECK_GAP.format(start=when_label(gap.start, tz), end=when_label(gap.end, tz),
                                          role=gap.role.value, reason=gap.reason))
        if result.unknown_days:
            days = result.unknown_days
            text = days[0].isoformat() + (f"—{days[-1].isoformat()}" if len(days) > 1 else "")
            lines.append(CHECK_UNKNOWN.format(days=text))
        seen = set()
        for seg in result.unreachable:
            if (seg.person, seg.shift_start) in seen:
                continue
            seen.add((seg.person, seg.shift_start))
            lines.append(CHECK_UNREACHABLE.format(when=when_label(seg.start, tz), shift=seg.shift,
                                                  role=seg.role.value, name=name_of(seg.person, directory)))
        for strain in result.strains:
            hours = f"{(strain.end - strain.start).total_seconds() / 3600:g}"
            lines.append(CHECK_STRAIN.format(hours=hours, name=name_of(strain.person, directory),
                                             start=when_label(strain.start, tz), end=when_label(strain.end, tz)))
    return lines, total
