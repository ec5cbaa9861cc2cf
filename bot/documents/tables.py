"""Tables (handlers/records/document.py `Table`) as XLSX and CSV, the way an office opens them in Excel.

XLSX: one sheet per table named after it, the Chinese header row bold and frozen, column widths set
(from `Table.widths`, or measured from the content where CJK characters count twice, capped).
CSV: one table as text; the caller writes it with encoding `CSV_ENCODING` ("utf-8-sig": UTF-8 with
a BOM) and `newline=""`, for without the BOM Excel reads UTF-8 as the local code page and the
Chinese turns to mojibake.

Values are written as given: times arrive as text already in local time (the caller formats them),
numbers stay numbers so that Excel can sum them. Text is never taken for a formula: a chat message
beginning with "=" is data, not something for Excel to run.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from handlers.records.document import Table

Value = str | int | float | None

CSV_ENCODING = "utf-8-sig"  # UTF-8 with BOM: what Excel needs to read a CSV file's Chinese correctly
MIN_WIDTH = 6
MAX_WIDTH = 60  # a long 说明 wraps inside its column instead of pushing the others off the screen
PADDING = 2
MAX_CELL = 32_767  # Excel's limit on the characters in one cell
SHEET_ROWS = 1_048_576 - 1  # data rows per sheet under the header; beyond them a 续 sheet continues
EMPTY_SHEET = "无数据"
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_SHEET_NAME_MAX = 31
# CSV cells Excel would evaluate as a formula (CSV injection); a leading apostrophe keeps them text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def display_width(text: str) -> int:
    """Columns the text takes on screen: wide (CJK, full-width) characters two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def _text(value: Value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def column_widths(table: Table) -> list[int]:
    """Each column's width in characters: the table's own where it gives one, else the widest line of
    the header and the cells (+ padding), within [MIN_WIDTH, MAX_WIDTH]."""
    measured = [display_width(header) for header in table.headers]
    for row in table.rows:
        for index, value in enumerate(row[: len(measured)]):
            if value is None:
                continue
            widest = max(display_width(line) for line in _text(value).split("\n"))
            if widest > measured[index]:
                measured[index] = widest
    widths = [min(MAX_WIDTH, max(MIN_WIDTH, width + PADDING)) for width in measured]
    for index, given in enumerate(table.widths[: len(widths)]):
        if given > 0:
            widths[index] = given
    return widths


def sheet_names(tables: Sequence[Table]) -> list[str]:
    """Valid, distinct sheet names (Excel compares them case-blind) from the tables' names."""
    taken: set[str] = set()
    names: list[str] = []
    for number, table in enumerate(tables, start=1):
        base = _SHEET_FORBIDDEN.sub("_", table.name).strip("'").strip() or f"表{number}"
        names.append(_distinct(base[:_SHEET_NAME_MAX], taken))
    return names


def _distinct(name: str, taken: set[str]) -> str:
    candidate, suffix = name, 2
    while candidate.casefold() in taken:
        tail = f"（{suffix}）"
        candidate = name[: _SHEET_NAME_MAX - len(tail)] + tail
        suffix += 1
    taken.add(candidate.casefold())
    return candidate


def _chunks(rows: Sequence[tuple[Value, ...]]) -> Iterator[Sequence[tuple[Value, ...]]]:
    """The rows in slices one sheet can hold; an empty table still gets its sheet of headers."""
    yield rows[:SHEET_ROWS]
    for start in range(SHEET_ROWS, len(rows), SHEET_ROWS):
        yield rows[start:start + SHEET_ROWS]


def to_xlsx(tables: Sequence[Table]) -> bytes:
    """The tables as one workbook, a sheet each. Streamed (write-only mode): 100,000 audit rows fit."""
    book = Workbook(write_only=True)
    if not tables:
        book.create_sheet(EMPTY_SHEET)
    taken: set[str] = set()
    for table, name in zip(tables, sheet_names(tables), strict=True):
        taken.add(name.casefold())
        widths = column_widths(table)
        for part, rows in enumerate(_chunks(table.rows)):
            title = name if part == 0 else _distinct(f"{name[:_SHEET_NAME_MAX - 6]}（续{part}）", taken)
            _write_sheet(book.create_sheet(title), table.headers, rows, widths)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _write_sheet(sheet: WriteOnlyWorksheet, headers: Sequence[str], rows: Iterable[tuple[Value, ...]],
                 widths: Sequence[int]) -> None:
    # Column widths and the frozen pane go before the first row: a write-only sheet writes in order.
    for index, width in enumerate(widths, start=1):
        # The stubs omit a write-only sheet's column_dimensions, which openpyxl has (and writes).
        sheet.column_dimensions[get_column_letter(index)].width = width  # type: ignore[attr-defined]
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header_cells = []
    for header in headers:
        cell = WriteOnlyCell(sheet, value=_clean(header))
        cell.font = bold
        header_cells.append(cell)
    sheet.append(header_cells)
    for row in rows:
        sheet.append([_cell(sheet, value, widths[index] if index < len(widths) else MAX_WIDTH)
                      for index, value in enumerate(row)])


def _clean(text: str) -> str:
    """Text a cell can hold: control characters (a pasted chat message has some) dropped, at most
    Excel's 32,767 characters."""
    return ILLEGAL_CHARACTERS_RE.sub("", text)[:MAX_CELL]


def _cell(sheet: WriteOnlyWorksheet, value: Value, width: int) -> Value | Cell:
    if not isinstance(value, str):
        return value
    text = _clean(value)
    long = "\n" in text or display_width(text) > width
    if not long and not text.startswith("=") and text not in ERROR_CODES:
        return text
    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"  # never a formula or an error code: this is what somebody wrote
    if long:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    return cell


def csv_cells(row: Iterable[Value]) -> list[str]:
    """One row's cells for a CSV file: None empty, numbers as written, text Excel would take for a
    formula prefixed with an apostrophe (Excel's own mark for "this is text")."""
    cells: list[str] = []
    for value in row:
        text = _text(value)
        if isinstance(value, str) and len(text) > 1 and text.startswith(_FORMULA_START) and not _number(text):
            text = "'" + text
        cells.append(text)
    return cells


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def to_csv(table: Table) -> str:
    """The table as CSV text (header row first, CRLF line ends as Excel writes them). Write it with
    `open(path, "w", encoding=CSV_ENCODING, newline="")` so that the file starts with the BOM."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(csv_cells(table.headers))
    for row in table.rows:
        writer.writerow(csv_cells(row))
    return out.getvalue()
