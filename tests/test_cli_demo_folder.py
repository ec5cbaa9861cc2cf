"""The CLI right after the demo (issue #14, point 6): run with no flags in the folder where
`dutybot demo` ran, every command finds the demo's config and database and says so; nothing
creates an empty database; a database behind the migrations is named, not a traceback."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine

from bot.cli import main
from bot.cli_doctor import channel_variables
from bot.cli_locate import CONFIG_ENV, DATABASE_ENV, DEMO_DATABASE, load
from bot.roster_cli import ensure_demo_roster
from domain.config import DingtalkChannelConfig, WecomChannelConfig
from store.db import alembic_config, schema_state
from tests.conftest import EXAMPLE_CONFIG

Capture = pytest.CaptureFixture[str]
USING_DEMO = "使用配置：config.example.toml（示例配置）；数据库：var/demo.db（演示数据库）"
HEAD = asyncio.run(schema_state(DEMO_DATABASE)).heads[0]
UPGRADE = ("数据库结构需要升级：请运行 dutybot db upgrade --database sqlite+aiosqlite:///var/demo.db"
           f"（当前版本 0005，最新版本 {HEAD}）。")


def _platform_variables() -> list[str]:
    """Every variable the example config names for its channels and chats."""
    config = load(EXAMPLE_CONFIG, None)
    names: list[str] = []
    for channel in config.channels:
        if isinstance(channel, WecomChannelConfig):
            names += [channel.token_env, channel.aes_key_env, channel.webhook_env]
        else:
            assert isinstance(channel, DingtalkChannelConfig)
            names += [channel.app_key_env, channel.app_secret_env, channel.webhook_env, channel.secret_env]
    names += [name for chat in config.chats for name in (chat.webhook_env, chat.secret_env) if name]
    return names


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty folder holding the example config, as the repository root does; no variables set."""
    monkeypatch.chdir(tmp_path)
    for name in [CONFIG_ENV, DATABASE_ENV, *_platform_variables()]:
        monkeypatch.delenv(name, raising=False)
    shutil.copy(EXAMPLE_CONFIG, tmp_path / "config.example.toml")
    yield tmp_path


@pytest.fixture
def demo_folder(folder: Path) -> Path:
    """The folder after `dutybot demo` ran once: the demo's database with the example roster."""
    config = load(Path("config.example.toml"), DEMO_DATABASE)
    assert asyncio.run(ensure_demo_roster(config)) is not None  # as cmd_demo does on its first start
    return folder


def _downgrade_demo_database(revision: str) -> None:
    engine = create_engine("sqlite:///var/demo.db")
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), revision)
    finally:
        engine.dispose()


def test_doctor_in_the_demo_folder_names_the_channels_that_are_off(demo_folder: Path, capsys: Capture) -> None:
    assert main(["doctor"]) == 1
    out, err = capsys.readouterr()
    assert err == USING_DEMO + "\n"
    variables = channel_variables(load(EXAMPLE_CONFIG, None))
    assert variables == [
        "通道 wecom（企业微信）：DUTYBOT_WECOM_TOKEN、DUTYBOT_WECOM_AES_KEY、DUTYBOT_WECOM_WEBHOOK；"
        "群 coordinators 用自己的群机器人：DUTYBOT_WECOM_COORD_WEBHOOK；"
        "群 ops 用自己的群机器人：DUTYBOT_WECOM_OPS_WEBHOOK。",
        "通道 dingtalk（钉钉）：DUTYBOT_DINGTALK_APP_SECRET、DUTYBOT_DINGTALK_WEBHOOK、DUTYBOT_DINGTALK_SECRET。",
    ]
    assert out.splitlines() == [
        "✗ 没有启用任何平台通道：消息只记录在数据库中，不会发到企业微信或钉钉。设置下列环境变量即可启用：",
        *(f"  {line}" for line in variables),
        "✓ 本地暂存（spool）为空：var/spool",
        f"✓ 数据库可连接，结构为最新版本（{HEAD}）：sqlite+aiosqlite:///var/demo.db",
        "检查完成：1 项有问题。",
    ]
    assert "全部正常" not in out


def test_roster_commands_in_the_demo_folder(demo_folder: Path, capsys: Capture) -> None:
    assert main(["roster", "check"]) == 0
    out, err = capsys.readouterr()
    assert err == USING_DEMO + "\n"
    assert out.splitlines()[-1] == "检查完成：无缺口。"
    assert main(["roster", "show", "--from", "2027-03-01", "--days", "1", "--chat", "wecom_duty"]) == 0
    out, err = capsys.readouterr()
    assert err == USING_DEMO + "\n"
    assert out.splitlines()[0] == "清河县舆情值班群（企业微信）"
    assert main(["roster", "show"]) == 0
    out, err = capsys.readouterr()
    assert err == USING_DEMO + "\n" and "清河县舆情值班群（钉钉）" in out.splitlines()


