"""`dutybot api token create|list|revoke`: the intake API's tokens, one or more per source system.

The config and database are found as by every command (bot/cli_locate.py). `create` is a write
command: it creates or upgrades the database as `roster import` does; `list` and `revoke` use an
existing database at this code's schema only. A token is printed once, alone on the last line of
`create` (scripts take `tail -1`); nothing else ever prints a token or its hash.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.cli_audit import DEFAULT_ZONE
from bot.cli_locate import (
    DB_NEWER,
    DB_UNREADABLE,
    CliError,
    Located,
    add_location_options,
    locate,
    require_current,
    safe_url,
)
from bot.clock import SystemClock
from bot.roster_cli import CLI_ACTOR
from domain.vocab import Scope
from store import api_tokens
from store.db import Database, schema_state
from store.models import ApiToken

SCOPE_LABELS = {
    Scope.ITEMS_WRITE: "上报线索",
    Scope.ITEMS_READ: "查询线索",
    Scope.CLASSIFIED_READ: "查看涉密线索原文",
}
SOURCE_MAX = 64
# Scopes typed on a phone keyboard or pasted from a document: ASCII or full-width commas, 、, spaces.
SCOPE_SEPARATORS = re.compile(r"[,，、;；\s]+")

SCOPE_CHOICES = "、".join(f"{scope.value}（{label}）" for scope, label in SCOPE_LABELS.items())
SCOPES_HELP = f"权限，多个用逗号或顿号分隔：{SCOPE_CHOICES}"
NO_SCOPES = f"请用 --scopes 写明令牌的权限，例如 --scopes items:write,items:read。可选：{SCOPE_CHOICES}。"
UNKNOWN_SCOPES = "未知的权限：{scopes}。{hint}可选：{choices}；多个权限用逗号或顿号分隔。"
DID_YOU_MEAN = "您是否要输入 {scope}？"
NO_SOURCE = "来源名称不能为空，例如 --source 舆情监测系统。"
LONG_SOURCE = "来源名称最长 {most} 个字符（当前 {count} 个）。"

CREATED = "已创建接口令牌："
CREATED_FIELDS = ("编号", "来源", "权限", "前缀")
OTHER_LIVE = ("来源“{source}”另有 {count} 个有效令牌（前缀 {prefixes}）；新令牌启用后，"
              "请用 dutybot api token revoke 前缀 吊销旧令牌。")
SHOWN_ONCE = "令牌只显示这一次（数据库只保存其摘要，无法找回），请立即复制到来源系统中；遗失时吊销后重新创建。"

LIST_HEADER = ("编号", "来源", "权限", "前缀", "创建时间", "最近使用", "状态")
NONE_YET = "还没有接口令牌。"
NONE_YET_HINT = "创建请运行 dutybot api token create --source 来源名称 --scopes items:write,items:read。"
NEVER_USED = "未使用"
LIVE = "有效"
REVOKED_AT = "已吊销 {at}"
TOTAL = "共 {count} 个接口令牌（有效 {live} 个）；时间为 {zone} 时区。"

REVOKED = "已吊销接口令牌 #{id}（来源：{source}，前缀 {prefix}）：此后使用该令牌的请求一律拒绝（401）。"
ALREADY_REVOKED = "接口令牌 #{id}（来源：{source}，前缀 {prefix}）已于 {at} 吊销，无需再次吊销。"
NOT_FOUND = "找不到编号或前缀为“{key}”的接口令牌。请用 dutybot api token list 查看编号和前缀。"
NO_SUCH_TOKEN = "所给令牌（{key}）与任何接口令牌都不符。请用 dutybot api token list 查看编号和前缀，按编号或前缀吊销。"


# -- what the operator typed ------------------------------------------------------------------------


def parse_scopes(text: str) -> list[Scope]:
    """The scopes in `text`, in their canonical order; refused with the valid ones listed."""
    words = [w for w in SCOPE_SEPARATORS.split(text.replace("：", ":").strip().lower()) if w]
    if not words:
        raise CliError(NO_SCOPES)
    valid = {scope.value: scope for scope in Scope}
    unknown = [w for w in dict.fromkeys(words) if w not in valid]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(valid), n=1)
        hint = DID_YOU_MEAN.format(scope=close[0]) if close else ""
        raise CliError(UNKNOWN_SCOPES.format(scopes="、".join(unknown), hint=hint, choices=SCOPE_CHOICES))
    return [scope for scope in Scope if scope.value in words]


def parse_source(text: str) -> str:
    source = " ".join(text.split())
    if not source:
        raise CliError(NO_SOURCE)
    if len(source) > SOURCE_MAX:
        raise CliError(LONG_SOURCE.format(most=SOURCE_MAX, count=len(source)))
    return source


def parse_key(text: str) -> int | str:
    """An id (`3`, `#3`, `＃3`), else a prefix or a whole token."""
    key = text.strip()
    number = key.lstrip("#＃")
    return int(number) if number.isascii() and number.isdigit() else key


def not_found(text: str) -> str:
    """The error for a key that names no token; a pasted token is echoed by its prefix only."""
    key = text.strip()
    if not api_tokens.TOKEN_SHAPE.fullmatch(key):
        return NOT_FOUND.format(key=key)
    return NO_SUCH_TOKEN.format(key=key[: api_tokens.PREFIX_LENGTH] + "…")


# -- rendering --------------------------------------------------------------------------------------


def scopes_text(scopes: Sequence[str], *, labels: bool) -> str:
    if not labels:
        return "、".join(scopes)
    return "、".join(f"{s}（{SCOPE_LABELS[Scope(s)]}）" if s in set(Scope) else s for s in scopes)


def when(at: datetime, tz: ZoneInfo) -> str:
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M}"


def _width(text: str) -> int:
    """Columns on a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows aligned into columns two spaces apart, measured in terminal columns."""
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell + " " * (width - _width(cell)) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines


def token_table(tokens: Sequence[ApiToken], tz: ZoneInfo) -> list[str]:
    """`api token list`: one row per token; never the token or its hash."""
    rows = [list(LIST_HEADER)]
    for t in tokens:
        status = LIVE if t.revoked_at is None else REVOKED_AT.format(at=when(t.revoked_at, tz))
        used = when(t.last_used_at, tz) if t.last_used_at else NEVER_USED
        rows.append([str(t.id), t.source, scopes_text(t.scopes, labels=False), t.prefix, when(t.created_at, tz),
                     used, status])
    live = sum(1 for t in tokens if t.revoked_at is None)
    return [*columns(rows), TOTAL.format(count=len(tokens), live=live, zone=tz.key)]


def created_lines(token: ApiToken, plaintext: str, others: Sequence[ApiToken]) -> list[str]:
    """`api token create`'s output: what was created, a warning, and the token alone last."""
    values = (str(token.id), token.source, scopes_text(token.scopes, labels=True), token.prefix)
    lines = [CREATED, *(f"  {name}：{value}" for name, value in zip(CREATED_FIELDS, values, strict=True))]
    if others:
        prefixes = "、".join(t.prefix for t in others)
        lines.append(OTHER_LIVE.format(source=token.source, count=len(others), prefixes=prefixes))
    return [*lines, SHOWN_ONCE, plaintext]


