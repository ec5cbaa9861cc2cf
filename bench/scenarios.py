"""The scenarios: ceiling, report ingestion, read commands, the nonebot2 peer, memory.

Every load point: a short warm-up run, then the measured run (wrk, 16 connections, 30 s by
default), the server pinned to one core and wrk plus the fake platform to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import fill, postgres
from bench.common import (
    APP_SECRET,
    BENCH,
    HOST,
    PROFILES,
    PYTHON,
    ROBOT_SECRET,
    ROBOT_TOKEN,
    ROOT,
    WORK,
    Process,
    Skip,
    cpu_plan,
    cpu_seconds,
    free_port,
    get_json,
    other_cpu_seconds,
    process_cpu,
    rss_mb,
)
from bench.payloads import (
    DUTY_TEXT,
    ONEBOT_SELF_ID,
    QUERY_TEXT,
    REPORT_TEXT,
    LoadSpec,
    cut,
    dingtalk_headers,
    dingtalk_message,
    dingtalk_signatures,
    onebot_template,
    render_lua,
    signatures_for,
)
from bench.wrk import WrkMissing, WrkResult, ensure_wrk, pinned, run_wrk
from store.db import Database

CALLBACK = "/callback/dingtalk/dingtalk"
PEER_VENV = BENCH / ".peer-venv"
TOOLS_VENV = BENCH / ".tools-venv"
PEER_PACKAGES = ["nonebot2[fastapi,aiohttp]", "nonebot-adapter-onebot", "uvicorn"]


@dataclass
class Settings:
    quick: bool = False
    duration: float = 30.0
    warmup: float = 5.0
    connections: int = 16
    threads: int = 1
    items: int = 100_000
    roster_years: int = 5
    databases: tuple[str, ...] = ("sqlite", "postgresql")
    profile: bool = True
    install: bool = True
    profile_seconds: float = 20.0
    settle_pause: float = 2.0  # after a server starts, before measuring (migrations, first ticks)
    quiet_wait: float = 300.0  # before a measured run, wait this long at most for other jobs to finish

    @classmethod
    def make(cls, *, quick: bool, **changes: Any) -> Settings:
        if quick:
            base = cls(quick=True, duration=2.0, warmup=1.0, items=5_000, roster_years=1, profile=False,
                       settle_pause=0.5, quiet_wait=0.0)
        else:
            base = cls()
        for key, value in changes.items():
            if value is not None:
                setattr(base, key, value)
        return base


@dataclass
class Bench:
    settings: Settings
    points: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    profiles: list[dict[str, str]] = field(default_factory=list)
    cores: Any = field(default_factory=cpu_plan)
    fake: Process | None = None
    fake_port: int = 0
    server_pids: set[int] = field(default_factory=set)

    # -- shared pieces ----------------------------------------------------------------------------

    def skip(self, scenario: str, reason: str) -> None:
        print(f"  SKIP {scenario}: {reason}", flush=True)
        self.skipped.append({"scenario": scenario, "reason": reason})

    def start_fake(self) -> None:
        if self.fake is not None and self.fake.alive():
            return
        self.fake_port = free_port()
        self.fake = Process("fake-platform", [PYTHON, "-m", "bench.servers.fake_platform", "--port",
                                              str(self.fake_port)], cpu=self.cores.load)
        self.fake.wait_port(self.fake_port)

    def stop_fake(self) -> None:
        if self.fake is not None:
            self.fake.stop()
            self.fake = None

    def delivered(self) -> dict[str, int]:
        counts: dict[str, int] = get_json(f"http://{HOST}:{self.fake_port}/count")
        return counts

    def robot_base(self) -> str:
        return f"http://{HOST}:{self.fake_port}"

    def dutybot_env(self) -> dict[str, str]:
        return {
            "DUTYBOT_DINGTALK_APP_SECRET": APP_SECRET,
            "DUTYBOT_DINGTALK_WEBHOOK": f"{self.robot_base()}/robot/send?access_token={ROBOT_TOKEN}",
            "DUTYBOT_DINGTALK_SECRET": ROBOT_SECRET,
        }

    def start_dutybot(self, name: str, url: str, *, config: Path | None = None,
                      env: dict[str, str] | None = None) -> tuple[Process, int]:
        port = free_port()
        command = [PYTHON, "-m", "bot.cli", "--log-level", "WARNING", "serve", "--config",
                   str(config or bench_config()), "--host", HOST, "--port", str(port), "--database", url]
        server = Process(name, command, cpu=self.cores.server, env={**self.dutybot_env(), **(env or {})})
        self.server_pids.add(server.pid)
        server.wait_port(port, timeout=120)
        return server, port

    def dingtalk_spec(self, text: str, *, max_n: int = 1, stop_after: int = 0) -> LoadSpec:
        """A table of (timestamp, sign) pairs, one per request, computed right before the run."""
        now_ms = int(time.time() * 1000)
        longest = max(self.settings.duration, self.settings.warmup, self.settings.profile_seconds + 2)
        return LoadSpec(
            path=CALLBACK, headers=dingtalk_headers(APP_SECRET, now_ms),
            template=cut(dingtalk_message(robot_base=self.robot_base(), created_ms=now_ms)), text=text,
            run_tag=uuid.uuid4().hex[:8], max_n=max_n, stop_after=stop_after,
            signatures=dingtalk_signatures(APP_SECRET, now_ms, signatures_for(longest)),
            threads=self.settings.threads,
        )

    def own_pids(self) -> set[int]:
        pids = {os.getpid(), *self.server_pids}
        if self.fake is not None:
            pids.add(self.fake.pid)
        return pids

    def wait_quiet(self) -> float:
        """Before a measured run: wait (up to settings.quiet_wait) until other processes use less
        than 10 % of a core; returns their share of a core over the last second."""
        if self.settings.quiet_wait <= 0:
            return 0.0
        deadline = time.monotonic() + self.settings.quiet_wait
        said = False
        while True:
            before = process_cpu()
            time.sleep(1.0)
            share = other_cpu_seconds(before, process_cpu(), self.own_pids())
            if share < 0.10 or time.monotonic() >= deadline:
                return share
            if not said:
                print(f"    other processes use {share:.0%} of a core: waiting up to "
                      f"{self.settings.quiet_wait:.0f} s for them to finish", flush=True)
                said = True

    def wrk(self, name: str, url: str, spec: LoadSpec, duration: float, *, connections: int | None = None,
            timeout_s: float = 5.0) -> WrkResult:
        script = WORK / "lua" / f"{name}.lua"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(render_lua(spec), encoding="utf-8")
        before = process_cpu()
        result = run_wrk(url, script, duration_s=duration, connections=connections or self.settings.connections,
                         threads=self.settings.threads, cpu=self.cores.load, log=WORK / "wrk" / f"{name}.txt",
                         timeout_s=timeout_s)
        other = other_cpu_seconds(before, process_cpu(), self.own_pids())
        result.other_cpu_share = round(other / result.duration_s, 2) if result.duration_s else None
        if result.other_cpu_share is not None and result.other_cpu_share >= 0.10:
            print(f"    note: other processes used {result.other_cpu_share:.0%} of a core during {name}", flush=True)
        return result

    def measure(self, name: str, url: str, make_spec: Callable[[], LoadSpec], *, settle: str | None = None,
                pid: int | None = None, connections: int | None = None, timeout_s: float = 5.0,
                duration: float | None = None, after_warmup: Callable[[], None] | None = None,
                ) -> tuple[WrkResult, LoadSpec, int]:
        """Warm up, then the measured run; returns the fake platform's count (of `settle`, or of
        dingtalk) taken right before the measured run, after the warm-up's replies settled.
        `after_warmup` runs between the two (e.g. planner statistics for what the warm-up wrote)."""
        (WORK / "wrk").mkdir(parents=True, exist_ok=True)
        key = settle or "dingtalk"
        if self.settings.warmup > 0:
            self.wrk(f"{name}-warmup", url, make_spec(), self.settings.warmup, connections=connections,
                     timeout_s=timeout_s)
            _settle(self, key, quiet=0.5 if self.settings.quick else 1.0, timeout=30.0)
        if after_warmup is not None:
            after_warmup()
        self.wait_quiet()
        before = self.delivered()[key]
        spec = make_spec()
        cpu_before = cpu_seconds(pid) if pid is not None else 0.0
        result = self.wrk(name, url, spec, duration or self.settings.duration, connections=connections,
                          timeout_s=timeout_s)
        if pid is not None and result.requests:
            # The server's own CPU time per answered request: steadier than req/s on a noisy VM.
            used = cpu_seconds(pid) - cpu_before
            result.server_cpu_ms_per_request = round(used * 1000 / result.requests, 3)
            result.server_cpu_share = round(used / result.duration_s, 2) if result.duration_s else None
        cpu = ""
        if result.server_cpu_ms_per_request is not None and result.server_cpu_share is not None:
            cpu = (f"; server CPU {result.server_cpu_ms_per_request:.2f} ms/request, "
                   f"{result.server_cpu_share:.0%} of a core")
        print(f"  {name:<28} {result.requests_per_s:>9.1f} req/s   p50 {result.p50_ms:8.2f} ms   "
              f"p99 {result.p99_ms:8.2f} ms   ({result.requests} requests, {result.non_2xx} non-2xx{cpu})", flush=True)
        return result, spec, before

    def point(self, scenario: str, database: str | None, result: WrkResult, **extra: Any) -> dict[str, Any]:
        entry = {"scenario": scenario, "database": database, **result.as_dict(), **extra}
        self.points.append(entry)
        return entry

    def profile(self, name: str, pid: int, url: str, make_spec: Callable[[], LoadSpec], *,
                connections: int | None = None, timeout_s: float = 5.0) -> None:
        """py-spy on the server during an extra (unmeasured) run; raw stacks + a summary are kept."""
        if not self.settings.profile:
            return
        try:
            spy = ensure_pyspy(install=self.settings.install)
        except Skip as exc:
            self.skip(f"profile {name}", str(exc))
            return
        PROFILES.mkdir(parents=True, exist_ok=True)
        raw = PROFILES / f"{name}.collapsed.txt"
        seconds = self.settings.profile_seconds
        command = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "100",
                   "--format", "raw", "--output", str(raw)]
        recorder = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1.0)
        self.wrk(f"profile-{name}", url, make_spec(), seconds + 2, connections=connections, timeout_s=timeout_s)
        output, _ = recorder.communicate(timeout=seconds + 60)
        if recorder.returncode != 0 or not raw.exists():
            self.skip(f"profile {name}", f"py-spy failed: {output.strip()[-300:]}")
            return
        from bench.profile_summary import summarize

        summary = PROFILES / f"{name}.summary.txt"
        summary.write_text(summarize(raw.read_text(encoding="utf-8")), encoding="utf-8")
        self.profiles.append({"name": name, "raw": str(raw.relative_to(ROOT)),
                              "summary": str(summary.relative_to(ROOT))})
        print(f"  profile {name}: {summary.relative_to(ROOT)}", flush=True)


# -- configuration and databases ----------------------------------------------------------------------


def bench_config() -> Path:
    """config.example.toml as production would run it: simulator off, the example's signature
    window unchanged (each request carries its own signed timestamp, bench/payloads.py)."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for old, new in (("simulator = true", "simulator = false"),):
        if old not in text:
            raise RuntimeError(f"config.example.toml no longer contains {old!r}; update bench/scenarios.py")
        text = text.replace(old, new, 1)
    path = WORK / "bench-config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def fresh_database(kind: str, name: str) -> Iterator[str]:
    """A new empty database for one scenario, removed afterwards."""
    if kind == "sqlite":
        folder = WORK / "db"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}-{uuid.uuid4().hex[:6]}.db"
        try:
            yield f"sqlite+aiosqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    url = postgres.create_database()
    try:
        yield url
    finally:
        postgres.drop_database(url)


