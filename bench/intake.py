"""The intake API under load (issue #15, point 5): single `POST /api/v1/items` at 16 connections,
and `POST /api/v1/items:batch` with 500 items per request at 4 connections, on SQLite and
PostgreSQL — with a baseline measured in the same run: the ceiling answering the same body, and
the chat 上报 path (the `ingest` scenario; reused when the run already has it).

Run as: python -m bench intake --databases sqlite,postgresql --duration 10 [--merge]

Both loads come from wrk with bench/lua/body.lua (bench/payloads.py: `intake_item`): every item
carries its own external id and link (`bench<run tag>t<thread>n<counter>`), so every request
creates new items; the batch script puts 500 such items in each body and adds up the `created`
count of each answer. After each measured run the rows are counted: every item the API
acknowledged is in the database, once.

Why wrk with 4 connections for the batch: the same load generator as every other point, in C on
the other core, so building 500 items per request never takes CPU from the server; 4 batches in
flight keep the server busy (one parsed while another commits) the way a source system's few
pushing workers would, and more would only queue behind SQLite's single writer.

The dutybot under test runs config.example.toml as the other scenarios do, with two changes the
intake needs: the WeCom channel is on (its group robot pointed at the fake platform), so each
item's announcement in wecom_duty is really posted; and `[api] rate_limit_per_minute` is the
configuration's maximum (100,000 per token), so the limiter is exercised but never answers 429 at
these rates (the example's 600 a minute guards production against a runaway client). Each wrk run
gets a fresh token.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from bench.common import HOST, PYTHON, WORK, Process, free_port, rss_mb
from bench.payloads import INTAKE_SOURCE, INTAKE_SUMMARY, LoadSpec, cut, intake_headers, intake_item
from bench.results import _db, _fmt, _met, profile_links
from bench.scenarios import Bench, bench_config, fresh_database, ingestion, require_wrk, run_db
from bench.wrk import WrkResult
from domain.vocab import Scope
from store import api_tokens
from store.db import Database
from store.models import ItemEvent, ItemSource, OutboxMessage

SINGLE_PATH = "/api/v1/items"
BATCH_PATH = "/api/v1/items:batch"
BATCH_SIZE = 500  # [api] batch_max_items: the most one request may carry
BATCH_CONNECTIONS = 4
BATCH_TIMEOUT_S = 60.0  # a batch queued behind three others on one writer takes seconds, not a timeout
# A batch point lasts at least this long (also in --quick): at a few hundred items a second a batch
# of 500 takes seconds, and a shorter point would hold no answered batch at all.
BATCH_MIN_SECONDS = 10.0
RATE_LIMIT = 100_000  # [api] rate_limit_per_minute: the configuration's maximum
SINGLE_P99_MS = 50.0
BATCH_ITEMS_PER_S = 2_000.0
# The WeCom channel's secrets (config.example.toml's env names): a valid token and 43-character
# AES key; its group robot is the fake platform.
WECOM_TOKEN = "benchToken0123"
WECOM_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SCENARIO_NAMES = ("intake_ceiling", "intake_single", "intake_batch")
# bot/api/items.py's warning for a request answered 503 because the database did not keep it.
_NOT_KEPT = re.compile(r"intake API: (?:item|batch) not kept: (\w+)")


def intake_config() -> Path:
    """bench_config() with the rate limit at the configuration's maximum."""
    source = bench_config().read_text(encoding="utf-8")
    old = "rate_limit_per_minute = 600"
    if old not in source:
        raise RuntimeError(f"config.example.toml no longer contains {old!r}; update bench/intake.py")
    path = WORK / "bench-intake-config.toml"
    path.write_text(source.replace(old, f"rate_limit_per_minute = {RATE_LIMIT}", 1), encoding="utf-8")
    return path


def wecom_env(bench: Bench) -> dict[str, str]:
    return {
        "DUTYBOT_WECOM_TOKEN": WECOM_TOKEN,
        "DUTYBOT_WECOM_AES_KEY": WECOM_AES_KEY,
        "DUTYBOT_WECOM_WEBHOOK": f"{bench.robot_base()}/cgi-bin/webhook/send?key=bench",
    }


