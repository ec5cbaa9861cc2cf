"""`dutybot audit export` for 考核/追责 (issue #16 point 5): Chinese headers and action names in every
format, XLSX opened back, CSV with its BOM parsed back, --item and --unit, on the records fixture
(tests/records_fixture.py, whose docstring tells every item's story with its times).

The rows expected below are worked out by hand from that story. An audit row is written for every
operation, and one "notice" row (发送通知) for every reminder delivered to a chat: a 催办 from its
fourth repeat on also goes to the coordinators' chat (清河县舆情应对协调组), a row of its own.
(The earlier audit-export tests, on the command's basics, are in tests/test_cli.py.)
"""

from __future__ import annotations

import ast
import asyncio
import csv
import io
import json
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pytest

from bot.cli import main
from domain.config import Config
from handlers.actions import ACTIONS
from store import audit
from store.db import Database
from tests.conftest import EXAMPLE_CONFIG, ROOT, SHANGHAI
from tests.records_fixture import RecordsWorld, records_world

HEADERS = ["记录号", "时间", "线索编号", "操作", "操作人", "操作人编号", "群", "说明", "变更前", "变更后", "涉密"]
DUTY = "清河县舆情值班群（企业微信）"
COORDINATORS = "清河县舆情应对协调组"

# #3 major_late (教育局, 重大), every row in order: (time, 操作, 操作人). Reported by the monitoring
# platform 09-22 10:00, graded 10:05; 签收 due 10:30: 提醒 at 50 % (10:15) and 80 % (10:24), 催办 10:30;
# 蒋波 signs 10:50. 回应 due 09-23 10:00: 提醒 09-22 22:00 and 09-23 05:12, 催办 10:00 and 10:30 (first
# and second: no coordinators' copy); 回应 11:20; 办结 16:00.
ITEM_3 = [
    ("2026-09-22 10:00:00", "上报", "yuqing_monitor"),
    ("2026-09-22 10:05:00", "定级", "王军"),
    ("2026-09-22 10:15:00", "发送通知", "舆情值班助手"),
    ("2026-09-22 10:24:00", "发送通知", "舆情值班助手"),
    ("2026-09-22 10:30:00", "发送通知", "舆情值班助手"),
    ("2026-09-22 10:50:00", "签收", "蒋波"),
    ("2026-09-22 22:00:00", "发送通知", "舆情值班助手"),
    ("2026-09-23 05:12:00", "发送通知", "舆情值班助手"),
    ("2026-09-23 10:00:00", "发送通知", "舆情值班助手"),
    ("2026-09-23 10:30:00", "发送通知", "舆情值班助手"),
    ("2026-09-23 11:20:00", "回应", "蒋波"),
    ("2026-09-23 16:00:00", "办结", "王军"),
]

# --unit chengguan (城关镇), rows per item:
#   #1  上报, 定级, 签收, 回应, 办结 (no reminder)                                             5
#   #4  上报 (城关镇 the lead), 定级, 转办 to 西岸街道, 签收, 回应, 办结 — transferred away, kept  6
#   #5  上报 (税务局 the lead), 定级, 提醒 10:00, 转办 to 城关镇, 提醒 10:36, 签收,
#       提醒 09-25 09:00, 并入重复线索 (#6), 回应, 办结                                        10
#   #6  上报, 定级, 合并 into #5                                                                3
#   #11 上报, 定级, 签收, 提醒 10-01 08:00, 回应, 办结                                          6
#   and its three 零报告 (09-22, 09-25, 09-28); not the other units' 零报告 in the same chat.
CHENGGUAN = {"#1": 5, "#4": 6, "#5": 10, "#6": 3, "#11": 6, "": 3}
# --unit tax (税务局): #5 (the lead until 10:30: its 10 rows) and #8 never acknowledged: 上报, 定级;
# 签收 clock: 提醒 09-27 07:30 and 11:12, 催办 16:00, 20:00, 09-28 07:30 and 08:00; 回应 clock: 提醒
# 09-27 16:00 and 09-28 07:30, 催办 16:00, 20:00, 09-29 07:30 and 08:00; the four 07:30/08:00 催办 (the
# fourth and fifth) each with the coordinators' copy: 2 + 6 + 6 + 4 = 18. And its 零报告 of 09-21.
TAX = {"#5": 10, "#8": 18, "": 1}


