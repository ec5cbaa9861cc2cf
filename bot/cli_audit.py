"""`dutybot audit export`: the append-only audit trail for 考核/追责, as CSV, Excel or JSON lines.

Every format names the actions in Chinese (handlers/actions.py). CSV and XLSX have Chinese column
headers and are meant to be opened in Excel (the CSV starts with a BOM, bot/documents/tables.py);
JSON lines keep the machine codes (`action`) beside the Chinese names (`action_label`) for scripts.
`--item` exports one item's rows, `--unit` a unit's: the rows of every item it is or was lead or
co-unit of, and its own rows about no item (its chats, its people, rows that name it).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy.exc import OperationalError

from bot.cli_audit_scope import Scope, resolve_scope
from bot.cli_locate import CliError, locate, require_current
from bot.cli_report_output import output_format
from bot.documents.tables import CSV_ENCODING, csv_cells, to_xlsx
from domain.config import Config
from handlers.actions import action_label
from handlers.records.document import Table
from store import audit_export
from store.audit_export import ExportedEvent
from store.db import Database

FORMATS = ("csv", "jsonl", "xlsx")
SHEET = "审计记录"
# CSV and XLSX columns. 记录号 is the row's id, the order rows were written in (not gap-free: an
# aborted transaction on PostgreSQL uses up numbers).
COLUMNS = ("记录号", "时间", "线索编号", "操作", "操作人", "操作人编号", "群", "说明", "变更前", "变更后", "涉密")
# Set, not measured: measuring 100,000 rows would cost more than the export itself.
WIDTHS = (9, 21, 10, 16, 14, 16, 28, 50, 40, 40, 6)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_ZONE = "Asia/Shanghai"
CLI_ACTOR = "命令行"
BAD_DATE = "日期“{text}”格式不对，请写成 YYYY-MM-DD，例如 2026-11-01。"
PROGRESS = "\r已导出 {count} 条……"
WRITING_XLSX = "\r正在生成 Excel 文件（{count} 条）……"
DONE = "\r共导出 {count} 条审计记录（自 {since} 起{scope}）。"
XLSX_TO_TERMINAL = "Excel 文件不能输出到终端，请用 -o 指定文件，例如：-o 审计记录.xlsx"
UNREADABLE = "无法读取审计记录（{error}）。数据库结构可能未初始化，请先运行 `dutybot db upgrade`。"


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CliError(BAD_DATE.format(text=text)) from exc


@dataclass(frozen=True)
class Labels:
    """What turns the stored ids into what a reader recognises: names, chats, local time."""

    tz: ZoneInfo
    people: dict[str, str]
    chats: dict[str, str]
    bot_name: str

    @classmethod
    def of(cls, config: Config | None) -> Labels:
        if config is None:
            return cls(ZoneInfo(DEFAULT_ZONE), {}, {}, "bot")
        return cls(config.tz, {p.id: p.name for p in config.people}, {c.id: c.name for c in config.chats},
                   config.bot.name)

    def actor(self, actor: str) -> str:
        """A person's name; the bot's; 命令行 for the CLI; an intake system by the name it has."""
        if actor in self.people:
            return self.people[actor]
        return {"bot": self.bot_name, "cli": CLI_ACTOR}.get(actor, actor)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False) if value else ""


def json_record(row: ExportedEvent, labels: Labels) -> dict[str, Any]:
    """One JSON line: machine codes and ids, each with its reader's label beside it."""
    event = row.event
    return {
        "id": event.id, "at": event.at.astimezone(labels.tz).isoformat(),
        "item": f"#{row.number}" if row.number is not None else "", "actor": event.actor,
        "actor_name": labels.actor(event.actor), "chat": event.chat_id or "",
        "chat_name": labels.chats.get(event.chat_id or "", event.chat_id or ""),
        "action": event.action, "action_label": action_label(event.action), "detail": event.detail,
        "before": event.before, "after": event.after, "classified": row.classified,
    }