def new_token(db_url: str) -> str:
    """A fresh items:write token for the intake source (what `dutybot api token create` makes)."""
    async def make(db: Database) -> str:
        async with db.transaction() as session:
            _, plaintext = await api_tokens.create(session, INTAKE_SOURCE, (Scope.ITEMS_WRITE,),
                                                   datetime.now(UTC), "bench")
        return plaintext

    token: str = run_db(db_url, make)
    return token


def intake_spec(token: str, *, batch: bool, threads: int = 1, run_tag: str | None = None) -> LoadSpec:
    """A run's Lua: one item per request, or BATCH_SIZE of them (counting what each answer created)."""
    return LoadSpec(
        path=BATCH_PATH if batch else SINGLE_PATH, headers=intake_headers(token), template=cut(intake_item()),
        text=INTAKE_SUMMARY, run_tag=run_tag or uuid.uuid4().hex[:8], threads=threads,
        items_per_request=BATCH_SIZE if batch else 0, count_created=batch,
    )


# -- the row check --------------------------------------------------------------------------------------


async def intake_check(db: Database, run_tag: str) -> dict[str, int]:
    """What one run left in the database: its items (by their external ids), each once, each with
    its `reported` audit entry and its announcement (`notice:item<id>:reported`; other messages
    about these items, e.g. reminders, are counted apart)."""
    mine = (select(ItemSource.item_id).where(ItemSource.source_system == INTAKE_SOURCE,
                                             ItemSource.external_id.like(f"bench{run_tag}t%")).subquery())
    if not db.sqlite:
        # Fresh statistics first: the tables grew from empty within seconds, autovacuum has not caught
        # up, and with the planner's idea of an empty item_sources the announcement count became a
        # nested loop over the outbox that ran past the 60-second statement timeout.
        async with db.engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("ANALYZE item_sources, items, item_events, outbox"))
    async with db.read() as session:
        if not db.sqlite:
            # One snapshot for every count: a batch abandoned by wrk at its stop may still commit
            # while the counts run, and counts from two moments would disagree (READ COMMITTED).
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})

        async def count(query: Any) -> int:
            return int((await session.execute(query)).scalar_one())

        sources = await count(select(func.count()).select_from(mine))
        items = await count(select(func.count(func.distinct(mine.c.item_id))))
        reported = await count(select(func.count()).select_from(ItemEvent).where(
            ItemEvent.action == "reported", ItemEvent.item_id.in_(select(mine.c.item_id))))
        announced = await count(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.item_id.in_(select(mine.c.item_id)), OutboxMessage.key.like("notice:item%:reported")))
        other_rows = await count(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.item_id.in_(select(mine.c.item_id)), OutboxMessage.key.not_like("notice:item%:reported")))
        duplicates = await count(text(
            "SELECT count(*) FROM (SELECT number FROM items GROUP BY number HAVING count(*) > 1) AS d"))
    return {"external_ids": sources, "items": items, "reported_audit_entries": reported,
            "announcements_queued": announced, "other_outbox_rows": other_rows, "duplicate_item_numbers": duplicates}


def judge(check: dict[str, int], acknowledged: int, *, per_request: int, connections: int) -> dict[str, Any]:
    """Every acknowledged item kept, once, with its audit entry and its announcement queued: the
    items beyond the acknowledged ones are requests wrk abandoned in flight at its stop (at most
    one per connection, whole batches)."""
    extra = check["items"] - acknowledged
    return {
        **check,
        "acknowledged": acknowledged,
        "in_flight_at_stop": extra,
        "every_acknowledged_item_kept_once": (
            check["external_ids"] == check["items"] == check["reported_audit_entries"] == check["announcements_queued"]
            and check["duplicate_item_numbers"] == 0
            and 0 <= extra <= per_request * connections and extra % per_request == 0
        ),
    }


# -- the scenario ---------------------------------------------------------------------------------------