# -- the database -----------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    return text.splitlines()[0] if text else type(original).__name__


async def _open_for_writing(url: str) -> Database:
    """Like `roster import`: the database created or upgraded to this code's schema — unless a
    newer dutybot wrote it, or it cannot be reached (said, not a traceback)."""
    try:
        state = await schema_state(url)
    except Exception as exc:  # unreachable server, wrong password, a file that is not a database
        raise CliError(DB_UNREADABLE.format(url=safe_url(url), error=_reason(exc))) from exc
    if state.found and not state.known:
        raise CliError(DB_NEWER.format(current="、".join(state.revisions)))
    db = Database(url)
    try:
        await db.upgrade()
    except BaseException:
        await db.dispose()
        raise
    return db


async def _open_existing(url: str) -> Database:
    await require_current(url)
    return Database(url)


def _located(args: argparse.Namespace) -> tuple[Located, str]:
    located = locate(args.config, args.database, os.environ)
    url = located.url()
    located.announce()
    return located, url


def _zone(located: Located) -> ZoneInfo:
    return located.config.tz if located.config is not None else ZoneInfo(DEFAULT_ZONE)


# -- the commands -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Created:
    token: ApiToken
    plaintext: str
    others: list[ApiToken]


async def _create(url: str, source: str, scopes: list[Scope], now: datetime) -> _Created:
    db = await _open_for_writing(url)
    try:
        async with db.transaction() as session:
            others = [t for t in await api_tokens.list_all(session) if t.source == source and t.revoked_at is None]
            token, plaintext = await api_tokens.create(session, source, scopes, now, CLI_ACTOR)
        return _Created(token, plaintext, others)
    finally:
        await db.dispose()