def table_row(row: ExportedEvent, labels: Labels) -> tuple[str | int, ...]:
    """One row of COLUMNS (CSV and XLSX): times in local time as text, before/after as JSON."""
    event = row.event
    chat = event.chat_id or ""
    return (
        event.id, event.at.astimezone(labels.tz).strftime(TIME_FORMAT),
        f"#{row.number}" if row.number is not None else "", action_label(event.action),
        labels.actor(event.actor), event.actor, labels.chats.get(chat, chat), event.detail,
        _json(event.before or {}), _json(event.after or {}), "是" if row.classified else "",
    )


class Sink:
    """Where rows go, by format: CSV and JSON lines as they are read, XLSX all at the end."""

    def __init__(self, fmt: str, labels: Labels, text: TextIO | None) -> None:
        self.fmt, self.labels, self.text = fmt, labels, text
        self.rows: list[tuple[str | int, ...]] = []
        self._csv = csv.writer(text) if fmt == "csv" and text is not None else None
        if self._csv is not None:
            self._csv.writerow(COLUMNS)

    def add(self, row: ExportedEvent) -> None:
        if self.fmt == "jsonl" and self.text is not None:
            self.text.write(json.dumps(json_record(row, self.labels), ensure_ascii=False) + "\n")
        elif self._csv is not None:
            self._csv.writerow(csv_cells(table_row(row, self.labels)))
        else:
            self.rows.append(table_row(row, self.labels))

    def workbook(self) -> bytes:
        return to_xlsx([Table(SHEET, COLUMNS, tuple(self.rows), WIDTHS)])


async def _export(url: str, since: datetime, scope: Scope, sink: Sink, progress: Callable[[int], None]) -> int:
    db = Database(url)
    count = scanned = 0
    try:
        async with db.read() as session:
            async for row in audit_export.stream(session, since, item_id=scope.item_id):
                scanned += 1
                if scope.keeps(row):
                    sink.add(row)
                    count += 1
                if scanned % 1000 == 0:
                    progress(count)
    finally:
        await db.dispose()
    return count


def _stderr(text: str) -> None:
    print(text, end="", file=sys.stderr, flush=True)


def cmd_audit_export(args: argparse.Namespace) -> int:
    located = locate(args.config, args.database, os.environ)
    url = located.url()
    located.announce()
    labels = Labels.of(located.config)
    fmt = output_format(args.format, args.output, FORMATS, default="csv")
    since = datetime.combine(parse_date(args.since), datetime.min.time(), tzinfo=labels.tz)
    if fmt == "xlsx" and not args.output and sys.stdout.isatty():
        raise CliError(XLSX_TO_TERMINAL)
    # Before the output file is opened: a mistyped path, item or unit leaves neither an empty
    # database nor an empty file.
    asyncio.run(require_current(url))
    scope = asyncio.run(resolve_scope(url, located.config, args.unit, args.item))
    text: TextIO | None = None
    if fmt != "xlsx":
        # The BOM on standard output too: `> 审计.csv` is the usual way to a file Excel opens.
        text = open(args.output, "w", encoding=CSV_ENCODING if fmt == "csv" else "utf-8", newline="") \
            if args.output else sys.stdout
        if fmt == "csv" and not args.output:
            text.write("\ufeff")
    show = bool(args.output)  # progress only beside a file: on a terminal it would cut into the rows
    sink = Sink(fmt, labels, text)

    def progress(count: int) -> None:
        if show:
            _stderr(PROGRESS.format(count=count))

    try:
        count = asyncio.run(_export(url, since, scope, sink, progress))
        if fmt == "xlsx":
            if show:
                _stderr(WRITING_XLSX.format(count=count))
            _write_bytes(args.output, sink.workbook())
    except BrokenPipeError:
        # The reader (e.g. `| head`) stopped early: that is not an error of ours.
        sys.stderr.close()
        return 0
    except OperationalError as exc:
        raise CliError(UNREADABLE.format(error=exc.orig)) from exc
    finally:
        if args.output and text is not None:
            text.close()
    print(DONE.format(count=count, since=args.since, scope=scope.describe()), file=sys.stderr)
    return 0


def _write_bytes(output: str | None, data: bytes) -> None:
    if output:
        Path(output).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
