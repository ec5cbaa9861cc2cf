"""`dutybot roster …`: import, export, show and check the roster; the demo's example roster."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli_locate import CliError, add_location_options, locate, require_current
from bot.clock import SystemClock
from bot.roster_io import SCHEDULE_COLUMNS, RosterFileError, ics, read_rows, schedule_rows, write_table
from domain.config import Config
from domain.directory import Directory
from handlers.roster_import import COLUMNS, ImportBatch, RowError, validate
from handlers.roster_import_review import Review, Reviewer, review_import, slots_before
from handlers.roster_rules import Segment
from handlers.roster_service import Roster, apply_import, segments_for_days
from handlers.roster_view import coverage_lines, group_shifts, name_of, table, when_label
from store import roster as store
from store.db import Database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

BUNDLED_ROSTER = Path(__file__).resolve().parent / "examples" / "roster.example.csv"
CLI_ACTOR = "cli"

IMPORT_ERRORS = "{file} 有 {count} 行有误，未导入任何内容："
IMPORT_OK = "{file}：{summary}，校验通过。"
IMPORT_DRY = "（--dry-run：未写入数据库）"
IMPORT_DONE = "已导入，排班已生成至 {until}。"
IMPORT_REVIEW = "导入后的值班安排（按导入后的值班表读出）："
IMPORT_REVIEW_DRY = "导入后将是（按导入后的值班表读出）："
CHECK_RANGE = "检查范围：{start} 至 {end}（{days}天）"
CHECK_NO_ROSTER = "未启用排班的群（使用配置中的值班人员）：{chats}"
CHECK_NONE = "数据库中还没有排班表。请先运行 `dutybot roster import 文件`。"
SHOW_NONE = "数据库中还没有值班表，没有可显示的班次。请先运行 `dutybot roster import 文件` 导入。"
CHECK_TOTAL_OK = "检查完成：无缺口。"
CHECK_TOTAL_GAPS = "检查完成：共 {count} 处缺口。"
SHOW_EMPTY = "{chat}：{first} 至 {last} 没有班次。"
DEMO_IMPORTED = "已导入示例值班表：{file}"


def _cli_error(message: str) -> Exception:
    return CliError(message)


def _config(args: argparse.Namespace) -> Config:
    """The config and database every command finds (bot/cli_locate.py), announced on stderr."""
    located = locate(args.config, args.database, os.environ)
    config = located.require_config()
    located.announce()
    return config


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise _cli_error(f"日期“{text}”格式不对，请写成 YYYY-MM-DD，例如 2026-11-25。") from exc


def _chat_name(config: Config, chat_id: str) -> str:
    return next((c.name for c in config.chats if c.id == chat_id), chat_id)


async def _open(config: Config) -> Database:
    db = Database(config.database.url)
    await db.upgrade()
    return db


async def _open_existing(config: Config) -> Database:
    """For reading: an existing database at this code's schema, never created or changed here."""
    await require_current(config.database.url)
    return Database(config.database.url)


# -- import -----------------------------------------------------------------------------------------


async def _import(config: Config, path: Path, dry_run: bool, now: datetime) -> int:
    try:
        rows = read_rows(path)
    except RosterFileError as exc:
        raise _cli_error(f"{path}：{exc}") from exc
    db = await _open(config)
    try:
        roster = Roster.build(config, Directory(config))
        async with db.read() as session:
            existing = await store.shift_names(session)
        batch, errors = validate(rows, config, existing)
        if errors:
            _print_errors(path, errors)
            return 1
        try:
            review = await _apply_and_review(db, roster, batch, now, keep=not dry_run)
        except _Refused as refused:
            _print_errors(path, refused.review.errors)
            return 1
        print(IMPORT_OK.format(file=path, summary=batch.summary()))
        if review.lines:
            print(IMPORT_REVIEW if not dry_run else IMPORT_REVIEW_DRY)
            print("\n".join(review.confirmation()))
        if dry_run:
            print(IMPORT_DRY)
            return 0
        print(IMPORT_DONE.format(until=roster.horizon(now).isoformat()))
        return 0
    finally:
        await db.dispose()


class _Refused(Exception):
    """Rolls the import's transaction back: a row the written roster shows to be wrong."""

    def __init__(self, review: Review) -> None:
        super().__init__("roster import refused")
        self.review = review


class _DryRun(Exception):
    """Rolls a dry run's transaction back once its review is read."""

    def __init__(self, review: Review) -> None:
        super().__init__("dry run")
        self.review = review


async def _apply_and_review(db: Database, roster: Roster, batch: ImportBatch, now: datetime, *, keep: bool) -> Review:
    """Write the batch, re-resolve the roster and read back what it did — in one transaction that
    is committed only when `keep` and no row puts someone on duty while on leave. A dry run
    goes the same way and is rolled back, so it shows exactly what the import would do."""
    try:
        async with db.transaction() as session:
            before = await slots_before(session, batch, now)
            await apply_import(roster, session, batch, now, CLI_ACTOR)
            reviewer = Reviewer(session, roster.directory, roster.config.tz, now)
            review = await review_import(reviewer, batch, before)
            if review.errors:
                raise _Refused(review)
            if not keep:
                raise _DryRun(review)
    except _DryRun as dry:
        return dry.review
    return review


