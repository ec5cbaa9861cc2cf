"""The benchmark's own pieces, without wrk and without timing: the request bodies it sends are
genuine signed DingTalk callbacks that the bot turns into exactly one item each, its Lua is built
from the same pieces, wrk's output is read right, and the result tables say what was met."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import func, select

from bench.payloads import (
    QUERY_TEXT,
    REPORT_TEXT,
    LoadSpec,
    cut,
    dingtalk_headers,
    dingtalk_message,
    message_id,
    onebot_template,
    render_lua,
)
from bench.results import markdown, targets, with_ratios
from bench.wrk import parse_wrk
from bot.channels.dingtalk import parse_robot_message
from bot.channels.dingtalk_sign import verify_callback
from bot.clock import ManualClock
from bot.runtime import RUNTIME
from domain.config import load_config
from store.models import InboundSeen, Item, OutboxMessage
from tests.conftest import EXAMPLE_CONFIG, START, start_bot
from tests.fakes.dingtalk import FakeDingTalk, now_ms

WRK_OUTPUT = """Running 30s test @ http://127.0.0.1:40000/callback/dingtalk/dingtalk
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   112.50ms   20.10ms 301.00ms   80.00%
    Req/Sec   142.00     20.00   200.00     70.00%
  Latency Distribution
     50%  111.01ms
     75%  120.00ms
     90%  150.00ms
     99%  178.43ms
  4266 requests in 30.03s, 700.00KB read
  Socket errors: connect 0, read 0, write 0, timeout 2
  Non-2xx or 3xx responses: 3
