"""`dutybot report period --from D --to D [--format md|xlsx|csv|docx] [-o FILE]`: the 定期通报 on demand.

The days D … D (inclusive, local time); without them, last Monday–Sunday (the weekly notice). A
period not over yet is counted up to now. Markdown to standard output or a file; XLSX (one sheet
per table, bot/documents/tables.py) and DOCX (official layout) to a file only; CSV (UTF-8 with BOM,
for Excel) to a file or standard output — its tables one after another, each under its name. Like
every report command it finds the configuration and database as `dutybot audit export` does
(bot/cli_locate.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import date
from typing import Any

from bot.cli_locate import CliError, add_location_options, locate, require_current
from bot.cli_report_output import output_format, require_file, write_document
from bot.clock import Clock, SystemClock
from domain.config import Config
from domain.directory import Directory
from handlers.records.document import Document
from handlers.records.period import Period, Span, last_week, period_notice
from handlers.records.period_doc import period_document
from store.db import Database

FORMATS = ("md", "xlsx", "csv", "docx")
BAD_DATE = "日期“{text}”格式不对，请写成 YYYY-MM-DD，例如 2026-11-01。"
BOTH_OR_NEITHER = "--from 与 --to 须同时给出（都不写：上周一至周日）。"
BACKWARDS = "--from {first} 晚于 --to {last}，请核对。"
NOT_BEGUN = "统计时段自 {first} 起，尚未开始。"
WRITTEN = "已生成定期通报：{path}"


def add_period_command(report_sub: Any) -> None:
    period = report_sub.add_parser("period", help="定期通报（某一时段各单位的签收、回应时效，默认上周）")
    period.add_argument("--from", dest="first", metavar="日期", help="起始日 YYYY-MM-DD（含）")
    period.add_argument("--to", dest="last", metavar="日期", help="结束日 YYYY-MM-DD（含）；都不写：上周一至周日")
    period.add_argument("--format", choices=FORMATS,
                        help="输出格式：md（Markdown）、xlsx（Excel，每表一页）、csv（Excel 可直接打开）"
                             "或 docx（Word）；默认按输出文件的扩展名，否则 md")
    period.add_argument("--output", "-o", help="输出文件（默认标准输出；xlsx、docx 须指定文件）")
    add_location_options(period)
    period.set_defaults(func=cmd_report_period)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CliError(BAD_DATE.format(text=text)) from exc


def period_of(first: str | None, last: str | None, config: Config, clock: Clock) -> Period:
    today = clock.now().astimezone(config.tz).date()
    if first is None and last is None:
        return last_week(today)
    if first is None or last is None:
        raise CliError(BOTH_OR_NEITHER)
    period = Period(_day(first), _day(last), Span.DAYS)
    if period.last < period.first:
        raise CliError(BACKWARDS.format(first=first, last=last))
    if period.first > today:
        raise CliError(NOT_BEGUN.format(first=first))
    return period


async def period_doc(url: str, config: Config, period: Period, clock: Clock) -> Document:
    db = Database(url)
    directory = Directory(config)
    try:
        async with db.read() as session:
            notice = await period_notice(session, config, directory, period, clock.now())
    finally:
        await db.dispose()
    return period_document(notice, directory)


def cmd_report_period(args: argparse.Namespace, clock: Clock | None = None) -> int:
    clock = clock or SystemClock()
    located = locate(args.config, args.database, os.environ)
    config = located.require_config()
    url = located.url()
    located.announce()
    fmt = output_format(args.format, args.output, FORMATS)
    require_file(fmt, args.output, "定期通报")
    period = period_of(args.first, args.last, config, clock)
    asyncio.run(require_current(url))
    doc = asyncio.run(period_doc(url, config, period, clock))
    write_document(doc, fmt, args.output)
    if args.output:
        print(WRITTEN.format(path=args.output), file=sys.stderr)
    return 0
