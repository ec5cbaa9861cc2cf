"""Reminder lateness: 100,000 open items, 10,000 of them due within one minute.

Measures how late each reminder is delivered (outbox sent_at − its due time) when the real
scheduler of `dutybot serve` runs on the wall clock: the deadline sweep every --tick seconds
(default 1, as [delivery] tick_seconds) with its timer for the next due point, and the outbox.
The items not due are filled first, then the due ones, and the window opens --lead seconds
later, so that filling is never counted as lateness. Reminders go to a local chat (no platform
webhook, so no platform rate limit): this measures the bot's own pipeline — index scan, point computation, idempotent
enqueue, claim, re-check, settle.

Rerun:
    .venv/bin/python -m bench.lateness                       # SQLite, defaults
    .venv/bin/python -m bench.lateness --database postgresql+asyncpg://postgres@127.0.0.1:5432/test
    .venv/bin/python -m bench.lateness --items 20000 --due 2000 --window 20 --lead 5   # quick
Target (issue): p99 under 1 second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import insert, select, update
from sqlalchemy.engine import make_url

from bot.clock import SystemClock
from bot.runtime import Runtime
from bot.scheduler import build_scheduler
from domain.config import load_config
from handlers.deadline_rules import next_point_at
from handlers.items import item_clocks
from handlers.policy import deadlines
from store.models import Counter, Item, OutboxMessage

ROOT = Path(__file__).resolve().parents[1]
CHAT = "ops"  # a local chat: no webhook, so the platform's 20/min limit does not apply


def _item_row(number: int, reported: datetime, grade: str | None, config: Any) -> dict[str, Any]:
    from domain.vocab import Grade

    due = deadlines(reported, Grade(grade) if grade else None, config.policy)
    return {
        "number": number, "chat_id": CHAT, "source": "微博", "link": None, "summary": f"压测线索{number}",
        "category": "其他", "grade": grade, "lead_unit_id": "chengguan", "status": "已定级" if grade else "待定级",
        "reported_by": "liu_yang", "reported_at": reported, "grade_due_at": due.grade_due,
        "pass_on_due_at": due.pass_on_due, "response_due_at": due.response_due, "classified": False,
        "referred_to": [], "updated_at": reported, "reminded_until": reported,
        "graded_at": reported if grade else None,
    }


def _rows(config: Any, numbers: range, make: Any) -> list[dict[str, Any]]:
    rows = [make(number) for number in numbers]
    for row in rows:
        probe = Item(**row)
        row["next_reminder_at"] = next_point_at(item_clocks(probe), config.policy, config.tz, row["reminded_until"])
    return rows


async def _insert(runtime: Runtime, rows: list[dict[str, Any]]) -> None:
    async with runtime.db.transaction() as session:
        for first in range(0, len(rows), 2000):
            await session.execute(insert(Item), rows[first : first + 2000])


async def fill_background(runtime: Runtime, items: int, due: int) -> None:
    """The open items that are not due during the run (graded 一般, reported a minute ago)."""
    config = runtime.config
    reported = datetime.now(UTC) - timedelta(minutes=1)
    rows = _rows(config, range(due + 1, items + 1), lambda n: _item_row(n, reported, "一般", config))
    await _insert(runtime, rows)
    async with runtime.db.transaction() as session:
        await session.execute(update(Counter).where(Counter.name == "item").values(value=items))


async def fill_due(runtime: Runtime, due: int, window: float, lead: float) -> datetime:
    """`due` ungraded items whose 15-minute grade clock runs out at a random moment of the window,
    which opens `lead` seconds from now — after these rows are in (the background is filled
    first, so that filling never eats into the window). Returns when the window opens."""
    config = runtime.config
    rng = random.Random(42)
    opens = datetime.now(UTC) + timedelta(seconds=lead)

    def make(number: int) -> dict[str, Any]:
        deadline = opens + timedelta(seconds=rng.random() * window)
        row = _item_row(number, deadline - timedelta(minutes=config.policy.grade_minutes), None, config)
        row["reminded_until"] = opens  # the earlier points (50 %, 80 %) are not part of the measure
        return row

    await _insert(runtime, _rows(config, range(1, due + 1), make))
    return opens


async def run(runtime: Runtime, seconds: float) -> None:
    """The scheduler of `dutybot serve` (deadline sweep with its timer, outbox, roster jobs)."""
    jobs = build_scheduler(runtime)
    jobs.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await jobs.stop()
        await runtime.outbox.drain()


async def lateness(runtime: Runtime, opens: datetime) -> tuple[list[float], list[str]]:
    """Every delivered reminder's lateness (sorted), and the seconds of the window with the
    latest reminders: a stall shows as a run of late seconds, a slow pipeline as a drift."""
    async with runtime.db.read() as session:
        rows = (await session.execute(
            select(OutboxMessage.due_at, OutboxMessage.sent_at).where(OutboxMessage.clock.is_not(None))
        )).all()
    late = [(due, (sent - due).total_seconds()) for due, sent in rows if sent is not None]
    worst: dict[int, float] = {}
    for due, seconds in late:
        second = int((due - opens).total_seconds())
        worst[second] = max(worst.get(second, 0.0), seconds)
    slowest = sorted(worst.items(), key=lambda kv: -kv[1])[:5]
    return sorted(seconds for _, seconds in late), [f"+{second}s: {value:.2f}s" for second, value in slowest]


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def _fresh_pg(url: str) -> tuple[str, str]:
    name = f"dutybot_bench_{uuid.uuid4().hex[:10]}"
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return make_url(url).set(database=name).render_as_string(hide_password=False), name


async def _drop_pg(url: str, name: str) -> None:
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    temp = tempfile.mkdtemp(prefix="dutybot-bench-")
    url, pg_name = args.database or f"sqlite+aiosqlite:///{temp}/lateness.db", None
    if url.startswith("postgresql"):
        url, pg_name = await _fresh_pg(url)
    config = load_config(ROOT / "config.example.toml").with_database(url)
    delivery = config.delivery.model_copy(update={"tick_seconds": args.tick})
    config = config.model_copy(update={"delivery": delivery})
    runtime = Runtime.build(config, SystemClock())
    try:
        await runtime.db.upgrade()
        print(f"filling {args.items - args.due} items not due …", file=sys.stderr)
        await fill_background(runtime, args.items, args.due)
        print(f"filling {args.due} items due within {args.window:g} s …", file=sys.stderr)
        opens = await fill_due(runtime, args.due, args.window, args.lead)
        behind = (datetime.now(UTC) - opens).total_seconds()
        if behind > 0:
            print(f"warning: filling ran {behind:.1f} s into the window; raise --lead", file=sys.stderr)
        print(f"running the scheduler (tick {args.tick:g} s) …", file=sys.stderr)
        await run(runtime, (opens - datetime.now(UTC)).total_seconds() + args.window + 10)
        values, worst = await lateness(runtime, opens)
    finally:
        await runtime.db.dispose()
        if pg_name:
            await _drop_pg(args.database, pg_name)
    result = {
        "database": "postgresql" if pg_name else "sqlite", "items": args.items, "due": args.due,
        "window_s": args.window, "tick_s": args.tick, "delivered": len(values),
        "p50_s": round(percentile(values, 0.50), 3), "p99_s": round(percentile(values, 0.99), 3),
        "max_s": round(values[-1], 3) if values else None,
        "mean_s": round(statistics.fmean(values), 3) if values else None,
        "target_p99_s": 1.0,
        "latest_seconds_of_the_window": worst,
    }
    return result


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="PostgreSQL URL (a fresh database is created and dropped); default SQLite")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=60.0, help="seconds over which the due reminders fall")
    parser.add_argument("--tick", type=float, default=1.0, help="scheduler tick in seconds ([delivery] tick_seconds)")
    parser.add_argument("--lead", type=float, default=10.0, help="seconds between filling and the window's start")
    parser.add_argument("--json", help="also write the result as JSON to this file")
    args = parser.parse_args(argv)
    result = asyncio.run(main(args))
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    delivered_all = result["delivered"] == args.due
    print(f"delivered {result['delivered']}/{args.due}; p99 {result['p99_s']} s (target < 1 s)", file=sys.stderr)
    return 0 if delivered_all else 1


if __name__ == "__main__":
    sys.exit(cli())