Requests/sec:    142.06
Transfer/sec:     23.31KB
BENCH_COUNTS {"ok": 4263, "other": 3, "requests": 4266}
"""


def _lua_pieces(script: str) -> list[str]:
    """The long-bracket strings of `local PIECES = {...}` in a rendered script."""
    line = next(line for line in script.splitlines(keepends=True) if line.startswith("local PIECES"))
    start = script.index(line)
    block = script[start : script.index("\nlocal SLOTS", start)]
    return [m.group(2) for m in re.finditer(r"\[(=*)\[\n(.*?)\]\1\]", block, re.S)]


def test_wrk_output_is_read_from_its_own_lines() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests_per_s == 142.06
    assert result.p50_ms == 111.01 and result.p99_ms == 178.43
    assert result.requests == 4266 and result.duration_s == 30.03
    assert result.non_2xx == 3 and result.socket_errors["timeout"] == 2
    assert result.counts == {"ok": 4263, "other": 3, "requests": 4266}
    assert parse_wrk(WRK_OUTPUT.replace("178.43ms", "1.20s")).p99_ms == 1200.0
    assert parse_wrk(WRK_OUTPUT.replace("111.01ms", "870.00us")).p50_ms == 0.87


def test_the_lua_sends_the_pieces_of_a_real_callback_body() -> None:
    template = cut(dingtalk_message(robot_base="http://127.0.0.1:9", created_ms=1_700_000_000_000))
    assert template.slots == ("text", "id", "id")
    spec = LoadSpec(path="/callback/dingtalk/dingtalk", headers=dingtalk_headers("s3cret", 1_700_000_000_000),
                    template=template, text=QUERY_TEXT, run_tag="ab12", max_n=100_000)
    script = render_lua(spec)
    assert "-- @@CONSTANTS@@" not in script
    assert _lua_pieces(script) == list(template.pieces)
    assert "local MAX_N = 100000" in script and 'local RUN_TAG = [[\nab12]]' in script
    # The body the Lua makes for thread 1's 7th request, as Python makes it.
    msg = message_id("ab12", 1, 7, numeric=False)
    body = json.loads(template.assemble({"id": msg, "text": "查询 #42"}))
    assert body["msgId"] == "benchab12t1n7" and body["text"]["content"] == " 查询 #42"
    assert body["sessionWebhook"].endswith("session=sbenchab12t1n7")


def test_onebot_event_has_a_numeric_message_id() -> None:
    template = onebot_template(1_700_000_000)
    event = json.loads(template.assemble({"id": message_id("7", 2, 15, numeric=True), "text": "上报 x"}))
    assert event["message_id"] == 702000000015
    assert event["raw_message"] == "上报 x" and event["message"][0]["data"]["text"] == "上报 x"


async def test_a_bench_request_is_a_genuine_callback_that_makes_one_item(tmp_path: Path) -> None:
    """Two bench bodies (and one replayed) through the real HTTP entry point: two items."""
    config = load_config(EXAMPLE_CONFIG).with_database(f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}")
    clock = ManualClock(START)
    async with FakeDingTalk(clock) as fake:
        client = await start_bot(config, clock, fake.environ())
        try:
            stamp = now_ms(clock)
            template = cut(dingtalk_message(robot_base=fake.base_url, created_ms=stamp))
            headers = dingtalk_headers(fake.app_secret, stamp)
            assert verify_callback(headers["timestamp"], headers["sign"], fake.app_secret, now_ms=stamp,
                                   max_skew_ms=300_000)
            ids = [message_id("t0", 1, n, numeric=False) for n in (1, 2, 2)]
            for msg in ids:
                fake.sessions.add(f"s{msg}")  # the sessionWebhook the body names
                body = template.assemble({"id": msg, "text": REPORT_TEXT.format(id=msg)})
                assert parse_robot_message(json.loads(body)) is not None
                response = await client.post("/callback/dingtalk/dingtalk", data=body.encode(), headers=headers)
                assert response.status == 200, await response.text()
            runtime = client.app[RUNTIME]
            await runtime.outbox.drain()
            async with runtime.db.read() as session:
                items = list((await session.execute(select(Item.summary))).scalars())
                seen = (await session.execute(select(func.count()).select_from(InboundSeen))).scalar_one()
                replies = (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()
            assert len(items) == 2 and seen == 2 and replies == 2
            assert sorted(re.search(r"编号(\S+)", s).group(1) for s in items) == ids[:2]  # type: ignore[union-attr]
            assert [p.ok for p in fake.posts_of("session")] == [True, True]
        finally:
            await client.close()


def test_results_tables_put_each_figure_beside_its_target() -> None:
    points = [
        {"scenario": "ceiling", "database": None, "requests_per_s": 10_000.0, "p50_ms": 1.0, "p99_ms": 5.0,
         "requests": 300_000, "non_2xx": 0, "socket_errors": {}},
        {"scenario": "ingest", "database": "sqlite", "requests_per_s": 1_200.0, "p50_ms": 10.0, "p99_ms": 40.0,
         "requests": 36_000, "non_2xx": 0, "socket_errors": {}, "rss_idle_mb": 90.0, "rss_after_mb": 100.0,
         "replies_delivered_per_s": 1_100.0,
         "check": {"items": 36_010, "messages_recorded": 36_010, "every_message_one_item": True,
                   "responses_200": 36_000, "items_per_message_exactly_one": 36_010,
                   "reported_audit_entries": 36_010, "lead_unit_rows": 36_010, "replies_queued": 36_010,
                   "replies_with_grade_question": 36_010, "duplicate_item_numbers": 0, "in_flight_at_stop": 10}},
        {"scenario": "query", "database": "sqlite", "requests_per_s": 2_000.0, "p50_ms": 5.0, "p99_ms": 30.0,
         "requests": 60_000, "non_2xx": 0, "socket_errors": {}, "items": 100_000},
        {"scenario": "peer", "database": None, "requests_per_s": 900.0, "handled_per_s": 300.0, "p50_ms": 2.0,
         "p99_ms": 9.0, "requests": 27_000, "non_2xx": 0, "socket_errors": {}, "replies_in_window": 9_000,
         "replies_total": 27_000, "handled_span_s": 90.0},
        {"scenario": "memory", "database": "sqlite", "items": 100_000, "rss_mb": 160.0, "note": "after reads"},
    ]
    rows = {row["target"]: row for row in targets(points)}
    assert rows["ingestion on SQLite, 16 connections"]["met"] is True
    assert rows["ingestion on SQLite vs the nonebot2 peer"]["met"] is True  # 1200 / 300 = 4×
    assert rows["read: 查询 #N on SQLite"]["met"] is False  # 20 % < 30 %
    assert rows["RSS at 100,000 items, SQLite"]["met"] is False
    ratios = {p["scenario"]: p.get("ratio_to_ceiling") for p in with_ratios(points)}
    assert ratios["ingest"] == 0.12 and ratios["peer"] == 0.03
    report = {"command": "python -m bench all", "date": "2026-11-23 20:00 UTC",
              "settings": {"quick": False, "connections": 16, "threads": 1, "duration": 30.0, "warmup": 5.0},
              "machine": {"cpu": "test cpu", "cores": 2, "memory_gib": 24.0, "kernel": "6.1", "pinning": "pinned"},
              "versions": {"python": "3.11"}, "points": with_ratios(points), "targets": targets(points),
              "skipped": [{"scenario": "read postgresql", "reason": "no server"}], "profiles": []}
    text = markdown(report)
    assert "| report ingestion (上报 + URL) | SQLite | 1,200.0 | 10.00 | 40.00 | 0.120 | – |" in text
    assert "**missed**" in text and "- read postgresql: no server" in text


async def test_statement_counts_follow_the_real_path_of_a_message() -> None:
    import argparse

    from bench import statements

    result = await statements.main(argparse.Namespace(database=None, repeat=2, json=None))
    report = result["per_command"]["上报"]
    # One transaction for the message (which also claims its reply), one to record the post.
    assert report["handler_transactions"] == 1 and report["outbox_transactions"] == 1
    assert report["handler_statements"] > report["outbox_statements"] > 0
    assert set(result["per_command"]) == {"上报", "查询 #N", "值班"}


def test_the_reply_post_floor_is_measured_against_a_real_fake_platform(tmp_path: Path) -> None:
    from bench import reply_post

    out = tmp_path / "reply.json"
    assert reply_post.cli(["--posts", "200", "--in-flight", "4", "--json", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["posts"] == 200 and result["failures"] == 0 and result["cpu_us_per_post"] > 0


def test_an_idle_thread_pool_is_not_counted_as_busy() -> None:
    from bench.profile_summary import summarize

    raw = ("Thread._bootstrap (threading.py:1002);_worker (concurrent/futures/thread.py:81) 90\n"
           "main (x.py:1);InlineConnection._execute (store/sqlite_inline.py:54) 10\n")
    summary = summarize(raw)
    assert "90.0%  idle (thread pool waiting for work)" in summary
    assert "busy samples by package of the running frame (10)" in summary
    assert "100.0%  store/sqlite_inline.py" in summary