async def _with_db(url: str, work: Callable[[Database], Any]) -> Any:
    db = Database(url)
    try:
        return await work(db)
    finally:
        await db.dispose()


def run_db(url: str, work: Callable[[Database], Any]) -> Any:
    return asyncio.run(_with_db(url, work))


# -- tools ---------------------------------------------------------------------------------------------


def ensure_pyspy(*, install: bool) -> str:
    found = shutil.which("py-spy") or (str(TOOLS_VENV / "bin" / "py-spy") if (TOOLS_VENV / "bin" / "py-spy").exists()
                                       else None)
    if found:
        return found
    if not install:
        raise Skip("py-spy is not installed (python -m venv bench/.tools-venv && "
                   "bench/.tools-venv/bin/pip install py-spy)")
    print("  installing py-spy into bench/.tools-venv …", flush=True)
    subprocess.run([PYTHON, "-m", "venv", str(TOOLS_VENV)], check=True)
    done = subprocess.run([str(TOOLS_VENV / "bin" / "pip"), "install", "--quiet", "py-spy"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise Skip(f"pip install py-spy failed: {done.stderr.strip()[-300:]}")
    return str(TOOLS_VENV / "bin" / "py-spy")


def ensure_peer_venv(*, install: bool) -> Path:
    python = PEER_VENV / "bin" / "python"
    if python.exists():
        check = subprocess.run([str(python), "-c", "import nonebot, nonebot.adapters.onebot.v11, fastapi, aiohttp"],
                               capture_output=True, text=True, check=False)
        if check.returncode == 0:
            return python
    if not install:
        raise Skip("the nonebot2 peer's virtual environment bench/.peer-venv is missing "
                   "(a full run makes it: python -m bench peer, or python -m bench all)")
    print(f"  creating bench/.peer-venv and installing {' '.join(PEER_PACKAGES)} …", flush=True)
    subprocess.run([PYTHON, "-m", "venv", str(PEER_VENV)], check=True)
    pip = str(PEER_VENV / "bin" / "pip")
    done = subprocess.run([pip, "install", "--quiet", *PEER_PACKAGES], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise Skip(f"pip install of the peer failed: {done.stderr.strip()[-400:]}")
    return python


def require_wrk(bench: Bench) -> None:
    try:
        ensure_wrk(install=bench.settings.install)
    except WrkMissing as exc:
        raise Skip(str(exc)) from exc


# -- scenarios -----------------------------------------------------------------------------------------


def ceiling(bench: Bench) -> None:
    """A bare aiohttp handler: read the same body, json.loads it, answer 200 {}."""
    print("ceiling (bare aiohttp handler, same JSON body)", flush=True)
    require_wrk(bench)
    bench.start_fake()  # only for the sessionWebhook URL in the body; nothing is posted to it
    port = free_port()
    server = Process("ceiling", [PYTHON, "-m", "bench.servers.ceiling", "--port", str(port)], cpu=bench.cores.server)
    bench.server_pids.add(server.pid)
    try:
        server.wait_port(port)
        url = f"http://{HOST}:{port}{CALLBACK}"
        result, _, _ = bench.measure("ceiling", url, lambda: bench.dingtalk_spec(REPORT_TEXT), pid=server.server_pid())
        bench.point("ceiling", None, result, rss_mb=round(rss_mb(server.server_pid()), 1))
    finally:
        server.stop()


def ingestion(bench: Bench, database: str) -> None:
    """上报 <text with a URL>, correctly signed, a fresh msgId per request; rows counted afterwards."""
    print(f"report ingestion on {database}", flush=True)
    require_wrk(bench)
    bench.start_fake()
    with fresh_database(database, "ingest") as db_url:
        server, port = bench.start_dutybot(f"dutybot-ingest-{database}", db_url)
        try:
            time.sleep(bench.settings.settle_pause)
            idle = rss_mb(server.server_pid())
            url = f"http://{HOST}:{port}{CALLBACK}"
            result, spec, before = bench.measure(f"ingest-{database}", url, lambda: bench.dingtalk_spec(REPORT_TEXT),
                                                 pid=server.server_pid())
            in_window = bench.delivered()["dingtalk"] - before
            rss_after = rss_mb(server.server_pid())
            all_replies = _settle(bench, "dingtalk", quiet=2.0, timeout=120.0) - before
            check = run_db(db_url, lambda db: fill.ingestion_check(db, spec.run_tag))
            ok = result.counts.get("ok", result.requests - result.non_2xx)
            check.update({
                "responses_200": ok,
                "in_flight_at_stop": check["messages_recorded"] - ok,
                "every_message_one_item": (
                    check["items"] == check["messages_recorded"] == check["items_per_message_exactly_one"]
                    == check["reported_audit_entries"] == check["lead_unit_rows"] == check["replies_queued"]
                    == check["replies_with_grade_question"]
                    and check["items_without_message"] == 0 and check["duplicate_item_numbers"] == 0
                    and 0 <= check["messages_recorded"] - ok <= bench.settings.connections
                    and result.non_2xx == 0
                ),
            })
            print(f"    rows: {check['items']} items for {check['messages_recorded']} messages "
                  f"({ok} answered 200, {check['in_flight_at_stop']} in flight at the stop); "
                  f"exactly one item per message: {check['every_message_one_item']}", flush=True)
            bench.point("ingest", database, result, check=check, rss_idle_mb=round(idle, 1),
                        rss_after_mb=round(rss_after, 1), replies_delivered_in_window=in_window,
                        replies_delivered_per_s=round(in_window / result.duration_s, 1) if result.duration_s else 0,
                        replies_delivered_total=all_replies)
            bench.profile(f"ingest-{database}", server.server_pid(), url, lambda: bench.dingtalk_spec(REPORT_TEXT))
        finally:
            server.stop()


def reads(bench: Bench, database: str) -> None:
    """查询 #N over an item store of 100,000 items; 值班 over five years of roster."""
    items = bench.settings.items
    print(f"read commands on {database} ({items} items, {bench.settings.roster_years} years of roster)", flush=True)
    require_wrk(bench)
    bench.start_fake()
    with fresh_database(database, "read") as db_url:
        started = time.monotonic()

        async def prepare(db: Database) -> tuple[int, int | str]:
            await db.upgrade()
            await fill.fill_items(db, items)
            try:
                roster_rows: int | str = await fill.fill_roster(db, bench.settings.roster_years)
            except ImportError as exc:
                roster_rows = f"bench/roster_lookup.py is not usable: {exc}"
            await fill.analyze(db)
            return await fill.count_items(db), roster_rows

        stored, roster_rows = run_db(db_url, prepare)
        print(f"    filled {stored} items and {roster_rows} roster shift rows in {time.monotonic() - started:.1f} s",
              flush=True)
        server, port = bench.start_dutybot(f"dutybot-read-{database}", db_url)
        try:
            time.sleep(bench.settings.settle_pause)
            url = f"http://{HOST}:{port}{CALLBACK}"
            result, _, before = bench.measure(f"query-{database}", url,
                                              lambda: bench.dingtalk_spec(QUERY_TEXT, max_n=stored),
                                              pid=server.server_pid())
            bench.point("query", database, result, items=stored,
                        replies_delivered_in_window=bench.delivered()["dingtalk"] - before)
            if isinstance(roster_rows, int):
                result, _, before = bench.measure(f"duty-{database}", url, lambda: bench.dingtalk_spec(DUTY_TEXT),
                                                  pid=server.server_pid())
                bench.point("duty", database, result, roster_shift_rows=roster_rows,
                            replies_delivered_in_window=bench.delivered()["dingtalk"] - before)
            else:
                bench.skip(f"值班 on {database}", roster_rows)
            bench.points.append({"scenario": "memory", "database": database, "items": stored,
                                 "rss_mb": round(rss_mb(server.server_pid()), 1),
                                 "note": f"dutybot serve on a store of {stored} items, after the read runs"})
            print(f"    RSS after the read runs on {stored} items: {bench.points[-1]['rss_mb']} MiB", flush=True)
            bench.profile(f"query-{database}", server.server_pid(), url,
                          lambda: bench.dingtalk_spec(QUERY_TEXT, max_n=stored))
        finally:
            server.stop()


def peer(bench: Bench) -> None:
    """nonebot2 (FastAPI driver, OneBot v11 adapter, HTTP POST) with one on_command handler."""
    print("peer: nonebot2 + OneBot v11 (HTTP POST)", flush=True)
    require_wrk(bench)
    python = ensure_peer_venv(install=bench.settings.install and not bench.settings.quick)
    bench.start_fake()
    port = free_port()
    env = {
        "DRIVER": "~fastapi+~aiohttp", "HOST": HOST, "PORT": str(port), "LOG_LEVEL": "WARNING",
        "COMMAND_START": '["", "/"]', "ONEBOT_API_ROOTS": f'{{"{ONEBOT_SELF_ID}": "{bench.robot_base()}/"}}',
        "ENVIRONMENT": "prod",
    }
    server = Process("peer-nonebot2", [str(python), str(BENCH / "peer" / "bot.py")], cpu=bench.cores.server, env=env,
                     cwd=BENCH / "peer")
    bench.server_pids.add(server.pid)
    try:
        server.wait_port(port, timeout=120)
        url = f"http://{HOST}:{port}/onebot/v11/http"

        def spec(delay_ms: int = 0) -> LoadSpec:
            return LoadSpec(
                path="/onebot/v11/http",
                headers={"Content-Type": "application/json", "X-Self-ID": ONEBOT_SELF_ID},
                template=onebot_template(int(time.time())), text=REPORT_TEXT,
                run_tag=str(1 + uuid.uuid4().int % 9), numeric_ids=True, delay_ms=delay_ms,
            )

        if bench.settings.warmup > 0:
            bench.wrk("peer-warmup", url, spec(), bench.settings.warmup)
            _settle(bench, "onebot")
        bench.wait_quiet()
        before = bench.delivered()["onebot"]
        started = time.monotonic()
        cpu_before = cpu_seconds(server.server_pid())
        result = bench.wrk("peer", url, spec(), bench.settings.duration)
        in_window = bench.delivered()["onebot"] - before
        rss = rss_mb(server.server_pid())  # with its backlog of tasks
        settled, last_reply = _settle_timed(bench, "onebot", quiet=3.0, timeout=600.0)
        total = settled - before
        # The adapter answers 204 before the handler runs, so wrk's rate is only what it accepted:
        # the peer's rate is the replies it posted over the time it took to post them all.
        span = max(last_reply - started, result.duration_s)
        handled_rate = total / span if span else 0.0
        # CPU per message handled, over the run and the drain after it
        result.server_cpu_ms_per_request = round((cpu_seconds(server.server_pid()) - cpu_before) * 1000 / total, 3) \
            if total else None
        print(f"  {'peer':<28} {result.requests_per_s:>9.1f} req/s accepted (204)   p50 {result.p50_ms:8.2f} ms   "
              f"p99 {result.p99_ms:8.2f} ms; replies: {in_window} in the run, {total} in all after {span:.1f} s "
              f"= {handled_rate:.1f}/s", flush=True)
        bench.point("peer", None, result, replies_in_window=in_window, replies_total=total,
                    handled_span_s=round(span, 1), handled_per_s=round(handled_rate, 1), rss_mb=round(rss, 1))
        _peer_paced(bench, url, spec, server.server_pid())
    finally:
        server.stop()


def _peer_paced(bench: Bench, url: str, spec: Callable[[int], LoadSpec], pid: int) -> None:
    """The peer fed dutybot's own message rate (its SQLite ingestion figure): does it keep up?"""
    ingest = next((p for p in bench.points if p["scenario"] == "ingest" and p["database"] == "sqlite"), None)
    if ingest is None or ingest["requests_per_s"] <= 0:
        bench.skip("peer at dutybot's rate", "no SQLite ingestion figure in this run to pace it by")
        return
    rate = float(ingest["requests_per_s"])
    delay_ms = max(1, round(bench.settings.connections * 1000 / rate))
    bench.wait_quiet()
    before = bench.delivered()["onebot"]
    started = time.monotonic()
    cpu_before = cpu_seconds(pid)
    result = bench.wrk("peer-paced", url, spec(delay_ms), bench.settings.duration)
    in_window = bench.delivered()["onebot"] - before
    settled, last_reply = _settle_timed(bench, "onebot", quiet=3.0, timeout=600.0)
    total = settled - before
    result.server_cpu_ms_per_request = round((cpu_seconds(pid) - cpu_before) * 1000 / total, 3) if total else None
    lag = max(0.0, last_reply - started - result.duration_s)
    print(f"  {'peer at dutybot rate':<28} offered {result.requests_per_s:.1f}/s (dutybot: {rate:.1f}/s); "
          f"replies: {in_window} in the run ({in_window / result.duration_s:.1f}/s), {total} in all, "
          f"the last {lag:.1f} s after the run", flush=True)
    bench.point("peer_paced", None, result, offered_per_s=result.requests_per_s, paced_by=rate, delay_ms=delay_ms,
                replies_in_window=in_window, replies_in_window_per_s=round(in_window / result.duration_s, 1),
                replies_total=total, last_reply_after_run_s=round(lag, 1))


def _settle(bench: Bench, key: str, quiet: float = 2.0, timeout: float = 120.0) -> int:
    """Wait until the fake platform's count stops moving (the peer answers after its 204)."""
    return _settle_timed(bench, key, quiet, timeout)[0]


def _settle_timed(bench: Bench, key: str, quiet: float = 2.0, timeout: float = 120.0) -> tuple[int, float]:
    """The settled count and when (time.monotonic()) it last moved."""
    deadline = time.monotonic() + timeout
    last = bench.delivered()[key]
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = bench.delivered()[key]
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            break
    return last, still_since


def others(bench: Bench) -> None:
    """The other benchmarks in bench/ (other engineers' files, called as their docstrings say,
    never edited): the roster lookup and the reminder lateness; and the SQL count per command.
    Their own output is kept."""
    quick = bench.settings.quick
    databases = ("sqlite",) if quick else bench.settings.databases
    roster_script = BENCH / "roster_lookup.py"
    lateness_module = BENCH / "lateness.py"
    for database in databases:
        if roster_script.exists():
            print(f"roster lookup (bench/roster_lookup.py) on {database}", flush=True)
            with fresh_database(database, "roster") as url:
                command = [PYTHON, str(roster_script), "--database", url]
                command += ["--years", "1", "--lookups", "300"] if quick else []
                done = _run_other(bench, command)
            bench.points.append({"scenario": "roster_lookup", "database": database, "exit_code": done.returncode,
                                 "output": done.stdout.strip()})
            print("    " + "\n    ".join(done.stdout.strip().splitlines()[:6]), flush=True)
        else:
            bench.skip(f"roster lookup on {database}", "bench/roster_lookup.py is not there")
        if quick:
            bench.skip(f"reminder lateness on {database}", "not in --quick (it runs its sweep for at least 15 s)")
        elif lateness_module.exists():
            print(f"reminder lateness (bench/lateness.py) on {database}", flush=True)
            out = WORK / f"lateness-{database}.json"
            out.unlink(missing_ok=True)
            command = [PYTHON, "-m", "bench.lateness", "--json", str(out)]
            command += ["--database", postgres.PG_URL] if database == "postgresql" else []
            command += ["--items", "2000", "--due", "200", "--window", "5"] if quick else []
            done = _run_other(bench, command)
            if not out.exists():
                bench.skip(f"reminder lateness on {database}",
                           f"bench.lateness exited {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}")
                continue
            result = json.loads(out.read_text(encoding="utf-8"))
            bench.points.append({"scenario": "lateness", **result, "database": database, "exit_code": done.returncode})
            print(f"    delivered {result.get('delivered')}/{result.get('due')}, p50 {result.get('p50_s')} s, "
                  f"p99 {result.get('p99_s')} s", flush=True)
        else:
            bench.skip(f"reminder lateness on {database}", "bench/lateness.py is not there")
        statements(bench, database)
    reply_post(bench)


def reply_post(bench: Bench) -> None:
    """CPU of the reply's own HTTP exchange (bench/reply_post.py): the floor under every command."""
    print("reply POST through aiohttp's client (bench/reply_post.py)", flush=True)
    out = WORK / "reply-post.json"
    out.unlink(missing_ok=True)
    command = [PYTHON, "-m", "bench.reply_post", "--json", str(out)]
    command += ["--posts", "2000"] if bench.settings.quick else []
    done = _run_other(bench, command)
    if not out.exists():
        output = (done.stderr or done.stdout).strip()[-300:]
        bench.skip("reply POST", f"bench.reply_post exited {done.returncode}: {output}")
        return
    bench.points.append({"scenario": "reply_post", **json.loads(out.read_text(encoding="utf-8"))})
    print("    " + done.stdout.strip(), flush=True)


def statements(bench: Bench, database: str) -> None:
    """SQL statements and transactions per command (bench/statements.py): counts, not timings."""
    print(f"SQL per command (bench/statements.py) on {database}", flush=True)
    out = WORK / f"statements-{database}.json"
    out.unlink(missing_ok=True)
    command = [PYTHON, "-m", "bench.statements", "--json", str(out)]
    command += ["--database", postgres.PG_URL] if database == "postgresql" else []
    done = _run_other(bench, command)
    if not out.exists():
        bench.skip(f"statements per command on {database}",
                   f"bench.statements exited {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}")
        return
    bench.points.append({"scenario": "statements", **json.loads(out.read_text(encoding="utf-8")),
                         "database": database})
    print("    " + "\n    ".join(done.stdout.strip().splitlines()[1:]), flush=True)


def _run_other(bench: Bench, command: list[str]) -> subprocess.CompletedProcess[str]:
    bench.wait_quiet()
    return subprocess.run(pinned(command, bench.cores.server), cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=1800)


SCENARIOS = ("ceiling", "ingest", "read", "peer", "others", "intake", "records")


def run(bench: Bench, names: tuple[str, ...]) -> None:
    os.environ.setdefault("PYTHONHASHSEED", "0")
    try:
        for name in names:
            databases = bench.settings.databases if name in ("ingest", "read", "intake", "records") else (None,)
            for database in databases:
                label = f"{name} {database}" if database else name
                try:
                    if name == "ceiling":
                        ceiling(bench)
                    elif name == "ingest":
                        assert database is not None
                        ingestion(bench, database)
                    elif name == "read":
                        assert database is not None
                        reads(bench, database)
                    elif name == "peer":
                        peer(bench)
                    elif name == "others":
                        others(bench)
                    elif name == "intake":
                        assert database is not None
                        from bench.intake import intake  # it builds on this module's pieces

                        intake(bench, database)
                    elif name == "records":
                        assert database is not None
                        from bench.records import scenario  # the 定期通报 (issue #16)

                        scenario(bench, database)
                except Skip as exc:
                    bench.skip(label, str(exc))
                except Exception as exc:  # one broken scenario must not lose the others' figures
                    # The whole traceback on the console: "TimeoutError:" alone does not say where.
                    traceback.print_exc()
                    bench.skip(label, f"failed: {type(exc).__name__}: {exc}")
    finally:
        bench.stop_fake()
