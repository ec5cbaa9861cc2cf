"""The intake bench's own pieces, without wrk and without timing (bench/intake.py): the bodies its
Lua sends are valid intake requests that make one new item each against the real app, every
request and every batch item has its own external id and link, the server it starts accepts its
WeCom secrets and posts the announcements to the fake platform, the row check counts what a run
left, and the results section puts each figure beside its target."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from sqlalchemy import text

from bench import intake
from bench.payloads import (
    BATCH_CLOSE,
    BATCH_OPEN,
    INTAKE_SOURCE,
    INTAKE_SUMMARY,
    batch_body,
    intake_item,
    message_id,
    render_lua,
)
from bench.results import markdown, merge_section
from bench.scenarios import Bench, Settings, bench_config, run_db
from bench.servers.fake_platform import COUNTS
from bench.servers.fake_platform import make_app as fake_platform_app
from bot.clock import ManualClock
from bot.runtime import RUNTIME, Runtime
from domain.config import Config, load_config
from domain.vocab import Scope
from store import api_tokens
from store.db import Database
from tests.conftest import Bot, start_bot

# What body.lua looks for in a batch answer (kept in step with the Lua's string.match).
CREATED = re.compile(r'"created":\s*(\d+),\s*"duplicates"')


@asynccontextmanager
async def bench_bot(config: Config, clock: ManualClock) -> AsyncIterator[tuple[Bot, dict[str, int]]]:
    """The bot as the intake bench runs it — its rate limit, its WeCom secrets — posting to the
    bench's own fake platform (in this process); yields the bot and the platform's counts."""
    platform = TestServer(fake_platform_app(), host="127.0.0.1")
    await platform.start_server()
    bench = Bench(Settings())
    bench.fake_port = platform.port or 0
    changed = config.model_copy(update={"api": config.api.model_copy(update={"rate_limit_per_minute": 100_000})})
    client = await start_bot(changed, clock, intake.wecom_env(bench))
    try:
        yield Bot(client, clock, changed), platform.app[COUNTS]
    finally:
        await client.close()
        await platform.close()


async def bearer(bot: Bot) -> str:
    async with bot.runtime.db.transaction() as session:
        _, plaintext = await api_tokens.create(session, INTAKE_SOURCE, (Scope.ITEMS_WRITE,), bot.clock.now(), "bench")
    return plaintext


async def delivered(runtime: Runtime) -> None:
    await runtime.outbox.drain()
    while await runtime.outbox.run_once():
        pass


def test_the_bench_config_raises_only_the_rate_limit_to_the_configurations_maximum() -> None:
    example = load_config(bench_config())
    bench = load_config(intake.intake_config())
    assert bench.api.rate_limit_per_minute == intake.RATE_LIMIT == 100_000
    assert bench.api.model_copy(update={"rate_limit_per_minute": 600}) == example.api
    assert bench.api.batch_max_items == intake.BATCH_SIZE == 500


def test_the_lua_is_built_from_the_item_pieces_and_sends_batches_of_500() -> None:
    single = intake.intake_spec("tok", batch=False, run_tag="ab12")
    script = render_lua(single)
    assert 'local PATH = [[\n/api/v1/items]]' in script
    assert "[ [[\nAuthorization]] ] = [[\nBearer tok]]" in script
    assert "local ITEMS_PER_REQUEST = 0" in script and "local COUNT_CREATED = false" in script
    assert single.template.slots == ("id", "id", "text")
    batched = render_lua(intake.intake_spec("tok", batch=True, run_tag="ab12"))
    assert 'local PATH = [[\n/api/v1/items:batch]]' in batched
    assert "local ITEMS_PER_REQUEST = 500" in batched and "local COUNT_CREATED = true" in batched
    assert f"local BATCH_OPEN = [[\n{BATCH_OPEN}]]" in batched and f"local BATCH_CLOSE = [[\n{BATCH_CLOSE}]]" in batched


def test_every_request_and_every_batch_item_has_its_own_id_and_link() -> None:
    template = intake.intake_spec("tok", batch=True, run_tag="ab12").template
    bodies = [json.loads(batch_body(template, INTAKE_SUMMARY, "ab12", thread=t, request=r, size=500))
              for t in (1, 2) for r in (1, 2)]
    items = [item for body in bodies for item in body["items"]]
    assert len(items) == 2_000
    assert len({i["external_id"] for i in items}) == 2_000 and len({i["url"] for i in items}) == 2_000
    first = bodies[0]["items"][0]
    assert first == {**intake_item(), "external_id": "benchab12t1n1", "url": "https://weibo.com/7/benchab12t1n1",
                     "summary": "网友在微博反映县政务服务大厅排队三小时无人引导，编号benchab12t1n1"}
    # thread 1's second batch goes on from its first batch's last counter
    assert bodies[1]["items"][0]["external_id"] == message_id("ab12", 1, 501, numeric=False)


async def test_bench_requests_make_one_item_each_and_their_announcements_are_posted(
    config: Config, clock: ManualClock
) -> None:
    async with bench_bot(config, clock) as (bot, counts):
        headers = {"Authorization": f"Bearer {await bearer(bot)}", "Content-Type": "application/json"}
        template = intake.intake_spec("unused", batch=False, run_tag="s1").template
        ids = [message_id("s1", 1, n, numeric=False) for n in (1, 2, 3)]
        for msg in ids:
            body = template.assemble({"id": msg, "text": INTAKE_SUMMARY.format(id=msg)})
            response = await bot.client.post("/api/v1/items", data=body.encode(), headers=headers)
            assert response.status == 201, await response.text()
            item = await response.json()
            assert item["summary"] == f"县政务服务大厅排长队：网友在微博反映县政务服务大厅排队三小时无人引导，编号{msg}"
            assert item["lead_unit"] == {"id": "gov_office", "name": "清河县人民政府办公室"}
            assert item["chat"] == "wecom_duty"
        check = await intake.intake_check(bot.runtime.db, "s1")
        assert check == {"external_ids": 3, "items": 3, "reported_audit_entries": 3, "announcements_queued": 3,
                         "other_outbox_rows": 0, "duplicate_item_numbers": 0}
        verdict = intake.judge(check, 3, per_request=1, connections=16)
        assert verdict["every_acknowledged_item_kept_once"] and verdict["in_flight_at_stop"] == 0
        await delivered(bot.client.app[RUNTIME])
        assert counts["wecom"] == 3  # each announcement posted to the WeCom group robot


async def test_a_bench_batch_creates_every_item_and_its_answer_is_counted_as_the_lua_counts(
    config: Config, clock: ManualClock
) -> None:
    async with bench_bot(config, clock) as (bot, _):
        headers = {"Authorization": f"Bearer {await bearer(bot)}", "Content-Type": "application/json"}
        template = intake.intake_spec("unused", batch=True, run_tag="b1").template
        for request in (1, 2):
            body = batch_body(template, INTAKE_SUMMARY, "b1", thread=1, request=request, size=20)
            response = await bot.client.post("/api/v1/items:batch", data=body.encode(), headers=headers)
            assert response.status == 200, await response.text()
            answer = await response.text()
            match = CREATED.search(answer)
            assert match is not None and int(match.group(1)) == 20
            assert json.loads(answer)["failed"] == 0
        check = await intake.intake_check(bot.runtime.db, "b1")
        assert check["items"] == check["external_ids"] == check["reported_audit_entries"] == 40
        assert intake.judge(check, 40, per_request=20, connections=4)["every_acknowledged_item_kept_once"]
        # an acknowledged item missing from the database, or a part of a batch, is never "kept"
        assert not intake.judge(check, 60, per_request=20, connections=4)["every_acknowledged_item_kept_once"]
        assert not intake.judge(check, 30, per_request=20, connections=4)["every_acknowledged_item_kept_once"]


def test_the_servers_503s_are_counted_from_its_log_by_cause() -> None:
    log = ("2026-12-04 07:13:18,722 WARNING bot.api.items: intake API: batch not kept: DBAPIError\n"
           "2026-12-04 07:13:19,001 WARNING bot.outbox_digest: folded 6 waiting messages for chat wecom_duty\n"
           "2026-12-04 07:13:29,374 WARNING bot.api.items: intake API: batch not kept: DBAPIError\n"
           "2026-12-04 07:13:30,100 WARNING bot.api.items: intake API: item not kept: OperationalError\n")
    assert intake.refusals(log) == {"DBAPIError": 2, "OperationalError": 1}
    assert intake.refusals("") == {}


def _point(scenario: str, database: str | None, rate: float, p99: float, **extra: Any) -> dict[str, Any]:
    return {"scenario": scenario, "database": database, "requests_per_s": rate, "p50_ms": p99 / 2, "p99_ms": p99,
            "requests": int(rate * 10), "duration_s": 10.0, "non_2xx": 0, "socket_errors": {}, **extra}


def _intake_point(scenario: str, database: str, rate: float, p99: float, items_per_s: float, cpu: float,
                  connections: int) -> dict[str, Any]:
    check = {"items": int(items_per_s * 10) + connections, "acknowledged": int(items_per_s * 10),
             "in_flight_at_stop": connections, "every_acknowledged_item_kept_once": True,
             "announcements_queued": int(items_per_s * 10) + connections}
    return _point(scenario, database, rate, p99, items_per_s=items_per_s, server_cpu_ms_per_item=cpu,
                  connections=connections, check=check, announcements_posted_in_window=12)


REPORT = {
    "command": "python -m bench intake --duration 10 --merge", "date": "2026-12-04 07:00 UTC",
    "settings": {"quick": False, "connections": 16, "threads": 1, "duration": 10.0, "warmup": 5.0},
    "skipped": [{"scenario": "intake postgresql", "reason": "no server"}],
    "profiles": [{"name": "intake-single-sqlite", "raw": "bench/profiles/intake-single-sqlite.collapsed.txt",
                  "summary": "bench/profiles/intake-single-sqlite.summary.txt"}],
    "points": [
        _point("intake_ceiling", None, 10_000.0, 2.0, items_per_s=10_000.0, server_cpu_ms_per_item=0.05),
        _point("ingest", "sqlite", 250.0, 80.0, server_cpu_ms_per_request=3.5),
        _intake_point("intake_single", "sqlite", 500.0, 40.0, 500.0, 1.8, 16),
        _intake_point("intake_batch", "sqlite", 3.0, 2_000.0, 1_500.0, 0.6, 4),
        {**_intake_point("intake_batch", "postgresql", 0.6, 4_100.0, 50.0, 2.6, 4), "non_2xx": 5,
         "not_kept": {"DBAPIError": 9}},
    ],
}


def test_the_intake_section_puts_each_figure_beside_its_baseline_and_target() -> None:
    text = "\n".join(intake.section(REPORT, merged=True))
    assert "## 接收接口 (intake API)" in text
    assert ("rerun: `.venv/bin/python -m bench intake --databases sqlite,postgresql --duration 10 --merge`"
            in text)
    assert "| ceiling: bare aiohttp, same item body | – | 10,000.0 | 10,000.0 | 1.00 | 2.00 | 1.000 | – | 0.050 | 0 |" \
        in text
    assert ("| POST /api/v1/items | SQLite | 500.0 | 500.0 | 20.00 | 40.00 | 0.050 | 2.00× | 1.800 | 0 | "
            "5,016 items in the database for 5,000 acknowledged (16 in flight at the stop), every acknowledged item "
            "kept once: yes; 5,016 announcements queued, 12 posted during the run |") in text
    assert ("| POST /api/v1/items:batch (500 items each) | SQLite | 3.0 | 1,500.0 | 1,000.00 | 2,000.00 | 0.150 "
            "| 6.00× |") in text
    assert ("| single POST /api/v1/items, SQLite, 16 connections | p99 < 50 ms | p99 40.0 ms (500 items/s) "
            "| met |") in text
    assert ("| POST /api/v1/items:batch, 500 items each, SQLite, 4 connections | ≥ 2,000 items/s | 1,500 items/s "
            "| **missed** |") in text
    assert "- intake-single-sqlite: [intake-single-sqlite.summary.txt](profiles/intake-single-sqlite.summary.txt)" \
        in text
    assert ("| POST /api/v1/items:batch (500 items each) | PostgreSQL | 0.6 | 50.0 | 2,050.00 | 4,100.00 | 0.005 | – "
            "| 2.600 | 5 | **answered 503 (not kept), warm-up included: 9 × DBAPIError**; 504 items") in text
    assert ("| POST /api/v1/items:batch, 500 items each, PostgreSQL, 4 connections | (no target) | 50 items/s "
            "| – |") in text
    assert ("- p99 < 50 ms at 16 connections needs at least 320 items/s (Little's law: the mean latency is "
            "connections ÷ throughput, and the p99 is above the mean), i.e. at most 3.12 ms of server CPU per item "
            "on its one core; an item cost 1.80 ms on SQLite (0.6× that).") in text
    assert ("- 2,000 items/s needs at most 0.50 ms of server CPU per item; a batched item cost 0.60 ms on SQLite "
            "(1.2× that).") in text
    assert ("- PostgreSQL: 9 batches (warm-up included) were answered 503 and kept nothing (DBAPIError in the "
            "server's log; reproduced as PostgreSQL's lock timeout on the item-number counter's row, which a batch "
            "holds until it commits).") in text
    assert "- intake postgresql: no server" in text


def test_a_merged_intake_run_is_its_own_section_and_leaves_the_figures_table_alone() -> None:
    main = {**REPORT, "command": "python -m bench all", "skipped": [], "profiles": [],
            "machine": {"cpu": "test cpu", "cores": 2, "memory_gib": 24.0, "kernel": "6.1", "pinning": "pinned"},
            "versions": {"python": "3.11"}, "points": [_point("ceiling", None, 20_000.0, 1.5)], "targets": []}
    before = markdown(main)
    assert "接收接口" not in before
    after = markdown({**main, "sections": {"intake": REPORT}})
    assert after.startswith(before.rstrip("\n"))
    assert "## 接收接口 (intake API)" in after and "- intake postgresql: no server" in after
    # in a full run the intake points are the report's own: the Figures table does not list them
    full = markdown({**main, "points": [*main["points"], *REPORT["points"]]})
    figures = full.split("## Targets")[0]
    assert "/api/v1/items" not in figures and "## 接收接口 (intake API)" in full


def test_merging_an_intake_run_into_a_full_run_replaces_its_intake_points_and_skips(tmp_path: Path) -> None:
    """A full run whose intake points are older (or whose PostgreSQL intake was skipped) takes a
    later `bench intake --merge`: the section shows the merged run, not the full run's points."""
    main = {**REPORT, "command": "python -m bench all", "profiles": [],
            "skipped": [{"scenario": "intake postgresql", "reason": "failed: TimeoutError: "},
                        {"scenario": "peer", "reason": "no venv"}],
            "machine": {"cpu": "test cpu", "cores": 2, "memory_gib": 24.0, "kernel": "6.1", "pinning": "pinned"},
            "versions": {"python": "3.11"},
            "points": [_point("ceiling", None, 20_000.0, 1.5),
                       _intake_point("intake_single", "sqlite", 300.0, 90.0, 300.0, 3.0, 16)], "targets": []}
    json_path, markdown_path = tmp_path / "results.json", tmp_path / "RESULTS.md"
    json_path.write_text(json.dumps(main), encoding="utf-8")

    merge_section("intake", REPORT, markdown_path, json_path)

    merged = json.loads(json_path.read_text(encoding="utf-8"))
    assert [p["scenario"] for p in merged["points"]] == ["ceiling"]
    assert merged["skipped"] == [{"scenario": "peer", "reason": "no venv"}]
    text = markdown_path.read_text(encoding="utf-8")
    assert "p99 40.0 ms (500 items/s)" in text and "p99 90.0 ms" not in text
    assert "- intake postgresql: failed" not in text and "- intake postgresql: no server" in text


def test_the_measured_run_starts_from_planner_statistics_on_postgresql(pg_database: str) -> None:
    """After the warm-up the bench ANALYZEs the PostgreSQL database (bench/intake.in_service), as a
    database in service has its statistics; SQLite has nothing to take."""
    assert intake.in_service("sqlite", "sqlite+aiosqlite:///unused.db") is None

    async def analyses(db: Database) -> int:
        await db.upgrade()
        async with db.read() as session:
            count = await session.execute(text(
                "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'item_sources'"))
            return int(count.scalar_one())

    before = run_db(pg_database, analyses)
    step = intake.in_service("postgresql", pg_database)
    assert step is not None
    step()
    assert run_db(pg_database, analyses) == before + 1
