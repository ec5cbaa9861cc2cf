"""`dutybot roster import|export|show|check` and the demo's example roster, on SQLite and PostgreSQL:
good and bad files (CSV and XLSX), --dry-run, exports parsed back (openpyxl, icalendar), exit codes."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, datetime, time
from pathlib import Path

import icalendar
import openpyxl
import pytest

from bot.cli import main
from bot.roster_cli import ensure_demo_roster
from domain.config import load_config
from store import roster as store
from store.db import Database
from tests.conftest import EXAMPLE_CONFIG, SHANGHAI
from tests.roster_support import EXAMPLE_ROSTER, csv_text

Capture = pytest.CaptureFixture[str]


def run(db_url: str, *args: str) -> int:
    return main(["roster", *args, "--config", str(EXAMPLE_CONFIG), "--database", db_url])


async def run_async(db_url: str, *args: str) -> int:
    return await asyncio.to_thread(run, db_url, *args)


async def has_roster(db_url: str) -> bool:
    db = Database(db_url)
    try:
        await db.upgrade()
        async with db.read() as session:
            return bool(await store.roster_chats(session))
    finally:
        await db.dispose()


async def test_import_show_check(db_url: str, capsys: Capture) -> None:
    assert await run_async(db_url, "import", str(EXAMPLE_ROSTER), "--dry-run") == 0
    assert "校验通过" in capsys.readouterr().out
    assert not await has_roster(db_url)  # a dry run writes nothing
    assert await run_async(db_url, "import", str(EXAMPLE_ROSTER)) == 0
    assert "已导入" in capsys.readouterr().out
    assert await has_roster(db_url)
    assert await run_async(db_url, "show", "--from", "2026-11-23", "--days", "2", "--chat", "wecom_duty") == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == "清河县舆情值班群（企业微信）"
    assert shown[2].split() == ["2026-11-23", "周一", "工作日", "白班", "08:30—17:30", "周涛", "赵敏"]
    assert shown[3].split() == ["2026-11-23", "周一", "工作日", "夜班", "17:30—次日08:30", "周涛", "孙丽"]
    assert await run_async(db_url, "check", "--from", "2026-11-23", "--days", "30") == 0
    out = capsys.readouterr().out
    assert "清河县舆情值班群（企业微信）：无缺口" in out and "检查完成：无缺口。" in out


async def test_check_lists_each_gap_and_fails(db_url: str, tmp_path: Path, capsys: Capture) -> None:
    await run_async(db_url, "import", str(EXAMPLE_ROSTER))
    leave = tmp_path / "leave.csv"
    leave.write_text(csv_text({"类型": "请假", "人员": "赵敏、孙丽", "开始": "2026-11-25", "结束": "2026-11-25",
                               "备注": "培训"}), encoding="utf-8")
    assert await run_async(db_url, "import", str(leave)) == 0
    capsys.readouterr()
    assert await run_async(db_url, "check", "--from", "2026-11-23", "--days", "30", "--chat", "wecom_duty") == 1
    out = capsys.readouterr().out
    assert "清河县舆情值班群（企业微信）：缺口 1 处" in out
    assert "  ✗ 11月24日 17:30—11月26日 08:30 值班员：无人值班" in out
    assert "检查完成：共 1 处缺口。" in out


async def test_check_names_unreachable_people_and_unknown_days(db_url: str, tmp_path: Path, capsys: Capture) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'mobile = "13800000006"\nwecom_userid = "SunLi"\ndingtalk_userid = "dt_sunli"\n', "")
    config_path = tmp_path / "config.toml"
    config_path.write_text(text, encoding="utf-8")
    args = ["--config", str(config_path), "--database", db_url]
    assert await asyncio.to_thread(main, ["roster", "import", str(EXAMPLE_ROSTER), *args]) == 0
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["roster", "check", "--from", "2026-12-20", "--days", "20", "--chat",
                                          "wecom_duty", *args])
    out = capsys.readouterr().out
    assert code == 0  # reachable or not, nobody is missing
    # The Saturday night shift reaching into the window counts too.
    assert "  ⚠ 无法联系：12月19日 17:30 夜班 值班员 孙丽（无手机号、无平台账号）" in out
    assert "  ⚠ 日期类型待确认：2027-01-01—2027-01-08" in out


async def test_bad_rows_are_all_reported_and_nothing_is_imported(db_url: str, tmp_path: Path, capsys: Capture) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_text(
        {"类型": "班次", "群聊": "wecom_duty", "班次": "白班", "日期类型": "工作日", "开始": "08:30", "结束": "17:30"},
        {"类型": "班次", "群聊": "wecom_duty", "班次": "夜班", "日期类型": "周末", "开始": "17:30", "结束": "08:30"},
        {"类型": "轮班", "群聊": "wecom_duty", "班次": "早班", "角色": "值班员", "人员": "赵敏、张三", "轮换": "每天",
         "日期": "2026-01-01"},
        {"类型": "轮班", "群聊": "nowhere", "角色": "值班员", "人员": "赵敏", "轮换": "每月", "日期": "2026-01-01"},
        {"类型": "请假", "人员": "孙丽", "开始": "2026-11-30", "结束": "2026-11-25"},
        {"类型": "排班", "群聊": "wecom_duty", "日期": "2026-02-30", "班次": "白班", "角色": "值班员", "人员": "赵敏"},
        {"类型": "值班", "群聊": "wecom_duty"},
        {"类型": "替班", "群聊": "wecom_duty", "人员": "孙丽", "开始": "2026-11-25 08:30"},
    ), encoding="utf-8")
    assert await run_async(db_url, "import", str(bad)) == 1
    err = capsys.readouterr().err.splitlines()[1:]  # the first line names the config and database used
    assert err[0].endswith("有 7 行有误，未导入任何内容：")
    assert err[1:] == [
        "  第3行：日期类型“周末”应为 工作日、休息日 或 法定节假日",
        "  第4行：人员“张三”不在配置中（请写人员编号或姓名）",
        "  第5行：群聊“nowhere”不在配置中",
        "  第6行：结束时间应晚于开始时间",
        "  第7行：日期“2026-02-30”不存在",
        "  第8行：类型“值班”应为 班次、轮班、排班、替班、请假 之一",
        "  第9行：替班行缺少：被替换人员、结束",
    ]
    assert not await has_roster(db_url)
    unknown_shift = tmp_path / "shift.csv"
    unknown_shift.write_text(csv_text(
        {"类型": "班次", "群聊": "wecom_duty", "班次": "白班", "日期类型": "工作日", "开始": "08:30", "结束": "18:00"},
        {"类型": "班次", "群聊": "wecom_duty", "班次": "夜班", "日期类型": "工作日", "开始": "17:30", "结束": "08:30"},
        {"类型": "轮班", "群聊": "wecom_duty", "班次": "早班", "角色": "值班员", "人员": "赵敏", "轮换": "每天",
         "日期": "2026-01-01"},
    ), encoding="utf-8")
    assert await run_async(db_url, "import", str(unknown_shift)) == 1
    err_text = capsys.readouterr().err
    assert "第3行：群聊 wecom_duty：工作日的“白班”与“夜班”时间重叠" in err_text
    assert "第4行：群聊 wecom_duty 没有班次“早班”" in err_text


async def test_unreadable_files(db_url: str, tmp_path: Path, capsys: Capture) -> None:
    headerless = tmp_path / "x.csv"
    headerless.write_text("a,b\n1,2\n", encoding="utf-8")
    assert await run_async(db_url, "import", str(headerless)) == 2
    assert "包含“类型”列" in capsys.readouterr().err
    other = tmp_path / "x.txt"
    other.write_text("", encoding="utf-8")
    assert await run_async(db_url, "import", str(other)) == 2
    assert "不支持的文件类型" in capsys.readouterr().err
    fake = tmp_path / "x.xlsx"
    fake.write_bytes(b"not a workbook")
    assert await run_async(db_url, "import", str(fake)) == 2
    assert "无法作为 Excel 工作簿打开" in capsys.readouterr().err


async def test_xlsx_import_with_typed_cells_and_gbk_csv(db_url: str, tmp_path: Path, capsys: Capture) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    rows = list(csv.reader(io.StringIO(EXAMPLE_ROSTER.read_text(encoding="utf-8-sig"))))
    sheet.append(rows[0])
    for row in rows[1:]:
        cells: list[object] = list(row)
        for index in (4, 5):  # 开始, 结束 as Excel times
            if cells[index]:
                hour, minute = str(cells[index]).split(":")
                cells[index] = time(int(hour), int(minute))
        if cells[11]:  # 日期 as an Excel date
            cells[11] = datetime.combine(date.fromisoformat(str(cells[11])), time(0))
        sheet.append(cells)
    path = tmp_path / "roster.xlsx"
    book.save(path)
    assert await run_async(db_url, "import", str(path), "--dry-run") == 0
    assert "班次 12 条、轮班 6 条" in capsys.readouterr().out
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(EXAMPLE_ROSTER.read_text(encoding="utf-8-sig").encode("gb18030"))
    assert await run_async(db_url, "import", str(gbk)) == 0


async def test_exports_read_back(db_url: str, tmp_path: Path, capsys: Capture) -> None:
    await run_async(db_url, "import", str(EXAMPLE_ROSTER))
    ics_path = tmp_path / "zhao.ics"
    assert await run_async(db_url, "export", "--format", "ics", "--person", "赵敏", "--from", "2026-11-23",
                           "--days", "7", "--chat", "wecom_duty", "-o", str(ics_path)) == 0
    calendar = icalendar.Calendar.from_ical(ics_path.read_bytes())
    events = list(calendar.walk("VEVENT"))
    assert [str(e["SUMMARY"]) for e in events][:3] == ["白班值班员：赵敏", "夜班值班员：赵敏", "白班值班员：赵敏"]
    first = events[0]
    assert first.decoded("DTSTART") == datetime(2026, 11, 23, 8, 30, tzinfo=SHANGHAI)
    assert first.decoded("DTEND") == datetime(2026, 11, 23, 17, 30, tzinfo=SHANGHAI)
    assert first["DTSTART"].params["TZID"] == "Asia/Shanghai"
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Asia/Shanghai"]
    night = events[1]
    assert night.decoded("DTEND") == datetime(2026, 11, 25, 8, 30, tzinfo=SHANGHAI)
    assert len({str(e["UID"]) for e in events}) == len(events)

    whole = tmp_path / "chat.ics"
    assert await run_async(db_url, "export", "--format", "ics", "--chat", "wecom_duty", "--from", "2026-11-28",
                           "--days", "1", "-o", str(whole)) == 0
    weekend = list(icalendar.Calendar.from_ical(whole.read_bytes()).walk("VEVENT"))
    assert {str(e["SUMMARY"]) for e in weekend} == {"白班带班领导：周涛", "白班值班员：孙丽", "夜班带班领导：周涛",
                                                    "夜班值班员：赵敏"}

    xlsx_path = tmp_path / "roster.xlsx"
    assert await run_async(db_url, "export", "--format", "xlsx", "--chat", "wecom_duty", "--from", "2026-11-23",
                           "--days", "1", "-o", str(xlsx_path)) == 0
    sheet = openpyxl.load_workbook(xlsx_path).active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][:8] == ["日期", "星期", "日期类型", "群聊", "班次", "班次开始", "班次结束", "角色"]
    assert values[1][:11] == ["2026-11-23", "周一", "工作日", "wecom_duty", "白班", "2026-11-23 08:30",
                              "2026-11-23 17:30", "带班领导", "zhou_tao", "周涛", "13800000005"]
    assert len(values) == 5

    capsys.readouterr()
    assert await run_async(db_url, "export", "--format", "csv", "--definitions", "--chat", "wecom_duty") == 0
    exported = capsys.readouterr().out
    again = tmp_path / "again.csv"
    again.write_text(exported, encoding="utf-8")
    assert await run_async(db_url, "import", str(again), "--dry-run") == 0  # definitions round-trip
    assert "班次 6 条、轮班 3 条" in capsys.readouterr().out


async def test_demo_imports_the_example_roster_once_and_has_no_gap(db_url: str, capsys: Capture) -> None:
    config = load_config(EXAMPLE_CONFIG).with_database(db_url)
    now = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
    assert await ensure_demo_roster(config, now) == str(EXAMPLE_ROSTER)
    assert await ensure_demo_roster(config, now) is None  # the next start keeps what is there
    db = Database(db_url)
    try:
        async with db.read() as session:
            last = await store.last_day(session, "wecom_duty")
    finally:
        await db.dispose()
    assert last == date(2027, 12, 31)  # this year and next
    assert await run_async(db_url, "check", "--from", "2026-11-23", "--days", "30") == 0
    assert "检查完成：无缺口。" in capsys.readouterr().out
