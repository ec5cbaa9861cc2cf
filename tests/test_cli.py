"""The dutybot command line, run as a real process where it matters."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import EXAMPLE_CONFIG, ROOT

DUTYBOT = [sys.executable, "-m", "bot.cli"]


def test_check_config_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE_CONFIG)]) == 0
    out, err = capsys.readouterr()
    assert err == f"使用配置：{EXAMPLE_CONFIG}\n"
    assert out.splitlines() == [
        "警告：chats[chengguan_duty]：企业微信群“chengguan_duty”不在任何通道的 chats 中：通知只记录，不会发出",
        f"{EXAMPLE_CONFIG}：检查通过（8 个单位、22 名人员、5 个群聊；1 条警告）。",
    ]


def test_check_config_lists_problems_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace('mobile = "13800000004"', 'mobile = "110"')
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    assert main(["check-config", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines()[1:] == [
        "people[chen_gang].mobile：“110”不是大陆手机号（应为 11 位数字，以 1 开头）",
        f"{bad} 有 1 处错误，请修改后重新检查。",
    ]


def test_check_config_reports_a_type_error_and_a_bad_reference_in_one_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    text = text.replace('mobile = "13800000002"', "mobile = 13800000002")  # li_hua's number, unquoted
    text = text.replace('parent = "chengguan"', 'parent = "xxx"')  # dongfeng's parent
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    assert main(["check-config", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"使用配置：{bad}",
        "people[li_hua].mobile：必须是文本（当前为数字 13800000002）",
        "units[dongfeng].parent：未知的单位“xxx”",
        f"{bad} 有 2 处错误，请修改后重新检查。",
    ]


def test_check_config_on_broken_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("timezone = ", encoding="utf-8")
    assert main(["check-config", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines()[1:] == [
        f"{bad}：TOML 语法错误：文件末尾，取值无效（文本须加引号）", f"{bad} 有 1 处错误，请修改后重新检查。",
    ]


ARGPARSE_ENGLISH = ("usage", "positional arguments", "options:", "optional arguments", "show this help",
                    "COMMAND", "ACTION", "error:", "required", "invalid choice")


@pytest.mark.parametrize("argv", [[], ["doctor"], ["send-test"], ["audit", "export"], ["db", "upgrade"],
                                  ["roster", "show"], ["roster", "import"], ["check-config"], ["demo"]])
def test_help_is_chinese_throughout(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("用法：dutybot") and re.search(r"^选项：\n  -h, --help +显示本帮助并退出$", out, re.M)
    assert [word for word in ARGPARSE_ENGLISH if word in out] == []


@pytest.mark.parametrize(("argv", "prog", "message"), [
    (["docter"], "dutybot",
     "未知的命令“docter”。您是否要输入 doctor？可选：demo、serve、check-config、db、doctor、send-test、audit、roster、"
     "api、report"),
    ([], "dutybot", "缺少必填参数：命令"),
    (["audit", "export"], "dutybot audit export", "缺少必填参数：--since"),
    (["audit", "export", "--since", "2026-01-01", "--format", "xml"], "dutybot audit export",
     "未知的参数 --format 的取值“xml”。可选：csv、jsonl、xlsx"),
    (["roster", "show", "--days", "x"], "dutybot roster show", "参数 --days 应为整数（收到“x”）"),
    (["roster", "show", "--chat"], "dutybot roster show", "参数 --chat 后面需要一个值"),
    (["doctor", "--frobnicate"], "dutybot", "无法识别的参数：--frobnicate"),
])
def test_usage_errors_are_chinese(argv: list[str], prog: str, message: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"用法：{prog} ")
    assert lines[-2:] == [f"错误：{message}", f"（用 `{prog} --help` 查看说明）"]


def test_no_alembic_info_lines_at_the_default_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    assert main(["db", "upgrade", "--database", url]) == 0
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
    assert "Running upgrade" not in capsys.readouterr().err
    other = f"sqlite+aiosqlite:///{tmp_path / 'debug.db'}"
    assert main(["--log-level", "DEBUG", "db", "upgrade", "--database", other]) == 0
    assert any(r.name.startswith("alembic") and "Running upgrade" in r.getMessage() for r in caplog.records)
    main(["db", "upgrade", "--database", url])  # the level is set again on every run, not left at DEBUG
    caplog.clear()
    assert main(["db", "upgrade", "--database", other]) == 0
    assert [r for r in caplog.records if r.name.startswith("alembic")] == []


def test_db_upgrade_and_audit_export(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--database", db_url]) == 0
    assert "数据库已升级" in capsys.readouterr().out
    assert main(["audit", "export", "--since", "2026-01-01", "--format", "csv", "--database", db_url]) == 0
    out = capsys.readouterr().out
    # Chinese headers, after the BOM that makes Excel read the file as UTF-8 (tests/test_audit_export.py)
    assert out.splitlines()[0] == "\ufeff记录号,时间,线索编号,操作,操作人,操作人编号,群,说明,变更前,变更后,涉密"
    assert main(["audit", "export", "--since", "2026/01/01", "--database", db_url]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


async def test_audit_export_contents(bot: object, db_url: str, tmp_path: Path) -> None:
    from tests.conftest import Bot

    assert isinstance(bot, Bot)
    await bot.say("liu_yang", "上报 西岸滨河路井盖缺失")
    await bot.say("zhao_min", "定级 #1 一般")
    await bot.say("liu_yang", "办结 #1 无权")
    target = tmp_path / "audit.jsonl"
    import asyncio

    code = await asyncio.to_thread(
        main, ["audit", "export", "--since", "2026-11-23", "--format", "jsonl", "--database", db_url,
               "--config", str(EXAMPLE_CONFIG), "-o", str(target)]
    )
    assert code == 0
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["action"] for r in rows] == ["reported", "graded", "refused"]
    assert [r["action_label"] for r in rows] == ["上报", "定级", "操作被拒绝"]
    assert rows[1]["item"] == "#1" and rows[1]["actor_name"] == "赵敏"
    assert rows[1]["before"]["grade"] is None and rows[1]["after"]["grade"] == "一般"
    assert rows[0]["at"].startswith("2026-11-23T10:00:00+08:00")
    csv_target = tmp_path / "audit.csv"
    await asyncio.to_thread(
        main, ["audit", "export", "--since", "2026-11-24", "--database", db_url, "-o", str(csv_target)]
    )
    assert csv_target.read_bytes().startswith(b"\xef\xbb\xbf")
    assert list(csv.reader(io.StringIO(csv_target.read_text(encoding="utf-8-sig")))) == [
        ["记录号", "时间", "线索编号", "操作", "操作人", "操作人编号", "群", "说明", "变更前", "变更后", "涉密"]
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, deadline: float) -> bytes:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # polling a starting process, not waiting for a deadline


def _post(port: int, payload: dict[str, str]) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/local/messages", data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def _run_demo(workdir: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [*DUTYBOT, "demo", "--port", str(port), "--config", str(EXAMPLE_CONFIG)],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_demo_starts_keeps_data_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    demo = _run_demo(tmp_path, port)
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", time.monotonic() + 30)
        reply = _post(port, {"chat": "wecom_duty", "sender": "liu_yang", "text": "上报 演示线索"})
        assert "#1" in json.dumps(reply, ensure_ascii=False)
    finally:
        demo.send_signal(signal.SIGTERM)
        output, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0, output
    assert f"http://127.0.0.1:{port}/sim" in output
    # Neither migration chatter nor warnings about platform variables the demo never uses.
    assert "alembic" not in output and "未启用" not in output and "DUTYBOT_" not in output
    assert (tmp_path / "var" / "demo.db").exists()

    again = _run_demo(tmp_path, port)
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", time.monotonic() + 30)
        reply = _post(port, {"chat": "wecom_duty", "sender": "liu_yang", "text": "上报 第二条"})
        assert "#2" in json.dumps(reply, ensure_ascii=False)  # the first start's data is kept
    finally:
        again.send_signal(signal.SIGINT)
        again.communicate(timeout=30)
    assert again.returncode == 0


@pytest.mark.parametrize("url", ["mysql://ops:secret@db/dutybot", "sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"])
def test_a_database_url_dutybot_cannot_use_is_a_usage_error(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--database", url]) == 2
    err = capsys.readouterr().err
    assert "不可用" in err and "sqlite+aiosqlite:///文件路径" in err and "Traceback" not in err
    assert "secret" not in err  # the password is masked


def test_audit_export_refuses_a_missing_sqlite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo.db"
    assert main(["audit", "export", "--since", "2026-01-01", "--database", f"sqlite+aiosqlite:///{missing}"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"错误：数据库文件不存在：{missing}。新建数据库请运行 dutybot db upgrade --database "
        f"sqlite+aiosqlite:///{missing}；体验演示请运行 dutybot demo。"
    )
    assert not missing.exists()


async def test_serve_keeps_the_simulator_off_unless_configured(config: object, clock: object) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import create_app
    from bot.clock import ManualClock
    from domain.config import Config

    assert isinstance(config, Config) and isinstance(clock, ManualClock)
    closed = config.model_copy(update={"server": config.server.model_copy(update={"simulator": False})})
    client = TestClient(TestServer(create_app(closed, clock=clock, scheduler=False, environ={})))
    await client.start_server()
    try:
        for path in ("/local/directory", "/sim"):
            assert (await client.get(path)).status == 404
        response = await client.post("/local/messages", json={"chat": "wecom_duty", "sender": "li_hua", "text": "帮助"})
        assert response.status in (404, 405)
        health = await client.get("/healthz")
        assert (await health.json())["database"] is True  # 503 overall: this test runs no scheduler
    finally:
        await client.close()


async def test_local_channel_refuses_other_machines(config: object, clock: object) -> None:
    from unittest import mock

    from aiohttp.test_utils import make_mocked_request

    from bot.app import create_app
    from bot.channels.local import loopback_only
    from bot.clock import ManualClock
    from domain.config import Config

    assert isinstance(config, Config) and isinstance(clock, ManualClock)
    app = create_app(config, clock=clock, scheduler=False, environ={})

    async def handler(request: object) -> object:
        raise AssertionError("a remote client must not reach the local channel")

    for remote, expected in (("10.1.2.3", 403), ("192.168.1.9", 403)):
        transport = mock.Mock()
        transport.get_extra_info.side_effect = (
            lambda name, default=None, r=remote: (r, 5555) if name == "peername" else default
        )
        request = make_mocked_request("GET", "/local/directory", app=app, transport=transport)
        response = await loopback_only(request, handler)  # type: ignore[arg-type]
        assert response.status == expected
