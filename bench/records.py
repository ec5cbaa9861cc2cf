"""The monthly 定期通报 over 100,000 items and their audit rows (issue #16, point 7): how long the
notice takes to make, on SQLite and PostgreSQL. Target: under 2 s. A benchmark, not a test.

The database is filled by bulk insert (Core executemany, not the operations: a month of a busy
province takes the operations far longer than the figure measured) with the rows the operations
write, in their shapes — so the facts read them exactly as they read the real trail
(handlers/records/facts.py): for each item a "reported" row (lead unit, 涉密 mark), "graded" (grade and
the deadlines it set), for some a "regraded" or an "assigned" (转办 to another lead), "acknowledged",
"responded", and "closed" / "no_response" / "merged"; "notice" rows with reminder keys for the items
acknowledged or answered late (提醒 at 50 % and 80 %, 催办 from the deadline) and some on time;
and the 零报告 of about half the units each day. Items are spread over September 2026 and the two
days before it (whose deadlines fall in September: the notice looks back for them).

Measured: `period_notice` (the queries and the figures) and `period_document` (the Document), then
the writers (Markdown, XLSX) apart, each `--runs` times on one connection pool after a first
untimed run is NOT made: the first run is reported too (cold: the pool connects, the planner sees
the tables first). Then the result is checked (every item counted once).

Rerun:
    .venv/bin/python -m bench records                                   # both databases, via the driver
    .venv/bin/python -m bench.records                                   # SQLite in a temporary file
    .venv/bin/python -m bench.records --database postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from bench.fill import analyze
from bot.documents.markdown import to_markdown
from bot.documents.tables import to_xlsx
from domain.config import Config, load_config
from domain.directory import Directory
from domain.vocab import Grade
from handlers.records.period import month_of, period_notice
from handlers.records.period_doc import period_document
from store.db import Database
from store.models import Item, ItemEvent, ItemUnit

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "records"
TARGET_S = 2.0
ITEMS = 100_000
BATCH = 5_000
MONTH = month_of(date(2026, 9, 1))
CHAT = "wecom_duty"
MONTH_DAYS = (MONTH.last - MONTH.first).days + 3  # the month and the two days its notice looks back on
GRADES = ((Grade.MAJOR, 0.05), (Grade.SIGNIFICANT, 0.25), (Grade.GENERAL, 0.70))


@dataclass(frozen=True)
class Mix:
    """What share of the items each story gets (the rest: on time throughout)."""

    transferred: float = 0.15
    regraded: float = 0.03
    classified: float = 0.01
    merged: float = 0.02
    no_response: float = 0.03
    ack_late: float = 0.10
    ack_never: float = 0.03
    respond_late: float = 0.12
    respond_never: float = 0.05
    zero_report: float = 0.5  # of the units, each day


def _pick(rng: random.Random) -> Grade:
    roll, total = rng.random(), 0.0
    for grade, share in GRADES:
        total += share
        if roll < total:
            return grade
    return Grade.GENERAL


def _key(item_id: int, clock: str, stage: str, occurrence: int, due: datetime) -> str:
    return f"remind:item{item_id}:{clock}:{stage}:{occurrence}:{due:%Y%m%dT%H%M%SZ}"


def _event(item_id: int | None, at: datetime, actor: str, action: str, detail: str = "",
           after: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"item_id": item_id, "at": at, "actor": actor, "chat_id": CHAT, "action": action, "detail": detail,
            "before": {}, "after": dict(after or {})}


def _reminders(item_id: int, clock: str, start: datetime, due: datetime, done: datetime | None,
               repeat: timedelta, end: datetime) -> Iterator[dict[str, Any]]:
    """The notice rows the sweep would have had delivered for one clock: 50 % and 80 %, then 催办."""
    stop = min(done or end, end)
    for fraction, stage in ((0.5, "50pct"), (0.8, "80pct")):
        at = start + (due - start) * fraction
        if at < stop:
            yield _event(item_id, at, "bot", "notice", "【提醒】", {"key": _key(item_id, clock, stage, 0, due)})
    occurrence, at = 0, due
    while at < stop and occurrence <= 6:
        key = _key(item_id, clock, "overdue", occurrence, due)
        yield _event(item_id, at, "bot", "notice", "【超时催办】", {"key": key})
        occurrence, at = occurrence + 1, at + repeat


def item_story(item_id: int, number: int, reported: datetime, config: Config, units: list[str],
               rng: random.Random, mix: Mix) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One item row and its audit rows, as the operations would have written them."""
    end = datetime.combine(MONTH.last + timedelta(days=3), datetime.min.time(), tzinfo=UTC)
    grade = _pick(rng)
    rules = config.policy.for_grade(grade)
    lead = rng.choice(units)
    classified = rng.random() < mix.classified
    summary = f"网友反映第{number}号线索：某小区停水三天无人处理"
    item = {"id": item_id, "number": number, "chat_id": CHAT, "source": "微博", "link": None, "summary": summary,
            "category": "其他", "grade": grade.value, "lead_unit_id": lead, "status": "已办结", "reported_by": "bench",
            "reported_at": reported, "grade_due_at": reported + timedelta(minutes=15), "classified": classified,
            "referred_to": [], "updated_at": reported}
    graded = reported + timedelta(minutes=5)
    pass_on = reported + timedelta(minutes=rules.pass_on_minutes)
    response = reported + timedelta(minutes=rules.response_minutes)
    events = [
        _event(item_id, reported, "bench", "reported", summary,
               {"number": number, "lead_unit_id": lead, "classified": classified}),
        _event(item_id, graded, "wang_jun", "graded", grade.value,
               {"grade": grade.value, "pass_on_due_at": pass_on.isoformat(),
                "response_due_at": response.isoformat()}),
    ]
    if rng.random() < mix.regraded:  # a later look keeps the grade's deadlines (the regrade is the record)
        events.append(_event(item_id, graded + timedelta(minutes=10), "wang_jun", "regraded", grade.value,
                             {"grade": grade.value, "pass_on_due_at": pass_on.isoformat(),
                              "response_due_at": response.isoformat(), "reason": "复核"}))
    if rng.random() < mix.transferred:
        lead = rng.choice([u for u in units if u != lead])
        events.append(_event(item_id, graded + timedelta(minutes=15), "wang_jun", "assigned", lead, {"units": [lead]}))
    if rng.random() < mix.merged:
        events.append(_event(item_id, graded + timedelta(minutes=20), "wang_jun", "merged", "#1", {"merged_into": 1}))
        return item, events
    span = pass_on - reported
    roll = rng.random()
    acked = (None if roll < mix.ack_never else
             pass_on + timedelta(minutes=rng.randint(5, 240)) if roll < mix.ack_never + mix.ack_late else
             reported + span * rng.uniform(0.2, 0.95))
    if acked is not None:
        events.append(_event(item_id, acked, "yang_fan", "acknowledged", lead))
    repeat = timedelta(minutes=rules.repeat_minutes)
    events += _reminders(item_id, "pass_on", reported, pass_on, acked, repeat, end)
    roll = rng.random()
    if roll < mix.no_response:
        events.append(_event(item_id, reported + span, "wang_jun", "no_response", "经核实无需回应"))
        return item, events
    roll -= mix.no_response
    answered = (None if roll < mix.respond_never else
                response + timedelta(minutes=rng.randint(10, 600)) if roll < mix.respond_never + mix.respond_late else
                reported + (response - reported) * rng.uniform(0.1, 0.95))
    events += _reminders(item_id, "response", reported, response, answered, repeat, end)
    if answered is not None:
        events.append(_event(item_id, answered, "yang_fan", "responded", "已回应", {"form": "网上发布", "seq": 1}))
        events.append(_event(item_id, answered + timedelta(hours=2), "wang_jun", "closed", "已办结"))
    return item, events


