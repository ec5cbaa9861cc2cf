"""Where a `dutybot report` command writes its document, shared by the three records: the format
(given, else the output file's suffix, else Markdown), the refusal to print a binary file on the
terminal, and the writing itself (xlsx/docx bytes, csv with a BOM so Excel reads it, Markdown)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from bot.cli_locate import CliError
from bot.documents.docx import to_docx
from bot.documents.markdown import to_markdown
from bot.documents.tables import CSV_ENCODING, to_csv, to_xlsx
from handlers.records.document import Document

BINARY = {"xlsx": "Excel", "docx": "Word"}
TO_TERMINAL = "{name} 文件不能输出到终端，请用 -o 指定文件，例如：-o {example}.{fmt}"


def output_format(given: str | None, output: str | None, formats: Sequence[str], default: str = "md") -> str:
    """--format when given, else the output file's suffix (-o 通报.xlsx), else `default`."""
    if given:
        return given
    suffix = Path(output).suffix.lower().lstrip(".") if output else ""
    return suffix if suffix in formats else default


def require_file(fmt: str, output: str | None, example: str) -> None:
    if fmt in BINARY and not output:
        raise CliError(TO_TERMINAL.format(name=BINARY[fmt], fmt=fmt, example=example))


def csv_text(doc: Document) -> str:
    """Every table of the document, one after another, each under a line with its name."""
    return "\r\n".join(f"{table.name}\r\n{to_csv(table)}" for table in doc.tables())


def write_document(doc: Document, fmt: str, output: str | None) -> None:
    if fmt == "xlsx" and output:
        Path(output).write_bytes(to_xlsx(doc.tables()))
    elif fmt == "docx" and output:
        Path(output).write_bytes(to_docx(doc))
    elif fmt == "csv" and output:
        with open(output, "w", encoding=CSV_ENCODING, newline="") as out:
            out.write(csv_text(doc))
    elif fmt == "csv":
        sys.stdout.write(csv_text(doc))
    elif output:
        Path(output).write_text(to_markdown(doc), encoding="utf-8")
    else:
        sys.stdout.write(to_markdown(doc))
    sys.stdout.flush()