@pytest.fixture
async def world(config: Config) -> AsyncIterator[RecordsWorld]:
    async with records_world(config) as built:
        yield built


async def export(db_url: str, *args: str, config: bool = True) -> int:
    located = ["--config", str(EXAMPLE_CONFIG)] if config else []
    return await asyncio.to_thread(main, ["audit", "export", *args, *located, "--database", db_url])


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def last_line(err: str) -> str:
    """The closing line, with the carriage return that overwrites the progress (splitlines would eat it)."""
    return err.rstrip("\n").split("\n")[-1]


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- every action has a Chinese name --------------------------------------------------------------------

_CODE = re.compile(r"[a-z][a-z_]*")
Constants = dict[str, list[ast.expr]]  # a module-level name → what it is assigned


def _module_constants(tree: ast.Module) -> Constants:
    return {target.id: [node.value] for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def _strings(node: ast.expr, local: Constants, shared: Constants, depth: int = 0) -> list[str]:
    """The codes an argument can be: a literal, either side of `a if x else b`, a constant of the
    module (ACTION = "x") or of another (ACTION = store.ZERO_REPORT, action=CREATED)."""
    if depth > 3:
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body, local, shared, depth) + _strings(node.orelse, local, shared, depth)
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    values = (local.get(name) if isinstance(node, ast.Name) else None) or shared.get(name or "", [])
    return [code for value in values for code in _strings(value, local, shared, depth + 1)]