def intake(bench: Bench, database: str) -> None:
    """The baseline (once per run), then single creates and batches on `database`."""
    require_wrk(bench)
    bench.start_fake()
    if _find(bench.points, "intake_ceiling") is None:
        intake_ceiling(bench)
    if _find(bench.points, "ingest", database) is None:
        # The chat 上报 path on the same database, as the `ingest` scenario measures it (no profile:
        # the committed ingest profiles belong to the full run).
        with _no_profile(bench):
            ingestion(bench, database)
    print(f"intake API on {database}", flush=True)
    with fresh_database(database, "intake") as db_url:
        server, port = bench.start_dutybot(f"dutybot-intake-{database}", db_url, config=intake_config(),
                                           env=wecom_env(bench))
        try:
            time.sleep(bench.settings.settle_pause)
            single(bench, database, db_url, server, f"http://{HOST}:{port}{SINGLE_PATH}")
            batch(bench, database, db_url, server, f"http://{HOST}:{port}{BATCH_PATH}")
        finally:
            server.stop()


def intake_ceiling(bench: Bench) -> None:
    """The bare aiohttp handler reading the same item body (bench/servers/ceiling.py)."""
    print("intake ceiling (bare aiohttp handler, the same item body)", flush=True)
    port = free_port()
    server = Process("ceiling-intake", [PYTHON, "-m", "bench.servers.ceiling", "--port", str(port)],
                     cpu=bench.cores.server)
    bench.server_pids.add(server.pid)
    try:
        server.wait_port(port)
        url = f"http://{HOST}:{port}{SINGLE_PATH}"
        result, _, _ = bench.measure("intake-ceiling", url, lambda: intake_spec("ceiling", batch=False),
                                     pid=server.server_pid(), settle="wecom")
        bench.point("intake_ceiling", None, result, items_per_s=result.requests_per_s,
                    server_cpu_ms_per_item=result.server_cpu_ms_per_request)
    finally:
        server.stop()


def in_service(database: str, db_url: str) -> Callable[[], None] | None:
    """What brings the intake's database, after the warm-up, to the state of one in service: on
    PostgreSQL, planner statistics (ANALYZE, as autovacuum's autoanalyze takes them).

    The scenario's database is created empty a few seconds before the load. PostgreSQL plans a
    prepared statement for its parameters five times, then keeps one generic plan if it costs no
    more — and for tables of a few rows a sequential scan costs no more. It keeps that plan until
    new statistics invalidate it, and autovacuum looks at a database once a minute at most
    (autovacuum_naptime), after the measured run. Measured without this step (30 s, 16
    connections): the (source system, external id) lookup filtered every row of the source
    system and the link lookup scanned all items, each growing from 0.6 ms to 3–4 ms per group as
    the run added items, and the p99 grew with them. A database in service has its statistics;
    bench/README.md gives the figures without this step too. SQLite keeps no such plans: it has
    nothing to do here."""
    if database == "sqlite":
        return None
    return lambda: run_db(db_url, _analyze)


async def _analyze(db: Database) -> None:
    async with db.engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("ANALYZE"))


def _log_size(server: Process) -> int:
    return len(server.log.read_text(encoding="utf-8", errors="replace"))


def single(bench: Bench, database: str, db_url: str, server: Process, url: str) -> None:
    connections = bench.settings.connections
    log_from = _log_size(server)  # the warm-up's refusals count too: a point is its warm-up and its run
    result, spec, before = bench.measure(
        f"intake-single-{database}", url, lambda: intake_spec(new_token(db_url), batch=False,
                                                              threads=bench.settings.threads),
        settle="wecom", pid=server.server_pid(), connections=connections,
        after_warmup=in_service(database, db_url))
    acknowledged = result.counts.get("ok", result.requests - result.non_2xx)
    _finish(bench, "intake_single", database, db_url, result, spec, before, acknowledged=acknowledged,
            per_request=1, connections=connections, server=server,
            items_per_s=acknowledged / result.duration_s if result.duration_s else 0.0,
            cpu_per_item=result.server_cpu_ms_per_request, log_from=log_from)
    bench.profile(f"intake-single-{database}", server.server_pid(), url,
                  lambda: intake_spec(new_token(db_url), batch=False, threads=bench.settings.threads),
                  connections=connections)