def _print_errors(path: Path, errors: list[RowError]) -> None:
    print(IMPORT_ERRORS.format(file=path, count=len({e.row for e in errors})), file=sys.stderr)
    for error in errors:
        print(f"  {error}", file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> int:
    config = _config(args)
    return asyncio.run(_import(config, Path(args.file), args.dry_run, SystemClock().now()))


# -- check ------------------------------------------------------------------------------------------


async def _check(config: Config, start: datetime, days: int, chat: str | None) -> int:
    db = await _open_existing(config)
    try:
        roster = Roster.build(config, Directory(config))
        end = start + timedelta(days=days)
        async with db.read() as session:
            chats = await store.roster_chats(session)
            if not chats:
                print(CHECK_NONE, file=sys.stderr)
                return 1
            results = await roster.check(session, start, end, [chat] if chat else chats)
        print(CHECK_RANGE.format(start=when_label(start, config.tz), end=when_label(end, config.tz), days=days))
        lines, total = coverage_lines(results, roster.directory, config.tz)
        print("\n".join(lines))
        rest = [c.id for c in config.chats if c.id not in chats and not c.admins]
        if rest and chat is None:
            print(CHECK_NO_ROSTER.format(chats="、".join(rest)))
        print(CHECK_TOTAL_GAPS.format(count=total) if total else CHECK_TOTAL_OK)
        return 1 if total else 0
    finally:
        await db.dispose()


def _start(config: Config, text: str | None) -> datetime:
    if text is None:
        return SystemClock().now()
    return datetime.combine(_parse_day(text), time(0), tzinfo=config.tz).astimezone(UTC)


def cmd_check(args: argparse.Namespace) -> int:
    config = _config(args)
    return asyncio.run(_check(config, _start(config, args.start), args.days, args.chat))


# -- show and export --------------------------------------------------------------------------------


async def _segments(db: Database, roster: Roster, chats: list[str], first: date, last: date,
                    person: str | None) -> list[tuple[str, Segment]]:
    found: list[tuple[str, Segment]] = []
    async with db.read() as session:
        for chat_id in chats:
            found += [(chat_id, s) for s in await segments_for_days(roster, session, chat_id, first, last)
                      if person is None or s.person == person]
    found.sort(key=lambda pair: (pair[1].start, pair[0]))
    return found


async def _chats(db: Database, chat: str | None) -> list[str]:
    async with db.read() as session:
        chats = await store.roster_chats(session)
    if chat is not None:
        if chat not in chats:
            raise _cli_error(f"群聊“{chat}”没有排班表。有排班表的群聊：{'、'.join(chats) or '无'}。")
        return [chat]
    return chats


async def _show(config: Config, first: date, days: int, chat: str | None) -> int:
    db = await _open_existing(config)
    try:
        roster = Roster.build(config, Directory(config))
        last = first + timedelta(days=days - 1)
        chats = await _chats(db, chat)
        if not chats:
            print(SHOW_NONE, file=sys.stderr)
            return 1
        for chat_id in chats:
            segments = [s for _, s in await _segments(db, roster, [chat_id], first, last, None)]
            if not segments:
                print(SHOW_EMPTY.format(chat=_chat_name(config, chat_id), first=first, last=last))
                continue
            print("\n".join(table(group_shifts(segments), roster.calendar.info, roster.directory, config.tz,
                                  _chat_name(config, chat_id))))
            print()
        return 0
    finally:
        await db.dispose()


def cmd_show(args: argparse.Namespace) -> int:
    config = _config(args)
    first = _parse_day(args.start) if args.start else SystemClock().now().astimezone(config.tz).date()
    return asyncio.run(_show(config, first, args.days, args.chat))


async def _definition_rows(session: AsyncSession, chats: list[str]) -> list[list[str]]:
    """The roster's definitions in the import layout (so an export can be edited and imported again)."""
    blank = dict.fromkeys(COLUMNS, "")
    rows: list[dict[str, str]] = []
    for chat_id in chats:
        for t in await store.templates(session, chat_id):
            rows.append(blank | {"类型": "班次", "群聊": chat_id, "班次": t.name, "日期类型": t.day_type,
                                 "开始": t.start_time, "结束": t.end_time, "值班员人数": str(t.officers),
                                 "带班领导人数": str(t.leaders)})
        for r in await store.rotations(session, chat_id):
            rows.append(blank | {"类型": "轮班", "群聊": chat_id, "班次": "、".join(r.shifts), "角色": r.role,
                                 "人员": "、".join(r.people), "轮换": r.advance, "日期": r.start_date.isoformat()})
    return [[row[c] for c in COLUMNS] for row in rows]


async def _export(config: Config, args: argparse.Namespace) -> int:
    db = await _open_existing(config)
    try:
        roster = Roster.build(config, Directory(config))
        chats = await _chats(db, args.chat)
        output = Path(args.output) if args.output else None
        if args.definitions:
            if args.format == "ics":
                raise _cli_error("--definitions 只能导出为 csv 或 xlsx。")
            async with db.read() as session:
                rows = await _definition_rows(session, chats)
            return _emit(write_table(output, COLUMNS, rows, args.format), output)
        first = _parse_day(args.start) if args.start else SystemClock().now().astimezone(config.tz).date()
        last = first + timedelta(days=args.days - 1)
        person = None
        if args.person:
            person = next((p.id for p in config.people if args.person in (p.id, p.name)), None)
            if person is None:
                raise _cli_error(f"人员“{args.person}”不在配置中。")
        segments = await _segments(db, roster, chats, first, last, person)
        if args.format == "ics":
            who = name_of(person, roster.directory) if person else "、".join(_chat_name(config, c) for c in chats)
            calendar = ics(segments, roster.directory, config.tz, f"值班表：{who}")
            if output is not None:
                output.write_bytes(calendar)
            return _emit(calendar, output)
        rows = schedule_rows(segments, roster.directory, roster.calendar, config.tz)
        return _emit(write_table(output, SCHEDULE_COLUMNS, rows, args.format), output)
    finally:
        await db.dispose()


def _emit(data: bytes | str, output: Path | None) -> int:
    if output is None:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            sys.stdout.write(data)
    else:
        print(f"已导出：{output}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.format == "xlsx" and not args.output:
        raise _cli_error("导出 xlsx 时请用 -o 文件 指定输出文件。")
    return asyncio.run(_export(config, args))


# -- demo -----------------------------------------------------------------------------------------------


async def ensure_demo_roster(config: Config, now: datetime | None = None) -> str | None:
    """On the demo's first start, import the example roster (this year and next); returns the file used."""
    now = now or SystemClock().now()
    path = Path(config.roster.example_file) if config.roster.example_file else BUNDLED_ROSTER
    db = await _open(config)
    try:
        async with db.read() as session:
            if await store.roster_chats(session):
                return None
        batch, errors = validate(read_rows(path), config, {})
        if errors:
            raise _cli_error(f"示例值班表 {path} 有误：" + "；".join(str(e) for e in errors))
        roster = Roster.build(config, Directory(config))
        next_year_end = date(now.astimezone(config.tz).year + 1, 12, 31)
        async with db.transaction() as session:
            await apply_import(roster, session, batch, now, CLI_ACTOR, until=next_year_end)
        return str(path)
    finally:
        await db.dispose()


# -- parser ---------------------------------------------------------------------------------------------


def add_roster_commands(subparsers: Any) -> None:
    """`dutybot roster import|export|show|check`."""
    roster = subparsers.add_parser("roster", help="值班表：导入、导出、查看、检查缺口")
    sub = roster.add_subparsers(dest="roster_command", required=True, metavar="操作")

    imp = sub.add_parser("import", help="从 .xlsx 或 .csv 导入值班表（任一行有误则不导入）")
    imp.add_argument("file", help="值班表文件（列的格式见 docs/ROSTER.md）")
    imp.add_argument("--dry-run", action="store_true", help="只校验，不写入")
    add_location_options(imp)
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser("export", help="导出值班表：xlsx、csv 或 ics（日历）")
    exp.add_argument("--format", choices=["xlsx", "csv", "ics"], default="csv", help="导出格式（默认 csv）")
    exp.add_argument("--from", dest="start", help="起始日期 YYYY-MM-DD（默认今天）")
    exp.add_argument("--days", type=int, default=31, help="天数（默认 31）")
    exp.add_argument("--chat", help="只导出该群（默认所有有排班表的群）")
    exp.add_argument("--person", help="只导出该人员（编号或姓名），例如个人日历")
    exp.add_argument("--definitions", action="store_true", help="导出班次和轮班定义（导入格式）")
    exp.add_argument("--output", "-o", help="输出文件（默认标准输出）")
    add_location_options(exp)
    exp.set_defaults(func=cmd_export)

    show = sub.add_parser("show", help="在终端显示值班表")
    show.add_argument("--from", dest="start", help="起始日期 YYYY-MM-DD（默认今天）")
    show.add_argument("--days", type=int, default=7, help="天数（默认 7）")
    show.add_argument("--chat", help="只显示该群")
    add_location_options(show)
    show.set_defaults(func=cmd_show)

    check = sub.add_parser("check", help="检查缺口和无法联系的值班人员；有缺口时退出码为 1")
    check.add_argument("--days", type=int, default=30, help="检查天数（默认 30）")
    check.add_argument("--from", dest="start", help="起始日期 YYYY-MM-DD（默认现在）")
    check.add_argument("--chat", help="只检查该群")
    add_location_options(check)
    check.set_defaults(func=cmd_check)
