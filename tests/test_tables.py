"""The table writers (bot/documents/tables.py): XLSX opened back with openpyxl, CSV parsed back."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pytest

from bot.documents import tables
from bot.documents.tables import CSV_ENCODING, column_widths, display_width, sheet_names, to_csv, to_xlsx
from handlers.records.document import Table

UNITS = Table(
    name="单位统计",
    headers=("单位", "线索数", "按时签收率", "备注"),
    rows=(
        ("城关镇", 3, 0.5, "2026-11-03 09:15 签收超时"),
        ("县住建局", 12, 1.0, None),
    ),
)
ITEMS = Table(name="超时事项", headers=("编号", "摘要"), rows=(("#12", "小区停水三天无人回应"),), widths=(8, 40))


def _book(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def test_display_width_counts_cjk_twice() -> None:
    assert display_width("abc") == 3
    assert display_width("城关镇") == 6
    assert display_width("＃12") == 4  # the full-width ＃ is wide
    assert display_width("e\u0301") == 1  # a combining accent takes no column


def test_xlsx_has_a_sheet_per_table_with_bold_frozen_chinese_headers() -> None:
    book = _book(to_xlsx([UNITS, ITEMS]))
    assert book.sheetnames == ["单位统计", "超时事项"]
    sheet = book["单位统计"]
    assert [cell.value for cell in sheet[1]] == ["单位", "线索数", "按时签收率", "备注"]
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert [cell.value for cell in sheet[2]] == ["城关镇", 3, 0.5, "2026-11-03 09:15 签收超时"]
    assert [cell.value for cell in sheet[3]] == ["县住建局", 12, 1.0, None]
    assert sheet["B2"].data_type == "n"  # numbers stay numbers: Excel can sum them
    assert book["超时事项"].freeze_panes == "A2"


def test_xlsx_widths_are_measured_or_given() -> None:
    book = _book(to_xlsx([UNITS, ITEMS]))
    sheet = book["单位统计"]
    # 单位: "县住建局" is 8 columns wide, + 2 padding; 线索数: header 6 + 2; 按时签收率: 10 + 2;
    # 备注: "2026-11-03 09:15 " is 17, "签收超时" 8: 25 + 2.
    assert [sheet.column_dimensions[c].width for c in "ABCD"] == [10, 8, 12, 27]
    assert column_widths(UNITS) == [10, 8, 12, 27]
    given = book["超时事项"]
    assert [given.column_dimensions[c].width for c in "AB"] == [8, 40]


def test_long_text_is_capped_and_wraps() -> None:
    table = Table("长", ("说明",), (("很长" * 100,), ("一行\n二行",)))
    sheet = _book(to_xlsx([table]))["长"]
    assert sheet.column_dimensions["A"].width == tables.MAX_WIDTH
    assert sheet["A2"].value == "很长" * 100
    assert sheet["A2"].alignment.wrap_text
    assert sheet["A3"].alignment.wrap_text


def test_text_is_never_a_formula_and_control_characters_are_dropped() -> None:
    table = Table("文本", ("说明",), (("=HYPERLINK(\"http://x\")",), ("#N/A",), ("进展\x0b更新",)))
    sheet = _book(to_xlsx([table]))["文本"]
    assert sheet["A2"].data_type == "s" and sheet["A2"].value == "=HYPERLINK(\"http://x\")"
    assert sheet["A3"].data_type == "s" and sheet["A3"].value == "#N/A"
    assert sheet["A4"].value == "进展更新"


def test_sheet_names_are_valid_and_distinct() -> None:
    names = sheet_names([Table("a/b:c", (), ()), Table("A/B:C", (), ()), Table("", (), ()),
                         Table("超长" * 20, (), ())])
    assert names == ["a_b_c", "A_B_C（2）", "表3", ("超长" * 20)[:31]]
    book = _book(to_xlsx([Table("同名", ("x",), ((1,),)), Table("同名", ("y",), ((2,),))]))
    assert book.sheetnames == ["同名", "同名（2）"]
    assert book["同名（2）"]["A2"].value == 2


def test_no_tables_still_makes_a_workbook() -> None:
    assert _book(to_xlsx([])).sheetnames == [tables.EMPTY_SHEET]


def test_rows_beyond_a_sheet_continue_on_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "SHEET_ROWS", 2)  # Excel's 1,048,575 rows, made small
    book = _book(to_xlsx([Table("记录", ("n",), tuple((n,) for n in range(5)))]))
    assert book.sheetnames == ["记录", "记录（续1）", "记录（续2）"]
    assert [[c.value for c in row] for row in book["记录（续1）"].iter_rows()] == [["n"], [2], [3]]
    assert [[c.value for c in row] for row in book["记录（续2）"].iter_rows()] == [["n"], [4]]
    assert book["记录（续2）"].freeze_panes == "A2"


def test_csv_with_bom_parses_back(tmp_path: Path) -> None:
    path = tmp_path / "统计.csv"
    with open(path, "w", encoding=CSV_ENCODING, newline="") as out:
        out.write(to_csv(UNITS))
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    assert b"\r\n" in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows == [
        ["单位", "线索数", "按时签收率", "备注"],
        ["城关镇", "3", "0.5", "2026-11-03 09:15 签收超时"],
        ["县住建局", "12", "1.0", ""],
    ]


def test_csv_keeps_formulas_out_and_newlines_in() -> None:
    table = Table("t", ("说明", "数"), (("=1+1", -3), ("-5", "+86 138"), ("-", "@某人"), ("一行\n二行", "")))
    rows = list(csv.reader(io.StringIO(to_csv(table), newline="")))
    assert rows[1:] == [["'=1+1", "-3"], ["-5", "'+86 138"], ["-", "'@某人"], ["一行\n二行", ""]]
