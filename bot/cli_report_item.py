"""`dutybot report item N [--kind 首报|续报|终报] [--format md|docx] [-o FILE] [--drafter 人员]
[--classified]`: one item's 舆情专报 (handlers/records/special.py) on demand.

Markdown to standard output or a file; DOCX (official layout, bot/documents/docx.py) to a file
only. The kind follows the item's state unless --kind names it. A 涉密 item is written with its
authorised summary only, as in the chat; --classified writes it in full, and that export is
recorded in the audit trail first (who, which item, where to) — 001 第十七条 keeps 涉密 text to
the channels the rules allow, and 考核/追责 must be able to see who took it out. Like every report
command it finds the configuration and database as `dutybot audit export` does (bot/cli_locate.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli_locate import CliError, add_location_options, locate, require_current
from bot.cli_report_output import output_format, require_file, write_document
from bot.clock import Clock, SystemClock
from domain.config import Config
from domain.directory import Directory
from handlers.parsing import normalize, take_item_ref
from handlers.records.document import Document
from handlers.records.special import Kind, SpecialInput, Writer, kind_of, load
from handlers.records.special_steps import EXPORT_ACTION
from store import audit
from store.db import Database

CLI_ACTOR = "cli"  # as bot/roster_cli.py records what the command line did
BAD_NUMBER = "线索编号“{text}”无法识别，请写成 12、#12 或 12号。"
NOT_FOUND = "未找到线索 #{n}。"
WRITTEN = "已生成舆情专报：{path}"
REDACTED = "#{n} 为涉密线索：仅输出授权摘要。需要全文时加 --classified（导出将记入审计记录）。"
EXPORTED = "#{n} 为涉密线索：已按 --classified 输出全文，并记入审计记录。"
EXPORT_DETAIL = "专报（{kind}）涉密全文，拟稿人：{drafter}，输出至：{target}"
STDOUT = "标准输出"


def add_item_command(report_sub: Any) -> None:
    item = report_sub.add_parser("item", help="舆情专报（某一线索的首报、续报或终报）")
    item.add_argument("number", metavar="编号", help="线索编号，例如 12、#12 或 12号")
    item.add_argument("--kind", choices=[k.value for k in Kind],
                      help="专报类别：首报、续报或终报（默认按线索状态：已办结等为终报，已有回应或进展为续报，否则首报）")
    item.add_argument("--format", choices=("md", "docx"),
                      help="输出格式：md（Markdown）或 docx（Word）；默认按输出文件的扩展名，否则 md")
    item.add_argument("--output", "-o", help="输出文件（默认标准输出；docx 须指定文件）")
    item.add_argument("--drafter", metavar="拟稿人", help="拟稿人：人员编号或姓名（默认留空待填）")
    item.add_argument("--classified", action="store_true",
                      help="涉密线索输出全文（默认仅授权摘要）；此次导出记入审计记录")
    add_location_options(item)
    item.set_defaults(func=cmd_report_item)


@dataclass(frozen=True)
class Drafter:
    name: str  # on the 专报's 拟稿人 line
    actor: str  # the audit row's actor: the person's id when configured, else the command line


def drafter_of(text: str | None, config: Config) -> Drafter:
    """A configured person by id or by name, or the name as written."""
    if not text:
        return Drafter("", CLI_ACTOR)
    person = next((p for p in config.people if text in (p.id, p.name)), None)
    return Drafter(person.name, person.id) if person is not None else Drafter(text, CLI_ACTOR)


def number_of(text: str) -> int:
    ref = take_item_ref(normalize(text))  # ＃12 as the chat takes it
    if ref is None or ref[1]:
        raise CliError(BAD_NUMBER.format(text=text))
    return ref[0]


async def item_document(url: str, config: Config, number: int, now: datetime, *, kind: Kind | None,
                        drafter: Drafter, classified: bool, target: str) -> tuple[Document, bool]:
    """The 专报, and whether it is a 涉密 item's. A full 涉密 one is recorded before it is written."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            data = await load(session, number, now)
            if data is None:
                raise CliError(NOT_FOUND.format(n=number))
            full = classified and data.item.classified
            kind = kind or kind_of(data.item, data.events)
            doc = Writer(config, Directory(config)).document(data, kind=kind, drafter=drafter.name, full=full)
            if full:
                await _record_export(session, data, kind, drafter, target, now)
            return doc, data.item.classified
    finally:
        await db.dispose()


async def _record_export(session: AsyncSession, data: SpecialInput, kind: Kind, drafter: Drafter, target: str,
                         now: datetime) -> None:
    await audit.record(session, at=now, actor=drafter.actor, action=EXPORT_ACTION, item_id=data.item.id,
                       detail=EXPORT_DETAIL.format(kind=kind.value, drafter=drafter.name or "未填写", target=target),
                       after={"kind": kind.value, "target": target})


def cmd_report_item(args: argparse.Namespace, clock: Clock | None = None) -> int:
    clock = clock or SystemClock()
    located = locate(args.config, args.database, os.environ)
    config = located.require_config()
    url = located.url()
    located.announce()
    fmt = output_format(args.format, args.output, ("md", "docx"))
    require_file(fmt, args.output, "专报")
    number = number_of(args.number)
    kind = Kind(args.kind) if args.kind else None
    asyncio.run(require_current(url))
    doc, secret = asyncio.run(item_document(
        url, config, number, clock.now(), kind=kind, drafter=drafter_of(args.drafter, config),
        classified=args.classified, target=str(Path(args.output).resolve()) if args.output else STDOUT))
    write_document(doc, fmt, args.output)
    if secret:
        print((EXPORTED if args.classified else REDACTED).format(n=number), file=sys.stderr)
    if args.output:
        print(WRITTEN.format(path=args.output), file=sys.stderr)
    return 0
