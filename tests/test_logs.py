"""Structured logs: every line about a reminder carries the item number and its idempotency key."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from bot import logs
from bot.cli import build_parser
from tests.conftest import Bot
from tests.test_deadlines import major_item, tick


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("bot.outbox", logging.INFO, __file__, 1, "outbox row %s sent", (7,), None)
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_json_lines_carry_the_extra_fields() -> None:
    line = logs.JsonFormatter().format(_record(item=12, key="reminder:3:pass_on:50pct:0", outcome="sent"))
    entry = json.loads(line)
    assert entry["msg"] == "outbox row 7 sent"
    assert entry["level"] == "INFO" and entry["logger"] == "bot.outbox"
    assert entry["item"] == 12 and entry["key"] == "reminder:3:pass_on:50pct:0" and entry["outcome"] == "sent"
    assert entry["ts"].endswith("+00:00")


def test_json_keeps_a_traceback_in_one_line() -> None:
    try:
        raise ValueError("坏了")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), exc_info=__import__("sys").exc_info())
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: 坏了" in json.loads(line)["exc"]


def test_text_lines_append_the_fields() -> None:
    line = logs.TextFormatter().format(_record(item=12, key="k1", chat=None))
    assert line.endswith("bot.outbox: outbox row 7 sent [item=12 key=k1]")


def test_log_format_flag_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_parser().parse_args(["--log-format", "json", "check-config", "x"]).log_format == "json"
    monkeypatch.setenv("DUTYBOT_LOG_FORMAT", "json")
    assert build_parser().parse_args(["check-config", "x"]).log_format == "json"
    monkeypatch.setenv("DUTYBOT_LOG_FORMAT", "yaml")  # unknown: fall back to text rather than fail
    assert build_parser().parse_args(["check-config", "x"]).log_format == "text"


def test_an_unknown_log_level_is_a_clear_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["--log-level", "verbose", "check-config", "x"])
    assert stop.value.code == 2
    assert "未知的日志级别 'verbose'" in capsys.readouterr().err
    assert build_parser().parse_args(["--log-level", "warning", "check-config", "x"]).log_level == "WARNING"


def test_configure_installs_one_handler() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = []
    try:
        logs.configure("warning", "json")
        logs.configure("info", "text")  # a second call adds no second handler
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, logs.JsonFormatter)
        assert root.level == logging.INFO
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


async def test_reminder_logs_name_the_item_and_the_key(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    await major_item(bot)
    bot.clock.advance(timedelta(minutes=10))  # half-way through the 30-minute pass-on clock
    caplog.clear()  # only what the sweep and its delivery log
    with caplog.at_level(logging.INFO):
        await tick(bot)
    queued = [r for r in caplog.records if r.name == "handlers.reminders"]
    sent = [r for r in caplog.records if r.name == "bot.outbox" and getattr(r, "outcome", None) == "sent"]
    assert queued and sent
    keys = {r.key for r in queued}
    assert {r.item for r in queued + sent} == {1}
    assert keys <= {r.key for r in sent}  # each queued intent is seen again when it is sent
    entry = json.loads(logs.JsonFormatter().format(sent[0]))
    assert entry["item"] == 1 and entry["key"] in keys and "late_by_s" in entry
