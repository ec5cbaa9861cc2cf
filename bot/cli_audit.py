"""`dutybot audit export`: the append-only audit trail as CSV or JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
from datetime import date, datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from sqlalchemy.exc import OperationalError

from bot.cli_locate import CliError, locate, require_current
from store import audit
from store.db import Database

AUDIT_COLUMNS = ["id", "at", "item", "actor", "actor_name", "chat", "action", "detail", "before", "after"]
DEFAULT_ZONE = "Asia/Shanghai"
BAD_DATE = "日期“{text}”格式不对，请写成 YYYY-MM-DD，例如 2026-11-01。"
PROGRESS = "\r已导出 {count} 条……"
DONE = "\r共导出 {count} 条审计记录（自 {since} 起）。"
UNREADABLE = "无法读取审计记录（{error}）。数据库结构可能未初始化，请先运行 `dutybot db upgrade`。"


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CliError(BAD_DATE.format(text=text)) from exc


async def _export(url: str, since: datetime, fmt: str, out: TextIO, names: dict[str, str],
                  tz: ZoneInfo, progress: bool) -> int:
    db = Database(url)
    count = 0
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(AUDIT_COLUMNS)
    try:
        async with db.read() as session:
            async for event, number in audit.stream_since(session, since):
                row = {
                    "id": event.id, "at": event.at.astimezone(tz).isoformat(),
                    "item": f"#{number}" if number is not None else "", "actor": event.actor,
                    "actor_name": names.get(event.actor, ""), "chat": event.chat_id or "",
                    "action": event.action, "detail": event.detail, "before": event.before, "after": event.after,
                }
                if writer is not None:
                    writer.writerow([json.dumps(row[c], ensure_ascii=False) if c in ("before", "after")
                                     else row[c] for c in AUDIT_COLUMNS])
                else:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
                if progress and count % 1000 == 0:
                    print(PROGRESS.format(count=count), end="", file=sys.stderr, flush=True)
    finally:
        await db.dispose()
    return count


def cmd_audit_export(args: argparse.Namespace) -> int:
    located = locate(args.config, args.database, os.environ)
    url = located.url()
    located.announce()
    config = located.config
    tz = config.tz if config else ZoneInfo(DEFAULT_ZONE)
    names = {p.id: p.name for p in config.people} if config else {}
    since = datetime.combine(parse_date(args.since), datetime.min.time(), tzinfo=tz)
    # Before the output file is opened: a mistyped path leaves neither an empty database nor an empty file.
    asyncio.run(require_current(url))
    out: TextIO
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        count = asyncio.run(_export(url, since, args.format, out, names, tz, progress=bool(args.output)))
    except BrokenPipeError:
        # The reader (e.g. `| head`) stopped early: that is not an error of ours.
        sys.stderr.close()
        return 0
    except OperationalError as exc:
        raise CliError(UNREADABLE.format(error=exc.orig)) from exc
    finally:
        if args.output:
            out.close()
    print(DONE.format(count=count, since=args.since), file=sys.stderr)
    return 0