def test_roster_show_on_an_empty_roster_says_so(folder: Path, capsys: Capture) -> None:
    assert main(["db", "upgrade", "--database", DEMO_DATABASE]) == 0
    capsys.readouterr()
    assert main(["roster", "show"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        USING_DEMO, "数据库中还没有值班表，没有可显示的班次。请先运行 `dutybot roster import 文件` 导入。",
    ]


def test_audit_export_and_check_config_in_the_demo_folder(demo_folder: Path, capsys: Capture) -> None:
    assert main(["audit", "export", "--since", "2026-01-01", "--format", "jsonl"]) == 0
    out, err = capsys.readouterr()
    assert err == USING_DEMO + "\n" + "\r共导出 1 条审计记录（自 2026-01-01 起）。\n"
    assert '"action": "roster_import"' in out
    assert main(["check-config"]) == 0
    out, err = capsys.readouterr()
    assert err == "使用配置：config.example.toml（示例配置）\n"
    assert out.splitlines()[-1] == "config.example.toml：检查通过（8 个单位、22 名人员、5 个群聊；1 条警告）。"


def test_explicit_flags_and_the_environment_come_before_the_demo(
    demo_folder: Path, tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    assert main(["db", "upgrade", "--database", other]) == 0
    out, err = capsys.readouterr()
    assert err == f"使用配置：config.example.toml（示例配置）；数据库：{tmp_path / 'other.db'}\n"
    assert out == f"数据库已升级到最新结构（版本 {HEAD}）：{other}\n"
    monkeypatch.setenv(DATABASE_ENV, other)
    assert main(["roster", "show"]) == 1  # the other database has no roster
    assert capsys.readouterr().err.splitlines()[0] == (
        f"使用配置：config.example.toml（示例配置）；数据库：{tmp_path / 'other.db'}（环境变量 {DATABASE_ENV}）"
    )
    monkeypatch.setenv(CONFIG_ENV, str(EXAMPLE_CONFIG))
    assert main(["audit", "export", "--since", "2026-01-01"]) == 0
    assert capsys.readouterr().err.splitlines()[0] == (
        f"使用配置：{EXAMPLE_CONFIG}（环境变量 {CONFIG_ENV}）；"
        f"数据库：{tmp_path / 'other.db'}（环境变量 {DATABASE_ENV}）"
    )


def test_nothing_is_created_in_an_empty_folder(folder: Path, capsys: Capture) -> None:
    assert main(["doctor"]) == 2
    assert capsys.readouterr().err == (
        "错误：找不到配置文件：当前目录没有 config.toml，也没有演示数据库 var/demo.db。请用 --config 文件 指明配置"
        "（或设置环境变量 DUTYBOT_CONFIG）；先体验请运行 dutybot demo。\n"
    )
    assert main(["audit", "export", "--since", "2026-01-01"]) == 2
    assert capsys.readouterr().err == (
        "错误：找不到数据库：请用 --database URL 或 --config 文件 指明（或设置环境变量 DUTYBOT_DATABASE_URL）；"
        "先体验请运行 dutybot demo。\n"
    )
    assert main(["roster", "show", "--config", "config.example.toml"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "使用配置：config.example.toml；数据库：var/dutybot.db（配置 [database].url）",
        "错误：数据库文件不存在：var/dutybot.db。新建数据库请运行 dutybot db upgrade --database "
        "sqlite+aiosqlite:///var/dutybot.db；体验演示请运行 dutybot demo。",
    ]
    assert not (folder / "var").exists()


def test_a_database_behind_the_migrations_is_named_not_a_traceback(demo_folder: Path, capsys: Capture) -> None:
    _downgrade_demo_database("0005")
    assert main(["doctor"]) == 1
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert f"✗ {UPGRADE}" in lines  # a failed check; the others still ran
    assert "✓ 本地暂存（spool）为空：var/spool" in lines and lines[-1] == "检查完成：2 项有问题。"
    assert main(["send-test", "--chat", "wecom_duty", "--database", DEMO_DATABASE]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "使用配置：config.example.toml（示例配置）；数据库：var/demo.db", f"错误：{UPGRADE}",
    ]
    assert main(["roster", "check"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"错误：{UPGRADE}"
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == f"数据库已升级到最新结构（版本 {HEAD}）：sqlite+aiosqlite:///var/demo.db\n"
    assert main(["doctor"]) == 1
    assert f"✓ 数据库可连接，结构为最新版本（{HEAD}）：sqlite+aiosqlite:///var/demo.db" in capsys.readouterr().out
