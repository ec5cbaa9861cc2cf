"""`dutybot report daily --date D [--chat ID] [--format md|docx] [-o FILE]`: the 舆情日志 on demand.

The log of day D covers D's log time (default 08:30) to the next day's, as the one posted to the
chats (handlers/records/daily.py); without --date, the last complete one (posted this morning).
Without --chat the whole county's (as the coordinators' chat gets it). Markdown to standard output
or a file; DOCX (official layout, bot/documents/docx.py) to a file only. Like every report command
it finds the configuration and database as `dutybot audit export` does (bot/cli_locate.py).
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
from domain.config import ChatConfig, Config
from domain.directory import Directory
from handlers.records.daily import build_daily_log
from handlers.records.daily_facts import current_day, period_of
from handlers.records.document import Document
from store.db import Database

FORMATS = ("md", "docx")
BAD_DATE = "日期“{text}”格式不对，请写成 YYYY-MM-DD，例如 2026-11-25。"
UNKNOWN_CHAT = "配置中没有群聊“{chat}”。可用的群聊编号：{chats}"
NOT_BEGUN = "{day} 的日志自 {day} {time} 起统计，尚未开始。"
WRITTEN = "已生成舆情日志：{path}"


def add_daily_command(report_sub: Any) -> None:
    daily = report_sub.add_parser("daily", help="舆情日志（某一值班日，默认最近一个完整的值班日）")
    daily.add_argument("--date", metavar="日期", help="值班日 YYYY-MM-DD：统计该日日志时间（默认 08:30）至次日同一时间"
                                                    "（默认：最近一个完整的值班日，即今天早上发送的日志）")
    daily.add_argument("--chat", metavar="群聊", help="群聊编号（chats[].id）：该群的日志；不写则为全县")
    daily.add_argument("--format", choices=FORMATS,
                       help="输出格式：md（Markdown）或 docx（Word）；默认按输出文件的扩展名，否则 md")
    daily.add_argument("--output", "-o", help="输出文件（默认标准输出；docx 须指定文件）")
    add_location_options(daily)
    daily.set_defaults(func=cmd_report_daily)


def chat_of(config: Config, chat_id: str | None) -> ChatConfig | None:
    if chat_id is None:
        return None
    chat = next((c for c in config.chats if c.id == chat_id), None)
    if chat is None:
        raise CliError(UNKNOWN_CHAT.format(chat=chat_id, chats="、".join(c.id for c in config.chats)))
    return chat


def day_of(text: str | None, config: Config, clock: Clock) -> date:
    if text is None:
        return current_day(clock.now(), config.records.daily_log_time, config.tz) - date.resolution
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CliError(BAD_DATE.format(text=text)) from exc


async def daily_document(url: str, config: Config, chat: ChatConfig | None, day: date, clock: Clock) -> Document:
    period = period_of(day, config.records.daily_log_time, config.tz, clock.now())
    if period.partial and period.end <= period.start:
        raise CliError(NOT_BEGUN.format(day=day.isoformat(), time=f"{config.records.daily_log_time:%H:%M}"))
    db = Database(url)
    try:
        async with db.read() as session:
            return await build_daily_log(session, config, Directory(config), chat, period)
    finally:
        await db.dispose()


def cmd_report_daily(args: argparse.Namespace, clock: Clock | None = None) -> int:
    clock = clock or SystemClock()
    located = locate(args.config, args.database, os.environ)
    config = located.require_config()
    url = located.url()
    located.announce()
    fmt = output_format(args.format, args.output, FORMATS)
    require_file(fmt, args.output, "舆情日志")
    chat = chat_of(config, args.chat)
    day = day_of(args.date, config, clock)
    asyncio.run(require_current(url))
    doc = asyncio.run(daily_document(url, config, chat, day, clock))
    write_document(doc, fmt, args.output)
    if args.output:
        print(WRITTEN.format(path=args.output), file=sys.stderr)
    return 0