def batch(bench: Bench, database: str, db_url: str, server: Process, url: str) -> None:
    log_from = _log_size(server)
    result, spec, before = bench.measure(
        f"intake-batch-{database}", url, lambda: intake_spec(new_token(db_url), batch=True,
                                                             threads=bench.settings.threads),
        settle="wecom", pid=server.server_pid(), connections=BATCH_CONNECTIONS, timeout_s=BATCH_TIMEOUT_S,
        duration=max(bench.settings.duration, BATCH_MIN_SECONDS), after_warmup=in_service(database, db_url))
    created = result.counts.get("created", 0)
    cpu = result.server_cpu_ms_per_request
    _finish(bench, "intake_batch", database, db_url, result, spec, before, acknowledged=created,
            per_request=BATCH_SIZE, connections=BATCH_CONNECTIONS, server=server,
            items_per_s=created / result.duration_s if result.duration_s else 0.0,
            cpu_per_item=round(cpu / BATCH_SIZE, 3) if cpu is not None else None, log_from=log_from)
    bench.profile(f"intake-batch-{database}", server.server_pid(), url,
                  lambda: intake_spec(new_token(db_url), batch=True, threads=bench.settings.threads),
                  connections=BATCH_CONNECTIONS, timeout_s=BATCH_TIMEOUT_S)


def settled_check(db_url: str, run_tag: str, timeout: float = 30.0) -> dict[str, int]:
    """The row check once the server has finished the requests wrk abandoned at its stop (it
    does not cancel a handler whose client left; such a request may commit a moment later):
    two checks a second apart that agree."""
    deadline = time.monotonic() + timeout
    last: dict[str, int] = run_db(db_url, lambda db: intake_check(db, run_tag))
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now: dict[str, int] = run_db(db_url, lambda db: intake_check(db, run_tag))
        if now == last:
            break
        last = now
    return last


def refusals(log: str) -> dict[str, int]:
    """The server's own account of the requests it did not keep ("intake API: item not kept:
    LockNotAvailableError" and the like: answered 503), by exception, from its log."""
    found = Counter(m.group(1) for m in _NOT_KEPT.finditer(log))
    return dict(sorted(found.items()))


def _finish(bench: Bench, scenario: str, database: str, db_url: str, result: WrkResult, spec: LoadSpec,
            before: int, *, acknowledged: int, per_request: int, connections: int, server: Process,
            items_per_s: float, cpu_per_item: float | None, log_from: int) -> None:
    """Count the run's rows and the announcements posted, and record the point."""
    in_window = bench.delivered()["wecom"] - before
    not_kept = refusals(server.log.read_text(encoding="utf-8", errors="replace")[log_from:])
    check = settled_check(db_url, spec.run_tag)
    verdict = judge(check, acknowledged, per_request=per_request, connections=connections)
    print(f"    rows: {verdict['items']} items for {acknowledged} acknowledged "
          f"({verdict['in_flight_at_stop']} in flight at the stop); every acknowledged item kept once: "
          f"{verdict['every_acknowledged_item_kept_once']}; {items_per_s:.1f} items/s; "
          f"{verdict['announcements_queued']} announcements queued, {in_window} posts during the run", flush=True)
    if not_kept:
        print(f"    the server answered 503 (not kept): {not_kept}", flush=True)
    bench.point(scenario, database, result, check=verdict, items_per_s=round(items_per_s, 1), not_kept=not_kept,
                server_cpu_ms_per_item=cpu_per_item, items_per_request=per_request, connections=connections,
                announcements_posted_in_window=in_window, rss_mb=round(rss_mb(server.server_pid()), 1))


@contextlib.contextmanager
def _no_profile(bench: Bench) -> Iterator[None]:
    saved = bench.settings.profile
    bench.settings.profile = False
    try:
        yield
    finally:
        bench.settings.profile = saved


def _find(points: Sequence[Mapping[str, Any]], scenario: str, database: str | None = None) -> Mapping[str, Any] | None:
    return next((p for p in points if p.get("scenario") == scenario
                 and (database is None or p.get("database") == database)), None)


# -- results --------------------------------------------------------------------------------------------


