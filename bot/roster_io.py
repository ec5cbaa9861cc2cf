"""Roster files: reading CSV / XLSX into rows of text, and writing the roster as CSV, XLSX or ICS.

The layout of an import file is documented in docs/ROSTER.md; validation is in
handlers/roster_import.py (pure), writing to the database in handlers/roster_service.py.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import openpyxl

from domain.directory import Directory
from handlers.calendar import HolidayCalendar, weekday_name
from handlers.roster_import import COLUMNS
from handlers.roster_rules import Segment
from handlers.roster_view import name_of

SCHEDULE_COLUMNS = [
    "日期", "星期", "日期类型", "群聊", "班次", "班次开始", "班次结束", "角色", "人员编号", "姓名", "手机",
    "开始", "结束",
]


class RosterFileError(Exception):
    """The file cannot be read at all (as opposed to rows with problems)."""


def _cell(value: object) -> str:
    """A spreadsheet cell as the text a person typed: dates as YYYY-MM-DD, times as HH:MM."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return f"{value:%H:%M}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _rows(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[dict[str, str]]:
    names = [h.strip() for h in header]
    if "类型" not in names:
        raise RosterFileError(f"第1行应为表头，且包含“类型”列；可用的列：{'、'.join(COLUMNS)}")
    unknown = [n for n in names if n and n not in COLUMNS]
    if unknown:
        raise RosterFileError(f"表头中有未知的列：{'、'.join(unknown)}；可用的列：{'、'.join(COLUMNS)}")
    return [{name: (row[i] if i < len(row) else "") for i, name in enumerate(names) if name} for row in body]


def read_rows(path: Path) -> list[dict[str, str]]:
    """The data rows of a CSV (UTF-8, with or without BOM, or GB18030 as Excel saves it) or XLSX file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".xlsx":
            return _read_xlsx(path)
        if suffix == ".csv":
            raw = path.read_bytes()
        else:
            raise RosterFileError(f"不支持的文件类型“{path.suffix}”，请用 .xlsx 或 .csv")
    except OSError as exc:
        raise RosterFileError(f"无法读取文件 {path}：{exc.strerror}") from exc
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise RosterFileError("文件编码无法识别，请另存为 UTF-8 编码的 CSV")
    table = list(csv.reader(io.StringIO(text)))
    if not table:
        raise RosterFileError("文件为空")
    return _rows(table[0], table[1:])


def _read_xlsx(path: Path) -> list[dict[str, str]]:
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several kinds for a file that is not a workbook
        raise RosterFileError(f"无法作为 Excel 工作簿打开：{type(exc).__name__}") from exc
    try:
        sheet = book.worksheets[0]
        table = [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
    if not table:
        raise RosterFileError("工作表为空")
    return _rows(table[0], table[1:])


# -- writing ---------------------------------------------------------------------------------------


def write_table(path: Path | None, header: Sequence[str], rows: Sequence[Sequence[str]], fmt: str) -> bytes | str:
    """CSV (UTF-8 with BOM, so Excel opens it correctly) or XLSX; returns the content when path is None."""
    if fmt == "xlsx":
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "值班表"
        sheet.append(list(header))
        for row in rows:
            sheet.append(list(row))
        buffer = io.BytesIO()
        book.save(buffer)
        data = buffer.getvalue()
        if path is not None:
            path.write_bytes(data)
        return data
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if path is not None:
        path.write_text("\ufeff" + out.getvalue(), encoding="utf-8")
    return out.getvalue()


def schedule_rows(segments: Sequence[tuple[str, Segment]], directory: Directory, calendar: HolidayCalendar,
                  tz: ZoneInfo) -> list[list[str]]:
    rows = []
    for chat_id, seg in segments:
        person = directory.people.get(seg.person)
        rows.append([
            seg.day.isoformat(), weekday_name(seg.day), calendar.info(seg.day).label(), chat_id, seg.shift,
            f"{seg.shift_start.astimezone(tz):%Y-%m-%d %H:%M}", f"{seg.shift_end.astimezone(tz):%Y-%m-%d %H:%M}",
            seg.role.value, seg.person, name_of(seg.person, directory), (person.mobile or "") if person else "",
            f"{seg.start.astimezone(tz):%Y-%m-%d %H:%M}", f"{seg.end.astimezone(tz):%Y-%m-%d %H:%M}",
        ])
    return rows


def ics(segments: Sequence[tuple[str, Segment]], directory: Directory, tz: ZoneInfo, title: str) -> bytes:
    """An iCalendar file: one event per person and (part of a) shift, in the deployment's timezone."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//dutybot//roster//ZH")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", title)
    calendar.add("x-wr-timezone", str(tz))
    for chat_id, seg in segments:
        chat = directory.chats.get(chat_id)
        event = icalendar.Event()
        name = name_of(seg.person, directory)
        event.add("uid", f"{chat_id}-{seg.role.name.lower()}-{seg.person}-{seg.start:%Y%m%dT%H%M%SZ}@dutybot")
        event.add("summary", f"{seg.shift}{seg.role.value}：{name}")
        event.add("dtstart", seg.start.astimezone(tz))
        event.add("dtend", seg.end.astimezone(tz))
        event.add("dtstamp", seg.start)
        event.add("location", chat.name if chat else chat_id)
        person = directory.people.get(seg.person)
        contact = f"，电话 {person.mobile}" if person and person.mobile else ""
        event.add("description", f"{chat.name if chat else chat_id} {seg.day.isoformat()} {seg.shift} "
                                 f"{seg.role.value} {name}{contact}")
        calendar.add_component(event)
    calendar.add_missing_timezones()
    data: bytes = calendar.to_ical()
    return data