def cmd_create(args: argparse.Namespace) -> int:
    # Checked before the database is touched: a typo leaves nothing behind.
    source = parse_source(args.source)
    scopes = parse_scopes(args.scopes)
    _, url = _located(args)
    created = asyncio.run(_create(url, source, scopes, SystemClock().now()))
    print("\n".join(created_lines(created.token, created.plaintext, created.others)), flush=True)
    return 0


async def _list(url: str) -> list[ApiToken]:
    db = await _open_existing(url)
    try:
        async with db.read() as session:
            return await api_tokens.list_all(session)
    finally:
        await db.dispose()


def cmd_list(args: argparse.Namespace) -> int:
    located, url = _located(args)
    tokens = asyncio.run(_list(url))
    print("\n".join(token_table(tokens, _zone(located)) if tokens else [NONE_YET, NONE_YET_HINT]))
    return 0


async def _revoke(url: str, key: int | str, now: datetime) -> tuple[ApiToken | None, bool]:
    """The token and whether this run revoked it (False: it was revoked before)."""
    db = await _open_existing(url)
    try:
        async with db.transaction() as session:
            before = await api_tokens.find(session, key)
            if before is None or before.revoked_at is not None:
                return before, False
            return await api_tokens.revoke(session, before.id, now, CLI_ACTOR), True
    finally:
        await db.dispose()


def cmd_revoke(args: argparse.Namespace) -> int:
    located, url = _located(args)
    token, revoked_now = asyncio.run(_revoke(url, parse_key(args.token), SystemClock().now()))
    if token is None:
        raise CliError(not_found(args.token))
    fields = {"id": token.id, "source": token.source, "prefix": token.prefix}
    if revoked_now:
        print(REVOKED.format(**fields))
    else:
        assert token.revoked_at is not None
        print(ALREADY_REVOKED.format(**fields, at=when(token.revoked_at, _zone(located))))
    return 0


# -- parser -----------------------------------------------------------------------------------------


def add_api_commands(subparsers: Any) -> None:
    """`dutybot api token create|list|revoke`."""
    api = subparsers.add_parser("api", help="对接接口：来源系统的接口令牌")
    api_sub = api.add_subparsers(dest="api_command", required=True, metavar="操作")
    token = api_sub.add_parser("token", help="接口令牌：创建、列出、吊销")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="操作")

    create = token_sub.add_parser("create", help="为来源系统创建接口令牌（令牌只显示一次，在最后一行）")
    create.add_argument("--source", required=True, metavar="名称", help="来源系统名称，例如 舆情监测系统")
    create.add_argument("--scopes", required=True, metavar="权限", help=SCOPES_HELP)
    add_location_options(create)
    create.set_defaults(func=cmd_create)

    listing = token_sub.add_parser("list", help="列出接口令牌（不显示令牌本身）")
    add_location_options(listing)
    listing.set_defaults(func=cmd_list)

    revoke = token_sub.add_parser("revoke", help="吊销接口令牌：此后使用它的请求一律拒绝")
    revoke.add_argument("token", metavar="编号或前缀", help="令牌的编号或前缀（见 dutybot api token list）")
    add_location_options(revoke)
    revoke.set_defaults(func=cmd_revoke)
