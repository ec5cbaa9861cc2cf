"""Intake-API tokens (issue #15): created by `dutybot api token create` and shown once, alone on
the last line; stored as a hash; listed without the token; revoked; every change audited; the
schema migration up and down. On SQLite and PostgreSQL, through the real CLI and the real ORM."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from bot.cli import main
from bot.cli_locate import CONFIG_ENV, DATABASE_ENV, DEMO_DATABASE, shown_database
from domain.vocab import Scope
from store import api_tokens
from store.db import Database, alembic_config
from store.models import ApiToken, Item, ItemEvent, ItemSource
from tests.conftest import EXAMPLE_CONFIG, START

Capture = pytest.CaptureFixture[str]
T = TypeVar("T")
TOKEN = re.compile(r"dtb_[A-Za-z0-9_-]{43}")
SHOWN_ONCE = "令牌只显示这一次（数据库只保存其摘要，无法找回），请立即复制到来源系统中；遗失时吊销后重新创建。"
CREATE = ["api", "token", "create", "--source", "舆情监测系统", "--scopes", "items:write,items:read"]
USING_DEMO = "使用配置：config.example.toml（示例配置）；数据库：var/demo.db（演示数据库）"
NONE_YET = ["还没有接口令牌。",
            "创建请运行 dutybot api token create --source 来源名称 --scopes items:write,items:read。"]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def _migrated(url: str) -> None:
    """The SQLite file exists before the first command (PostgreSQL's is migrated and emptied by conftest)."""
    db = Database(url)
    try:
        await db.upgrade()
    finally:
        await db.dispose()


@pytest.fixture
def url(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test's database, run from an empty folder with no variables: the CLI uses only what it is told."""
    monkeypatch.chdir(tmp_path)
    for name in (CONFIG_ENV, DATABASE_ENV):
        monkeypatch.delenv(name, raising=False)
    run(_migrated(db_url))
    return db_url


def _using(url: str) -> str:
    return f"使用配置：无；数据库：{shown_database(url)}\n"


def _create(url: str, capsys: Capture, argv: list[str] = CREATE) -> tuple[list[str], str]:
    assert main([*argv, "--database", url]) == 0
    out, err = capsys.readouterr()
    assert err == _using(url)
    lines = out.splitlines()
    return lines, lines[-1]


async def _verify(url: str, plaintext: str, after: timedelta = timedelta(0)) -> ApiToken | None:
    db = Database(url)
    try:
        async with db.transaction() as session:
            return await api_tokens.verify(session, plaintext, START + after)
    finally:
        await db.dispose()


async def _rows(url: str, sql: str) -> list[dict[str, Any]]:
    db = Database(url)
    try:
        async with db.read() as session:
            return [dict(row._mapping) for row in await session.execute(text(sql))]
    finally:
        await db.dispose()


async def _events(url: str) -> list[ItemEvent]:
    db = Database(url)
    try:
        async with db.read() as session:
            found = await session.execute(
                select(ItemEvent).where(ItemEvent.action.like("api_token_%")).order_by(ItemEvent.id))
            return list(found.scalars())
    finally:
        await db.dispose()


# -- create ---------------------------------------------------------------------------------------


def test_create_prints_the_token_alone_on_the_last_line_and_it_verifies(url: str, capsys: Capture) -> None:
    lines, plaintext = _create(url, capsys)
    assert TOKEN.fullmatch(plaintext)
    assert lines == [
        "已创建接口令牌：",
        "  编号：1",
        "  来源：舆情监测系统",
        "  权限：items:write（上报线索）、items:read（查询线索）",
        f"  前缀：{plaintext[:12]}",
        SHOWN_ONCE,
        plaintext,
    ]
    token = run(_verify(url, plaintext))
    assert token is not None
    assert (token.id, token.source, token.scopes) == (1, "舆情监测系统", ["items:write", "items:read"])
    assert api_tokens.allows(token, Scope.ITEMS_WRITE) and not api_tokens.allows(token, Scope.CLASSIFIED_READ)


def test_the_database_holds_only_the_hash(url: str, capsys: Capture) -> None:
    _, plaintext = _create(url, capsys)
    [row] = run(_rows(url, "SELECT * FROM api_tokens"))
    assert row["token_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert row["prefix"] == plaintext[:12] and row["created_by"] == "cli"
    assert all(plaintext not in str(value) for value in row.values())
    assert all(plaintext[12:20] not in str(value) for value in row.values())  # nor any part past the prefix


def test_a_second_token_for_a_source_names_the_live_ones_to_revoke(url: str, capsys: Capture) -> None:
    _, first = _create(url, capsys)
    lines, second = _create(url, capsys, ["api", "token", "create", "--source", " 舆情监测系统 ", "--scopes",
                                          "classified:read、items:read，items:read"])
    assert lines == [
        "已创建接口令牌：",
        "  编号：2",
        "  来源：舆情监测系统",
        "  权限：items:read（查询线索）、classified:read（查看涉密线索原文）",
        f"  前缀：{second[:12]}",
        f"来源“舆情监测系统”另有 1 个有效令牌（前缀 {first[:12]}）；新令牌启用后，"
        "请用 dutybot api token revoke 前缀 吊销旧令牌。",
        SHOWN_ONCE,
        second,
    ]
    assert first != second and first[:12] != second[:12]


@pytest.mark.parametrize(("scopes", "error"), [
    ("items:write,itmes:read", "未知的权限：itmes:read。您是否要输入 items:read？"),
    ("items:write,admin", "未知的权限：admin。"),
])
def test_an_unknown_scope_is_refused_with_the_valid_ones(url: str, capsys: Capture, scopes: str, error: str) -> None:
    assert main(["api", "token", "create", "--source", "舆情监测系统", "--scopes", scopes, "--database", url]) == 2
    assert capsys.readouterr().err == (
        f"错误：{error}可选：items:write（上报线索）、items:read（查询线索）、classified:read（查看涉密线索原文）；"
        "多个权限用逗号或顿号分隔。\n"
    )
    assert run(_rows(url, "SELECT id FROM api_tokens")) == []


@pytest.mark.parametrize(("argv", "error"), [
    (["--source", "舆情监测系统", "--scopes", " , "],
     "请用 --scopes 写明令牌的权限，例如 --scopes items:write,items:read。"
     "可选：items:write（上报线索）、items:read（查询线索）、classified:read（查看涉密线索原文）。"),
    (["--source", "  ", "--scopes", "items:write"], "来源名称不能为空，例如 --source 舆情监测系统。"),
    (["--source", "舆" * 65, "--scopes", "items:write"], "来源名称最长 64 个字符（当前 65 个）。"),
])
def test_create_refuses_an_empty_scope_list_or_source(url: str, capsys: Capture, argv: list[str], error: str) -> None:
    assert main(["api", "token", "create", *argv, "--database", url]) == 2
    assert capsys.readouterr().err == f"错误：{error}\n"


def test_create_makes_the_database_like_roster_import(tmp_path: Path, capsys: Capture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fresh = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    _, plaintext = _create(fresh, capsys)
    assert run(_verify(fresh, plaintext)) is not None


def test_a_mistyped_scope_creates_no_database(tmp_path: Path, capsys: Capture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fresh = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    assert main(["api", "token", "create", "--source", "x", "--scopes", "items", "--database", fresh]) == 2
    assert not (tmp_path / "new.db").exists()
    capsys.readouterr()


# -- verify ----------------------------------------------------------------------------------------


def test_a_wrong_or_malformed_token_verifies_as_nothing(url: str, capsys: Capture) -> None:
    _, plaintext = _create(url, capsys)
    last = plaintext[-1]
    wrong_tail = plaintext[:-1] + ("A" if last != "A" else "B")  # the right prefix, the wrong secret
    for candidate in ["", "dtb_", plaintext[:12], plaintext + "x", plaintext[:-1], " " + plaintext,
                      f"Bearer {plaintext}", plaintext.replace("dtb_", "DTB_"), wrong_tail,
                      "dtb_" + "A" * 43, "dtb_" + "!" * 43]:
        assert run(_verify(url, candidate)) is None, candidate


async def _touches(url: str, plaintext: str) -> list[Any]:
    db = Database(url)
    seen: list[Any] = []
    try:
        for seconds in (0, 30, 59, 60, 90, 200):
            async with db.transaction() as session:
                assert await api_tokens.verify(session, plaintext, START + timedelta(seconds=seconds))
            async with db.read() as session:
                seen.append((await session.execute(select(ApiToken.last_used_at))).scalar_one())
    finally:
        await db.dispose()
    return seen


def test_last_used_is_written_at_most_once_a_minute(url: str, capsys: Capture) -> None:
    _, plaintext = _create(url, capsys)
    at = [START + timedelta(seconds=s) for s in (0, 0, 0, 60, 60, 200)]
    assert run(_touches(url, plaintext)) == at


# -- list ---------------------------------------------------------------------------------------------


async def _history(url: str) -> tuple[str, str]:
    """Two tokens: one created at 10:00, used at 11:30 and revoked at 13:00; one created at 11:00, unused."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            _, first = await api_tokens.create(session, "舆情监测系统", [Scope.ITEMS_READ, Scope.ITEMS_WRITE],
                                               START, "cli")
            _, second = await api_tokens.create(session, "12345-platform", [Scope.CLASSIFIED_READ, Scope.ITEMS_READ],
                                                START + timedelta(hours=1), "cli")
        async with db.transaction() as session:
            assert await api_tokens.verify(session, first, START + timedelta(minutes=90))
        async with db.transaction() as session:
            assert await api_tokens.revoke(session, first[:12], START + timedelta(hours=3), "cli")
    finally:
        await db.dispose()
    return first, second


def test_list_shows_every_token_without_the_token(url: str, capsys: Capture) -> None:
    first, second = run(_history(url))
    assert main(["api", "token", "list", "--database", url]) == 0
    out, err = capsys.readouterr()
    assert err == _using(url)
    assert out.splitlines() == [
        "编号  来源            权限                         前缀          创建时间          最近使用          状态",
        f"1     舆情监测系统    items:write、items:read      {first[:12]}  2026-11-23 10:00  2026-11-23 11:30  "
        "已吊销 2026-11-23 13:00",
        f"2     12345-platform  items:read、classified:read  {second[:12]}  2026-11-23 11:00  未使用            有效",
        "共 2 个接口令牌（有效 1 个）；时间为 Asia/Shanghai 时区。",
    ]
    digests = [hashlib.sha256(t.encode()).hexdigest() for t in (first, second)]
    assert all(secret not in out for secret in [first, second, *digests])


def test_list_says_when_there_is_none(url: str, capsys: Capture) -> None:
    assert main(["api", "token", "list", "--database", url]) == 0
    out, err = capsys.readouterr()
    assert (out.splitlines(), err) == (NONE_YET, _using(url))


def test_list_never_creates_a_database(tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing = f"sqlite+aiosqlite:///{tmp_path / 'missing.db'}"
    assert main(["api", "token", "list", "--database", missing]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"错误：数据库文件不存在：{tmp_path / 'missing.db'}。新建数据库请运行 dutybot db upgrade --database "
        f"{missing}；体验演示请运行 dutybot demo。"
    )
    assert not (tmp_path / "missing.db").exists()


# -- revoke -------------------------------------------------------------------------------------------


def _revoke(url: str, key: str, capsys: Capture, code: int = 0) -> tuple[str, str]:
    assert main(["api", "token", "revoke", key, "--database", url]) == code
    out, err = capsys.readouterr()
    return out, err


def test_revoke_by_prefix_then_the_token_no_longer_verifies(url: str, capsys: Capture) -> None:
    _, plaintext = _create(url, capsys)
    assert run(_verify(url, plaintext)) is not None
    out, err = _revoke(url, plaintext[:12], capsys)
    assert err == _using(url)
    assert out == (f"已吊销接口令牌 #1（来源：舆情监测系统，前缀 {plaintext[:12]}）："
                   "此后使用该令牌的请求一律拒绝（401）。\n")
    assert run(_verify(url, plaintext)) is None
    [row] = run(_rows(url, "SELECT revoked_at, revoked_by FROM api_tokens"))
    assert row["revoked_by"] == "cli" and row["revoked_at"] is not None


def test_revoking_again_says_when_and_changes_nothing(url: str, capsys: Capture) -> None:
    _, plaintext = _create(url, capsys)
    _revoke(url, "1", capsys)
    db = Database(url)

    async def revoked_at() -> str:
        try:
            async with db.read() as session:
                token = await api_tokens.find(session, 1)
                assert token is not None and token.revoked_at is not None
                return f"{token.revoked_at.astimezone(START.tzinfo):%Y-%m-%d %H:%M}"
        finally:
            await db.dispose()

    out, _ = _revoke(url, "#1", capsys)
    assert out == (f"接口令牌 #1（来源：舆情监测系统，前缀 {plaintext[:12]}）已于 {run(revoked_at())} 吊销，"
                   "无需再次吊销。\n")
    assert [e.action for e in run(_events(url))] == ["api_token_created", "api_token_revoked"]


def test_revoke_by_the_whole_token(url: str, capsys: Capture) -> None:
    _, plaintext = _create(url, capsys)
    out, _ = _revoke(url, plaintext, capsys)
    assert out == (f"已吊销接口令牌 #1（来源：舆情监测系统，前缀 {plaintext[:12]}）："
                   "此后使用该令牌的请求一律拒绝（401）。\n")
    assert plaintext not in out


def test_revoking_an_unknown_token_says_what_to_do(url: str, capsys: Capture) -> None:
    _, plaintext = _create(url, capsys)
    _, err = _revoke(url, "9", capsys, code=2)
    assert err.splitlines()[-1] == "错误：找不到编号或前缀为“9”的接口令牌。请用 dutybot api token list 查看编号和前缀。"
    _, err = _revoke(url, "dtb_nosuchone", capsys, code=2)
    assert err.splitlines()[-1] == (
        "错误：找不到编号或前缀为“dtb_nosuchone”的接口令牌。请用 dutybot api token list 查看编号和前缀。")
    wrong = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    _, err = _revoke(url, wrong, capsys, code=2)
    assert err.splitlines()[-1] == (
        f"错误：所给令牌（{plaintext[:12]}…）与任何接口令牌都不符。请用 dutybot api token list 查看编号和前缀，"
        "按编号或前缀吊销。")
    assert wrong not in err
    assert run(_verify(url, plaintext)) is not None


# -- audit --------------------------------------------------------------------------------------------


def test_create_and_revoke_are_audited_without_the_token(url: str, capsys: Capture) -> None:
    _, plaintext = _create(url, capsys)
    _revoke(url, plaintext[:12], capsys)
    created, revoked = run(_events(url))
    prefix = plaintext[:12]
    detail = f"来源：舆情监测系统；前缀：{prefix}；权限：items:write、items:read"
    summary = {"token_id": 1, "source": "舆情监测系统", "prefix": prefix, "scopes": ["items:write", "items:read"]}
    assert (created.actor, created.action, created.detail, created.after) == (
        "cli", "api_token_created", detail, summary)
    assert (revoked.actor, revoked.action, revoked.detail, revoked.before) == (
        "cli", "api_token_revoked", detail, {"revoked_at": None})
    assert revoked.after == summary | {"revoked_at": revoked.at.isoformat()}
    assert created.item_id is None and revoked.item_id is None
    assert all(plaintext not in repr((e.detail, e.before, e.after)) for e in (created, revoked))
    assert main(["audit", "export", "--since", "2020-01-01", "--format", "jsonl", "--database", url]) == 0
    exported = capsys.readouterr().out
    assert '"action": "api_token_created"' in exported and plaintext not in exported


# -- the demo folder ------------------------------------------------------------------------------------


def test_the_commands_find_the_demo_database(tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in (CONFIG_ENV, DATABASE_ENV):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(EXAMPLE_CONFIG, tmp_path / "config.example.toml")
    assert main(["db", "upgrade", "--database", DEMO_DATABASE]) == 0  # as `dutybot demo` leaves it
    capsys.readouterr()
    assert main(["api", "token", "list"]) == 0
    out, err = capsys.readouterr()
    assert (out.splitlines(), err) == (NONE_YET, USING_DEMO + "\n")
    assert main(CREATE) == 0
    out, err = capsys.readouterr()
    assert err == USING_DEMO + "\n"
    plaintext = out.splitlines()[-1]
    assert run(_verify(DEMO_DATABASE, plaintext)) is not None
    assert main(["api", "token", "list"]) == 0
    out, err = capsys.readouterr()
    assert err == USING_DEMO + "\n" and f"  {plaintext[:12]}  " in out.splitlines()[1]
    assert main(["api", "token", "revoke", "1"]) == 0
    assert capsys.readouterr().err == USING_DEMO + "\n"


def test_no_database_named_is_an_error(tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in (CONFIG_ENV, DATABASE_ENV):
        monkeypatch.delenv(name, raising=False)
    assert main(CREATE) == 2
    assert capsys.readouterr().err == (
        "错误：找不到数据库：请用 --database URL 或 --config 文件 指明（或设置环境变量 DUTYBOT_DATABASE_URL）；"
        "先体验请运行 dutybot demo。\n"
    )
    assert list(tmp_path.iterdir()) == []


# -- help ----------------------------------------------------------------------------------------------


ARGPARSE_ENGLISH = ("usage", "positional arguments", "options:", "show this help", "COMMAND", "error:", "required")


@pytest.mark.parametrize("argv", [["api"], ["api", "token"], ["api", "token", "create"], ["api", "token", "list"],
                                  ["api", "token", "revoke"]])
def test_help_is_chinese(argv: list[str], capsys: Capture) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("用法：dutybot api")
    assert [word for word in ARGPARSE_ENGLISH if word in out] == []


@pytest.mark.parametrize(("argv", "prog", "message"), [
    (["api", "token", "create", "--source", "x"], "dutybot api token create", "缺少必填参数：--scopes"),
    (["api", "token", "revoke"], "dutybot api token revoke", "缺少必填参数：编号或前缀"),
    (["api", "token", "delete"], "dutybot api token",
     "未知的操作“delete”。可选：create、list、revoke"),
])
def test_usage_errors_are_chinese(argv: list[str], prog: str, message: str, capsys: Capture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-2:] == [f"错误：{message}", f"（用 `{prog} --help` 查看说明）"]


# -- the migration ------------------------------------------------------------------------------------


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _migrate(connection: Connection, revision: str) -> set[str]:
    config = alembic_config(connection)
    if revision == "head":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)
    return _tables(connection)


async def _to(url: str, revision: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(_migrate, revision)
    finally:
        await engine.dispose()


def test_migration_0007_upgrades_and_downgrades(url: str) -> None:
    intake = {"api_tokens", "item_sources"}
    assert intake <= run(_to(url, "head"))
    assert not intake & run(_to(url, "0006"))
    assert intake <= run(_to(url, "head"))


async def _sources(url: str) -> list[str]:
    """An item's source record: unique per (system, external id), and gone with the item."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            item = Item(number=1, chat_id="wecom_duty", source="微博", summary="网友反映停水", category="其他",
                        status="待定级", reported_by="api", reported_at=START, grade_due_at=START, updated_at=START)
            session.add(item)
            await session.flush()
            session.add(ItemSource(source_system="yuqing-monitor", external_id="A-1", item_id=item.id,
                                   created_at=START))
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                session.add(ItemSource(source_system="yuqing-monitor", external_id="A-1", item_id=item.id,
                                       created_at=START))
        async with db.transaction() as session:
            await session.execute(text("DELETE FROM items"))
        async with db.read() as session:
            return list((await session.execute(select(ItemSource.external_id))).scalars())
    finally:
        await db.dispose()


def test_item_sources_are_unique_and_go_with_their_item(url: str) -> None:
    assert run(_sources(url)) == []