def zero_reports(config: Config, rng: random.Random, mix: Mix) -> list[dict[str, Any]]:
    rows = []
    tz = config.tz
    for day in MONTH.days():
        at = datetime.combine(day, datetime.min.time(), tzinfo=tz).replace(hour=16)
        for unit in config.units:
            if rng.random() < mix.zero_report:
                rows.append(_event(None, at, "bench", "zero_report", f"{unit.id} 零报告",
                                   {"unit": unit.id, "day": day.isoformat()}))
    return rows


async def fill(db: Database, config: Config, count: int, *, seed: int = 20260901, mix: Mix = Mix(),
               days: int = MONTH_DAYS) -> int:
    """`count` items reported over the `days` days up to the month's end (default: the month and the
    two days before it), with their audit rows; returns the number of audit rows written. Items are
    numbered, and all rows written, in time order, as a real trail is (a window of time is then a run
    of neighbouring rows, as in production)."""
    rng = random.Random(seed)
    tz = config.tz
    first = datetime.combine(MONTH.last + timedelta(days=1 - days), datetime.min.time(), tzinfo=tz)
    span = (datetime.combine(MONTH.last + timedelta(days=1), datetime.min.time(), tzinfo=tz) - first).total_seconds()
    units = [u.id for u in config.units]
    times = sorted((first + timedelta(seconds=rng.uniform(0, span))).astimezone(UTC) for _ in range(count))
    items, events = [], zero_reports(config, rng, mix)
    for number, reported in enumerate(times, start=1):
        item, item_events = item_story(number, number, reported, config, units, rng, mix)
        items.append(item)
        events += item_events
    events.sort(key=lambda event: event["at"])
    for start in range(0, len(items), BATCH):
        batch = items[start:start + BATCH]
        async with db.transaction() as session:
            await session.execute(insert(Item), batch)
            await session.execute(insert(ItemUnit), [
                {"item_id": i["id"], "unit_id": i["lead_unit_id"], "is_lead": True, "position": 0} for i in batch])
    for start in range(0, len(events), BATCH * 4):
        async with db.transaction() as session:
            await session.execute(insert(ItemEvent), events[start:start + BATCH * 4])
    return len(events)