def recorded_actions() -> dict[str, str]:
    """Every action code the program writes to the audit trail, read from the code: the `action` of
    each `record(...)` call (keyword, or a positional code like work.record(actor, item, "closed"))
    and of each {"action": ...} row given to record_many. Code → the file that records it."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8"))
             for package in ("domain", "store", "handlers", "bot") for path in sorted((ROOT / package).rglob("*.py"))}
    shared: Constants = {}
    for tree in trees.values():
        for name, values in _module_constants(tree).items():
            shared.setdefault(name, []).extend(values)
    found: dict[str, str] = {}
    for path, tree in trees.items():
        local = _module_constants(tree)
        codes: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "record":
                codes += [code for kw in node.keywords if kw.arg == "action"
                          for code in _strings(kw.value, local, shared)]
                codes += [code for arg in node.args for code in _strings(arg, local, {}) if _CODE.fullmatch(code)]
            elif isinstance(node, ast.Dict):
                codes += [code for key, value in zip(node.keys, node.values, strict=True)
                          if isinstance(key, ast.Constant) and key.value == "action"
                          for code in _strings(value, local, shared)]
        for code in codes:
            if _CODE.fullmatch(code):
                found.setdefault(code, str(path.relative_to(ROOT)))
    return found


def test_every_recorded_action_has_a_chinese_name() -> None:
    recorded = recorded_actions()
    # The reading of the code finds every kind of call (a reader that found nothing would pass).
    assert {"reported", "graded", "regraded", "closed", "refused", "notice", "supplement", "roster_import",
            "roster_swap", "roll_call_answered", "roll_call_unanswered", "api_token_created", "zero_report",
            } <= set(recorded)
    assert {code: where for code, where in recorded.items() if code not in ACTIONS} == {}


def test_action_names_are_distinct_chinese_words() -> None:
    assert all(re.search(r"[\u4e00-\u9fff]", name) and not re.search(r"[A-Za-z]", name) for name in ACTIONS.values())
    assert len(set(ACTIONS.values())) == len(ACTIONS)  # one name, one action: a filter in Excel is exact


# -- the formats on the fixture ---------------------------------------------------------------------------


async def test_xlsx_and_csv_say_the_same_in_chinese(world: RecordsWorld, db_url: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    xlsx, csv_path, jsonl = tmp_path / "审计.xlsx", tmp_path / "审计.csv", tmp_path / "审计.jsonl"
    # The format follows the file's suffix when --format is not given.
    assert await export(db_url, "--since", "2026-09-21", "-o", str(xlsx)) == 0
    assert await export(db_url, "--since", "2026-09-21", "-o", str(csv_path)) == 0
    assert await export(db_url, "--since", "2026-09-21", "--format", "jsonl", "-o", str(jsonl)) == 0
    total = len(read_jsonl(jsonl))
    err = capsys.readouterr().err
    assert f"\r正在生成 Excel 文件（{total} 条）……" in err
    assert err.count(f"\r共导出 {total} 条审计记录（自 2026-09-21 起）。") == 3

    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames == ["审计记录"]
    sheet = book["审计记录"]
    assert [c.value for c in sheet[1]] == HEADERS and all(c.font.b for c in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert [sheet.column_dimensions[chr(ord("A") + i)].width for i in range(11)] == [
        9, 21, 10, 16, 14, 16, 28, 50, 40, 40, 6]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert len(rows) == total
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # in the order written (记录号)
    assert {r[3] for r in rows} <= set(ACTIONS.values())  # Chinese names only, never a code
    assert [(r[1], r[3], r[4]) for r in rows if r[2] == "#3"] == ITEM_3
    assert {r[2] for r in rows if r[10] == "是"} == {"#7"}  # the 涉密 item's rows are marked
    graded = next(r for r in rows if r[2] == "#3" and r[3] == "定级")
    assert (graded[5], graded[6], graded[7]) == ("wang_jun", DUTY, "重大")
    assert json.loads(graded[9])["grade"] == "重大" and json.loads(graded[8])["grade"] is None

    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    parsed = read_csv(csv_path)
    assert parsed[0] == HEADERS
    # The same rows in both files: the CSV's cells are the XLSX's as text.
    assert parsed[1:] == [["" if v is None else str(v) for v in row] for row in rows]


async def test_jsonl_keeps_the_codes_beside_the_names(world: RecordsWorld, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "item.jsonl"
    assert await export(db_url, "--since", "2026-09-21", "--item", "#3", "-o", str(out)) == 0
    rows = read_jsonl(out)
    assert [(r["action"], r["action_label"]) for r in rows][:3] == [
        ("reported", "上报"), ("graded", "定级"), ("notice", "发送通知")]
    assert [r["action_label"] for r in rows] == [label for _, label, _ in ITEM_3]
    first = rows[0]
    assert first["at"] == "2026-09-22T10:00:00+08:00" and first["item"] == "#3"
    assert (first["chat"], first["chat_name"], first["classified"]) == ("wecom_duty", DUTY, False)
    notice = rows[2]
    assert (notice["actor"], notice["actor_name"]) == ("bot", "舆情值班助手")


# -- the filters -------------------------------------------------------------------------------------------


async def test_item_is_written_as_in_the_chat(world: RecordsWorld, db_url: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for n, form in enumerate(["3", "#3", "＃3", "3号", " #3 "]):
        out = tmp_path / f"{n}.csv"
        assert await export(db_url, "--since", "2026-09-01", "--item", form, "-o", str(out)) == 0
        outputs.append(read_csv(out))
    assert all(output == outputs[0] for output in outputs)
    assert [(r[1], r[3], r[4]) for r in outputs[0][1:]] == ITEM_3
    assert last_line(capsys.readouterr().err) == "\r共导出 12 条审计记录（自 2026-09-01 起，线索：#3）。"
    # --since still applies: 09-23 on leaves #3's last four rows.
    out = tmp_path / "late.csv"
    assert await export(db_url, "--since", "2026-09-23", "--item", "3", "-o", str(out)) == 0
    assert [(r[1], r[3], r[4]) for r in read_csv(out)[1:]] == ITEM_3[-5:]


async def test_unit_has_its_items_past_and_present_and_its_own_rows(
    world: RecordsWorld, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    by_id, by_name = tmp_path / "cg.csv", tmp_path / "城关镇.csv"
    assert await export(db_url, "--since", "2026-09-01", "--unit", "chengguan", "-o", str(by_id)) == 0
    assert await export(db_url, "--since", "2026-09-01", "--unit", "城关镇", "-o", str(by_name)) == 0
    rows = read_csv(by_id)[1:]
    assert read_csv(by_name)[1:] == rows
    assert Counter(r[2] for r in rows) == CHENGGUAN
    assert [(r[1], r[3], r[4]) for r in rows if not r[2]] == [
        ("2026-09-22 16:00:00", "零报告", "杨帆"), ("2026-09-25 16:00:00", "零报告", "杨帆"),
        ("2026-09-28 16:00:00", "零报告", "杨帆")]
    assert last_line(capsys.readouterr().err) == (
        "\r共导出 33 条审计记录（自 2026-09-01 起，单位：清河县城关镇人民政府）。")

    tax = tmp_path / "tax.jsonl"
    assert await export(db_url, "--since", "2026-09-01", "--unit", "tax", "--format", "jsonl", "-o", str(tax)) == 0
    taxed = read_jsonl(tax)
    assert Counter(r["item"] for r in taxed) == TAX
    assert Counter(r["chat_name"] for r in taxed if r["item"] == "#8") == {DUTY: 14, COORDINATORS: 4}

    # The county office: no item of its own; its rows are the roll calls in its duty chats — 赵敏's
    # answer 09-22 10:08, the miss in the DingTalk chat 09-22 10:15, both misses 09-29 10:15.
    office = tmp_path / "office.csv"
    assert await export(db_url, "--since", "2026-09-01", "--unit", "gov_office", "-o", str(office)) == 0
    assert [(r[1], r[3]) for r in read_csv(office)[1:]] == [
        ("2026-09-22 10:08:00", "应答点名"), ("2026-09-22 10:15:00", "点名无人应答"),
        ("2026-09-29 10:15:00", "点名无人应答"), ("2026-09-29 10:15:00", "点名无人应答")]

    # Both filters: the item's rows if it is the unit's.
    both = tmp_path / "both.csv"
    assert await export(db_url, "--since", "2026-09-01", "--unit", "tax", "--item", "5号", "-o", str(both)) == 0
    assert len(read_csv(both)) == 1 + 10
    assert await export(db_url, "--since", "2026-09-01", "--unit", "health", "--item", "5", "-o", str(both)) == 0
    assert read_csv(both) == [HEADERS]


# -- refusals: nothing written ---------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--item", "abc"], "线索编号“abc”格式不对，请写成 12、#12、＃12 或 12号。"),
    (["--item", "#0"], "线索编号“#0”格式不对，请写成 12、#12、＃12 或 12号。"),
    (["--item", "#3 全部"], "线索编号“#3 全部”格式不对，请写成 12、#12、＃12 或 12号。"),
    (["--item", "99"], "没有编号为 #99 的线索。"),
    (["--unit", "城管"], "配置中没有单位“城管”。您是否要输入："),
])
async def test_a_bad_filter_is_refused_before_any_file(db_url: str, tmp_path: Path, args: list[str], message: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert await asyncio.to_thread(main, ["db", "upgrade", "--database", db_url]) == 0
    out = tmp_path / "audit.csv"
    assert await export(db_url, "--since", "2026-01-01", *args, "-o", str(out)) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"错误：{message}")
    assert not out.exists()


async def test_unit_needs_the_config(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await asyncio.to_thread(main, ["db", "upgrade", "--database", db_url]) == 0
    assert await export(db_url, "--since", "2026-01-01", "--unit", "城关镇", config=False) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "错误：按单位筛选需要配置文件（单位与群、人员的对应关系），请用 --config 文件 指明。")


async def test_xlsx_is_not_written_to_a_terminal(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert await asyncio.to_thread(main, ["db", "upgrade", "--database", db_url]) == 0
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert await export(db_url, "--since", "2026-01-01", "--format", "xlsx") == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "错误：Excel 文件不能输出到终端，请用 -o 指定文件，例如：-o 审计记录.xlsx")


# -- a long export -------------------------------------------------------------------------------------------


async def test_a_long_export_shows_progress(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await asyncio.to_thread(main, ["db", "upgrade", "--database", db_url]) == 0
    start = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
    db = Database(db_url)
    try:
        async with db.transaction() as session:
            await audit.record_many(session, [
                {"at": start + timedelta(minutes=n), "actor": "cli", "action": "roster_import", "detail": f"第{n}次"}
                for n in range(2500)])
    finally:
        await db.dispose()
    out = tmp_path / "long.xlsx"
    assert await export(db_url, "--since", "2026-11-02", "-o", str(out)) == 0
    err = capsys.readouterr().err
    assert "\r已导出 1000 条……\r已导出 2000 条……\r正在生成 Excel 文件（2500 条）……" in err
    sheet = openpyxl.load_workbook(out, read_only=True)["审计记录"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 2500
    assert rows[-1][1:8] == ("2026-11-04 02:39:00", None, "导入值班表", "命令行", "cli", None, "第2499次")
