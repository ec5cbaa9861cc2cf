"""Validating a roster file (CSV or the first sheet of an XLSX, read by bot/roster_io.py) into the
roster's definitions. Pure: rows of text in, a batch or every row's problems out.

One table, one row per definition; the 类型 column says which kind (班次, 轮班, 排班, 替班, 请假).
The columns each kind uses are documented in docs/ROSTER.md and in `REQUIRED` / `_one_row` below.

Row numbers are the spreadsheet's: the header is row 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.config import Config
from domain.vocab import Role
from handlers.calendar import DayType
from handlers.roster_rules import Advance, Rotation, ShiftTemplate, template_problems

COLUMNS = [
    "类型", "群聊", "班次", "日期类型", "开始", "结束", "值班员人数", "带班领导人数", "角色", "人员", "轮换", "日期",
    "被替换人员", "备注",
]
KINDS = ("班次", "轮班", "排班", "替班", "请假")
REQUIRED = {
    "班次": ("群聊", "班次", "日期类型", "开始", "结束"),
    "轮班": ("群聊", "角色", "人员", "轮换", "日期"),
    "排班": ("群聊", "日期", "班次", "角色", "人员"),
    "替班": ("群聊", "人员", "被替换人员", "开始", "结束"),
    "请假": ("人员", "开始", "结束"),
}
_LIST = re.compile(r"[、,，;；/\s]+")
_TIME = re.compile(r"^(\d{1,2})[:：](\d{2})(?::\d{2})?$")
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_DATETIME = re.compile(r"^(\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?)[\sT]+(\d{1,2}[:：]\d{2}(?::\d{2})?)$")


@dataclass(frozen=True)
class RowError:
    row: int
    reason: str

    def __str__(self) -> str:
        return f"第{self.row}行：{self.reason}"


@dataclass(frozen=True)
class ImportedTemplate:
    row: int
    chat: str
    template: ShiftTemplate


@dataclass(frozen=True)
class ImportedRotation:
    row: int
    chat: str
    rotation: Rotation


@dataclass(frozen=True)
class ImportedAssignment:
    row: int
    chat: str
    day: date
    shift: str
    role: Role
    people: tuple[str, ...]


@dataclass(frozen=True)
class ImportedOverride:
    row: int
    chat: str
    person: str
    replaces: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class ImportedLeave:
    row: int
    person: str
    start: datetime
    end: datetime
    reason: str


@dataclass
class ImportBatch:
    templates: list[ImportedTemplate] = field(default_factory=list)
    rotations: list[ImportedRotation] = field(default_factory=list)
    assignments: list[ImportedAssignment] = field(default_factory=list)
    overrides: list[ImportedOverride] = field(default_factory=list)
    leaves: list[ImportedLeave] = field(default_factory=list)

    def chats(self) -> list[str]:
        found = [t.chat for t in self.templates] + [r.chat for r in self.rotations]
        found += [a.chat for a in self.assignments] + [o.chat for o in self.overrides]
        return list(dict.fromkeys(found))

    def summary(self) -> str:
        return (f"班次 {len(self.templates)} 条、轮班 {len(self.rotations)} 条、排班 {len(self.assignments)} 条、"
                f"替班 {len(self.overrides)} 条、请假 {len(self.leaves)} 条")

    def first_day(self) -> date | None:
        days = [a.day for a in self.assignments] + [r.rotation.start for r in self.rotations]
        return min(days) if days else None


class _Bad(ValueError):
    """One cell's problem; becomes a RowError with the row number."""


# -- cells -------------------------------------------------------------------------------------------


def parse_time(text: str) -> time:
    match = _TIME.match(text.strip())
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise _Bad(f"时间“{text}”格式不对，应为 HH:MM，例如 08:30")
    return time(int(match.group(1)), int(match.group(2)))


def parse_date(text: str) -> date:
    match = _DATE.match(text.strip())
    if match is None:
        raise _Bad(f"日期“{text}”格式不对，应为 YYYY-MM-DD，例如 2026-11-25")
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError as exc:
        raise _Bad(f"日期“{text}”不存在") from exc


def parse_moment(text: str, tz: ZoneInfo, *, end_of_day: bool) -> datetime:
    """"2026-11-25 08:30", or a bare date: its start (or, for an end, the start of the next day)."""
    match = _DATETIME.match(text.strip())
    if match is not None:
        day, clock = parse_date(match.group(1)), parse_time(match.group(2))
        return datetime.combine(day, clock, tzinfo=tz)
    day = parse_date(text)
    if end_of_day:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=tz)


def _count(text: str, label: str) -> int:
    if not text.strip():
        return 1
    if not text.strip().isdigit() or int(text) > 9:
        raise _Bad(f"{label}“{text}”应为 0 到 9 的整数")
    return int(text)


def _role(text: str) -> Role:
    try:
        role = Role(text.strip())
    except ValueError:
        role = None
    if role not in (Role.DUTY_OFFICER, Role.DUTY_LEADER):
        raise _Bad(f"角色“{text}”应为 值班员 或 带班领导")
    return role


def _names(text: str) -> list[str]:
    return [p for p in _LIST.split(text.strip()) if p]


class _People:
    def __init__(self, config: Config) -> None:
        self._by_key: dict[str, str] = {}
        for person in config.people:
            self._by_key[person.id] = person.id
            self._by_key.setdefault(person.name, person.id)

    def one(self, text: str) -> str:
        found = self._by_key.get(text.strip())
        if found is None:
            raise _Bad(f"人员“{text.strip()}”不在配置中（请写人员编号或姓名）")
        return found

    def many(self, text: str) -> tuple[str, ...]:
        people = [self.one(p) for p in _names(text)]
        if not people:
            raise _Bad("人员为空")
        if len(set(people)) != len(people):
            raise _Bad("人员有重复")
        return tuple(people)