async def measure(db: Database, config: Config, runs: int) -> dict[str, Any]:
    directory = Directory(config)
    now = datetime(2026, 10, 1, 9, 0, tzinfo=config.tz)  # the monthly notice's time
    notice_s, document_s = [], []
    notice = None
    for _ in range(runs):
        began = time.perf_counter()
        async with db.read() as session:
            notice = await period_notice(session, config, directory, MONTH, now)
        middle = time.perf_counter()
        doc = period_document(notice, directory)
        notice_s.append(middle - began)
        document_s.append(time.perf_counter() - middle)
    assert notice is not None
    began = time.perf_counter()
    markdown = to_markdown(doc)
    markdown_s = time.perf_counter() - began
    began = time.perf_counter()
    xlsx = to_xlsx(doc.tables())
    xlsx_s = time.perf_counter() - began
    totals = notice.totals()
    return {
        "notice_s": [round(s, 3) for s in notice_s], "document_s": [round(s, 4) for s in document_s],
        "total_first_s": round(notice_s[0] + document_s[0], 3),
        "total_median_s": round(statistics.median(a + b for a, b in zip(notice_s, document_s, strict=True)), 3),
        "markdown_s": round(markdown_s, 4), "xlsx_s": round(xlsx_s, 4), "markdown_bytes": len(markdown.encode()),
        "xlsx_bytes": len(xlsx), "reported": notice.total, "owed_pass_on": totals.pass_on.owed,
        "owed_response": totals.response.owed, "overdue_rows": len(notice.overdue),
        "reminders": totals.reminders, "urges": totals.urges,
    }