def targets(points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The issue's two intake targets beside what was measured (PostgreSQL shown, no target)."""
    rows: list[dict[str, Any]] = []
    for database in ("sqlite", "postgresql"):
        point = _find(points, "intake_single", database)
        if point is not None:
            rows.append({
                "target": f"single POST /api/v1/items, {_db(database)}, {point['connections']} connections",
                "required": f"p99 < {SINGLE_P99_MS:g} ms",
                "achieved": f"p99 {point['p99_ms']:,.1f} ms ({point['items_per_s']:,.0f} items/s)",
                "met": point["p99_ms"] < SINGLE_P99_MS,
            })
    for database in ("sqlite", "postgresql"):
        point = _find(points, "intake_batch", database)
        if point is not None:
            required = f"≥ {BATCH_ITEMS_PER_S:,.0f} items/s" if database == "sqlite" else "(no target)"
            rows.append({
                "target": f"POST /api/v1/items:batch, {BATCH_SIZE} items each, {_db(database)}, "
                          f"{point['connections']} connections",
                "required": required,
                "achieved": f"{point['items_per_s']:,.0f} items/s",
                "met": point["items_per_s"] >= BATCH_ITEMS_PER_S if database == "sqlite" else None,
            })
    return rows


LABELS = {
    "intake_ceiling": "ceiling: bare aiohttp, same item body",
    "ingest": "chat 上报 (the ingest scenario)",
    "intake_single": "POST /api/v1/items",
    "intake_batch": f"POST /api/v1/items:batch ({BATCH_SIZE} items each)",
}


def section(report: Mapping[str, Any], *, merged: bool = False) -> list[str]:
    """RESULTS.md's intake section, from a report holding the intake points: a full run, or the
    intake run merged in with `--merge` (then its skips are listed here too)."""
    order = ("intake_ceiling", "ingest", "intake_single", "intake_batch")
    points = sorted((p for p in report["points"] if p.get("scenario") in order),
                    key=lambda p: ((None, "sqlite", "postgresql").index(p.get("database")), order.index(p["scenario"])))
    if not any(p.get("scenario") in SCENARIO_NAMES for p in points):
        return []
    ceiling = _find(points, "intake_ceiling")
    base = float(ceiling["requests_per_s"]) if ceiling else 0.0
    settings = report["settings"]
    machine = report.get("machine")
    where = (f" on {machine['cpu']}, {machine['cores']} cores ({machine['pinning']})" if machine else "")
    lines = ["", "## 接收接口 (intake API)", "",
             f"Generated by `{report['command']}` on {report['date']}{where}; rerun: `.venv/bin/python -m bench "
             "intake --databases sqlite,postgresql --duration 10 --merge` (5–10 min: it waits for other jobs "
             "before each point). "
             f"wrk: single creates at {settings['connections']} connections, batches of {BATCH_SIZE} at "
             f"{BATCH_CONNECTIONS}; {settings['duration']:g} s per point after a {settings['warmup']:g} s warm-up. "
             "Every item has its own external id and link; the rows are counted after each run. The ratios "
             "(× the ceiling's rate, × the chat 上报 rate of the same run) and the CPU per item carry across "
             "machines; absolute rates do not. On PostgreSQL the database is ANALYZEd after each warm-up, "
             "as a database in service has its planner statistics (`in_service` in bench/intake.py says why). "
             "Announcements: the WeCom group robot takes 20 posts a minute, so "
             "during a run they wait and the outbox folds them into digests (posts near 0 by design).", "",
             "| Path | Database | requests/s | items/s | p50 ms | p99 ms | × ceiling | × 上报 | server CPU ms/item "
             "| non-2xx | Notes |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for point in points:
        lines.append(_row(point, base, points))
    lines += ["", "| Target | Required | Achieved | |", "|---|---|---|---|"]
    lines += [f"| {r['target']} | {r['required']} | {r['achieved']} | {_met(r['met'])} |" for r in targets(points)]
    lines += budget(points)
    profiles = [p for p in report.get("profiles", []) if p["name"].startswith("intake-")]
    if profiles:
        lines += ["", "Profiles (py-spy, separate unmeasured runs):", "", *profile_links(profiles)]
    if merged and report.get("skipped"):
        lines += ["", "Skipped in that run:", ""] + [f"- {s['scenario']}: {s['reason']}" for s in report["skipped"]]
    return lines


def budget(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """What each target asks of the server's one core, in CPU per item, beside what an item cost."""
    lines: list[str] = []
    single = _find(points, "intake_single", "sqlite")
    if single is not None and single.get("server_cpu_ms_per_item"):
        rate = single["connections"] / (SINGLE_P99_MS / 1000)
        allowed = 1000 / rate
        lines.append(f"- p99 < {SINGLE_P99_MS:g} ms at {single['connections']} connections needs at least "
                     f"{rate:,.0f} items/s (Little's law: the mean latency is connections ÷ throughput, and the "
                     f"p99 is above the mean), i.e. at most {allowed:.2f} ms of server CPU per item on its one core; "
                     f"an item cost {single['server_cpu_ms_per_item']:.2f} ms on SQLite "
                     f"({single['server_cpu_ms_per_item'] / allowed:.1f}× that).")
    batch = _find(points, "intake_batch", "sqlite")
    if batch is not None and batch.get("server_cpu_ms_per_item"):
        allowed = 1000 / BATCH_ITEMS_PER_S
        lines.append(f"- {BATCH_ITEMS_PER_S:,.0f} items/s needs at most {allowed:.2f} ms of server CPU per item; a "
                     f"batched item cost {batch['server_cpu_ms_per_item']:.2f} ms on SQLite "
                     f"({batch['server_cpu_ms_per_item'] / allowed:.1f}× that).")
    for point in points:
        if point.get("scenario") == "intake_batch" and point.get("not_kept"):
            refused = sum(point["not_kept"].values())
            causes = ", ".join(point["not_kept"])
            lines.append(f"- {_db(point['database'])}: {refused:,} batches (warm-up included) were answered 503 and "
                         f"kept nothing ({causes} in the server's log; reproduced as PostgreSQL's lock timeout on the "
                         "item-number counter's row, which a batch holds until it commits).")
    if lines:
        lines = ["", "What the targets ask (what the profiles and A/B runs showed, and what was changed to meet them: "
                 "[README.md](README.md#the-intake-api-why-the-targets-are-missed)):", "", *lines]
    return lines


def _row(point: Mapping[str, Any], base: float, points: Sequence[Mapping[str, Any]]) -> str:
    scenario = point["scenario"]
    items = float(point.get("items_per_s", point["requests_per_s"]))
    ratio = f"{items / base:.3f}" if base and scenario != "intake_ceiling" else ("1.000" if base else "–")
    chat = _find(points, "ingest", point.get("database")) if scenario in ("intake_single", "intake_batch") else None
    versus = f"{items / chat['requests_per_s']:.2f}×" if chat and chat.get("requests_per_s") else "–"
    cpu = point.get("server_cpu_ms_per_item", point.get("server_cpu_ms_per_request"))
    errors = point.get("non_2xx", 0) + sum(point.get("socket_errors", {}).values())
    notes = ""
    check = point.get("check", {})
    if scenario in ("intake_single", "intake_batch"):
        notes = (f"{check.get('items', 0):,} items in the database for {check.get('acknowledged', 0):,} acknowledged "
                 f"({check.get('in_flight_at_stop', 0):,} in flight at the stop), every acknowledged item kept once: "
                 f"{'yes' if check.get('every_acknowledged_item_kept_once') else 'NO'}; "
                 f"{check.get('announcements_queued', 0):,} announcements queued, "
                 f"{point.get('announcements_posted_in_window', 0):,} posted during the run")
    elif scenario == "ingest":
        notes = "the same run's chat report: signed callback, item, grade question, reply posted"
    if point.get("not_kept"):
        refused = ", ".join(f"{n:,} × {name}" for name, n in point["not_kept"].items())
        notes = f"**answered 503 (not kept), warm-up included: {refused}**; " + notes
    other = point.get("other_cpu_share")
    if other is not None and other >= 0.10:
        notes = f"**disturbed: other processes used {other:.0%} of a core during the run**; " + notes
    return (f"| {LABELS.get(scenario, scenario)} | {_db(point.get('database'))} | {_fmt(point['requests_per_s'])} | "
            f"{_fmt(items)} | {_fmt(point['p50_ms'], 2)} | {_fmt(point['p99_ms'], 2)} | {ratio} | {versus} | "
            f"{_fmt(cpu, 3)} | {_fmt(errors)} | {notes} |")