# -- rows ---------------------------------------------------------------------------------------------


def validate(rows: Sequence[Mapping[str, str]], config: Config,
             existing_shifts: Mapping[str, set[str]] | None = None) -> tuple[ImportBatch, list[RowError]]:
    """Check every row; the batch is meant to be applied only when the error list is empty.

    `existing_shifts`: shift names already in the database per chat, for files that add rotations
    or assignments without repeating the chat's shifts.
    """
    batch = ImportBatch()
    errors: list[RowError] = []
    people = _People(config)
    chats = {c.id: c.id for c in config.chats} | {c.name: c.id for c in config.chats}
    tz = config.tz
    for index, row in enumerate(rows, start=2):
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if not any(cells.values()):
            continue  # blank lines are common in spreadsheets
        kind = cells.get("类型", "")
        if kind not in KINDS:
            errors.append(RowError(index, f"类型“{kind}”应为 {'、'.join(KINDS)} 之一"))
            continue
        missing = [c for c in REQUIRED[kind] if not cells.get(c)]
        if missing:
            errors.append(RowError(index, f"{kind}行缺少：{'、'.join(missing)}"))
            continue
        try:
            chat = ""
            if kind != "请假":
                chat = chats.get(cells["群聊"], "")
                if not chat:
                    raise _Bad(f"群聊“{cells['群聊']}”不在配置中")
            _one_row(kind, index, cells, chat, people, tz, batch)
        except _Bad as exc:
            errors.append(RowError(index, str(exc)))
    errors += _cross_check(batch, existing_shifts or {})
    errors.sort(key=lambda e: e.row)
    return batch, errors


def _one_row(kind: str, index: int, cells: dict[str, str], chat: str, people: _People, tz: ZoneInfo,
             batch: ImportBatch) -> None:
    if kind == "班次":
        start, end = parse_time(cells["开始"]), parse_time(cells["结束"])
        officers = _count(cells.get("值班员人数", ""), "值班员人数")
        leaders = _count(cells.get("带班领导人数", ""), "带班领导人数")
        if officers + leaders == 0:
            raise _Bad("值班员人数和带班领导人数不能都为 0")
        for word in _names(cells["日期类型"]):
            try:
                day_type = DayType(word)
            except ValueError as exc:
                raise _Bad(f"日期类型“{word}”应为 工作日、休息日 或 法定节假日") from exc
            batch.templates.append(ImportedTemplate(index, chat, ShiftTemplate(
                cells["班次"], day_type, start, end, officers, leaders)))
    elif kind == "轮班":
        try:
            advance = Advance(cells["轮换"])
        except ValueError as exc:
            raise _Bad(f"轮换“{cells['轮换']}”应为 每班、每天 或 每周") from exc
        rotation = Rotation(_role(cells["角色"]), people.many(cells["人员"]), advance, parse_date(cells["日期"]),
                            frozenset(_names(cells.get("班次", ""))))
        batch.rotations.append(ImportedRotation(index, chat, rotation))
    elif kind == "排班":
        batch.assignments.append(ImportedAssignment(index, chat, parse_date(cells["日期"]), cells["班次"],
                                                    _role(cells["角色"]), people.many(cells["人员"])))
    elif kind == "替班":
        person, replaces = people.one(cells["人员"]), people.one(cells["被替换人员"])
        if person == replaces:
            raise _Bad("人员与被替换人员相同")
        since = parse_moment(cells["开始"], tz, end_of_day=False)
        until = parse_moment(cells["结束"], tz, end_of_day=True)
        if until <= since:
            raise _Bad("结束时间应晚于开始时间")
        if until - since > timedelta(days=366):
            raise _Bad("替班时间超过一年")
        batch.overrides.append(ImportedOverride(index, chat, person, replaces, since, until))
    else:  # 请假
        since = parse_moment(cells["开始"], tz, end_of_day=False)
        until = parse_moment(cells["结束"], tz, end_of_day=True)
        if until <= since:
            raise _Bad("结束时间应晚于开始时间")
        for person in people.many(cells["人员"]):
            batch.leaves.append(ImportedLeave(index, person, since, until, cells.get("备注", "")))


def _cross_check(batch: ImportBatch, existing: Mapping[str, set[str]]) -> list[RowError]:
    errors: list[RowError] = []
    seen: dict[tuple[str, str, DayType], int] = {}
    for item in batch.templates:
        key = (item.chat, item.template.name, item.template.day_type)
        if key in seen:
            errors.append(RowError(item.row, f"班次“{item.template.name}”（{item.template.day_type.value}）"
                                             f"与第{seen[key]}行重复"))
        seen.setdefault(key, item.row)
    for chat in dict.fromkeys(t.chat for t in batch.templates):
        mine = [t for t in batch.templates if t.chat == chat]
        for problem in template_problems([t.template for t in mine]):
            errors.append(RowError(mine[-1].row, f"群聊 {chat}：{problem}"))
    names: dict[str, set[str]] = {}
    for item in batch.templates:
        names.setdefault(item.chat, set()).add(item.template.name)
    for chat, known in existing.items():
        names.setdefault(chat, set(known))
    for rotation in batch.rotations:
        unknown = sorted(rotation.rotation.shifts - names.get(rotation.chat, set()))
        if unknown:
            errors.append(RowError(rotation.row, f"群聊 {rotation.chat} 没有班次“{'、'.join(unknown)}”"))
    for assignment in batch.assignments:
        if assignment.shift not in names.get(assignment.chat, set()):
            errors.append(RowError(assignment.row, f"群聊 {assignment.chat} 没有班次“{assignment.shift}”"))
    return errors