async def run(url: str, items: int, runs: int, days: int = MONTH_DAYS) -> dict[str, Any]:
    config = load_config(ROOT / "config.example.toml").with_database(url)
    db = Database(url)
    try:
        await db.upgrade()
        began = time.perf_counter()
        rows = await fill(db, config, items, days=days)
        await analyze(db)
        filled_s = time.perf_counter() - began
        async with db.read() as session:
            stored = int((await session.execute(select(func.count()).select_from(Item))).scalar_one())
        result = await measure(db, config, runs)
    finally:
        await db.dispose()
    return {"scenario": SCENARIO, "database": "sqlite" if url.startswith("sqlite") else "postgresql",
            "items": stored, "audit_rows": rows, "spread_days": days, "fill_s": round(filled_s, 1), "runs": runs,
            "target_s": TARGET_S, "met": result["total_median_s"] < TARGET_S, **result}


async def _fresh_pg(url: str) -> tuple[str, str]:
    """A new database on the server of `url` (dropped by `_drop_pg`)."""
    name = f"dutybot_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(url).set(database=name).render_as_string(hide_password=False), name


async def _drop_pg(url: str, name: str) -> None:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dutybot-bench-") as temp:  # the SQLite file and its WAL go with it
        url, pg_name = args.database or f"sqlite+aiosqlite:///{temp}/records.db", None
        if url.startswith("postgresql"):
            url, pg_name = await _fresh_pg(url)
        try:
            return await run(url, args.items, args.runs, args.days)
        finally:
            if pg_name is not None:
                await _drop_pg(args.database, pg_name)


def scenario(bench: Any, database: str) -> None:
    """`python -m bench records`: this module in a process of its own on the server's core (as the
    other single-process benchmarks run), its result a point of the run."""
    from bench import postgres
    from bench.common import PYTHON, WORK
    from bench.scenarios import _run_other

    out = WORK / f"records-{database}.json"
    out.unlink(missing_ok=True)
    command = [PYTHON, "-m", "bench.records", "--json", str(out), "--items", str(bench.settings.items)]
    command += ["--database", postgres.PG_URL] if database == "postgresql" else []
    print(f"定期通报 over {bench.settings.items:,} items (bench/records.py) on {database}", flush=True)
    done = _run_other(bench, command)
    if not out.exists():
        bench.skip(f"records on {database}", f"bench.records exited {done.returncode}: "
                                             f"{(done.stderr or done.stdout).strip()[-300:]}")
        return
    point = json.loads(out.read_text(encoding="utf-8"))
    bench.points.append(point)
    print(f"    notice: first {point['total_first_s']} s, median {point['total_median_s']} s "
          f"(target < {TARGET_S:g} s)", flush=True)


def section(report: Mapping[str, Any]) -> list[str]:
    """The results' section of this scenario (bench/RESULTS.md)."""
    points = [p for p in report.get("points", []) if p.get("scenario") == SCENARIO]
    if not points:
        return []
    lines = ["", "## 定期通报: the monthly notice over 100,000 items (`bench/records.py`)", "",
             f"Target: under {TARGET_S:g} s for the notice (queries, figures, Document) on each database.", "",
             "| Database | Items stored | In the month's notice | Audit rows | Notice, first run s | "
             "Notice, median s | of which queries + figures s | Markdown s | XLSX s | Met |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for p in points:
        lines.append(f"| {p['database']} | {p['items']:,} | {p['reported']:,} | {p['audit_rows']:,} | "
                     f"{p['total_first_s']} | "
                     f"{p['total_median_s']} | {statistics.median(p['notice_s'])} | {p['markdown_s']} | "
                     f"{p['xlsx_s']} | {'yes' if p['met'] else 'NO'} |")
    return lines


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.records", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="a database URL (default: SQLite in a temporary file); on PostgreSQL "
                                           "a fresh database is made on that server and dropped afterwards")
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--days", type=int, default=MONTH_DAYS,
                        help="spread the items over this many days up to the month's end (default: the month and "
                             "the two days before it, all in the notice; 1826: five years, the month a sixtieth)")
    parser.add_argument("--json", help="write the result here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    found = asyncio.run(main(arguments))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(found, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(found, ensure_ascii=False))
    sys.exit(0)
