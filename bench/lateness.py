"""Reminder lateness: 100,000 open items, 10,000 of them due within one minute.

Measures how late each reminder is delivered (outbox sent_at − its due time) when the real
deadline sweep and outbox worker run on the wall clock, ticking every --tick seconds, as
`dutybot serve` does. Reminders go to a local chat (no platform webhook, so no platform rate
limit): this measures the bot's own pipeline — index scan, point computation, idempotent
enqueue, claim, re-check, settle.

Rerun:
    .venv/bin/python -m bench.lateness                       # SQLite, defaults
    .venv/bin/python -m bench.lateness --database postgresql+asyncpg://postgres@127.0.0.1:5432/test
    .venv/bin/python -m bench.lateness --items 20000 --due 2000 --window 20   # quick
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
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from bot.clock import SystemClock
from bot.config import load_config
from bot.runtime import Runtime
from handlers.deadline_rules import next_point_at
from handlers.policy import deadlines
from handlers.reminders import item_clocks
from store.models import Item, OutboxMessage

ROOT = Path(__file__).resolve().parents[1]
CHAT = "ops"  # a local chat: no webhook, so the platform's 20/min limit does not apply


def _item_row(number: int, reported: datetime, grade: str | None, config: Any) -> dict[str, Any]:
    from bot.vocab import Grade

    due = deadlines(reported, Grade(grade) if grade else None, config.policy)
    return {
        "number": number, "chat_id": CHAT, "source": "微博", "link": None, "summary": f"压测线索{number}",
        "category": "其他", "grade": grade, "lead_unit_id": "chengguan", "status": "已定级" if grade else "待定级",
        "reported_by": "liu_yang", "reported_at": reported, "grade_due_at": due.grade_due,
        "pass_on_due_at": due.pass_on_due, "response_due_at": due.response_due, "classified": False,
        "referred_to": [], "updated_at": reported, "reminded_until": reported,
        "graded_at": reported if grade else None,
    }


async def fill(runtime: Runtime, items: int, due: int, window: float, start: datetime) -> None:
    """`due` ungraded items whose grade deadline falls inside the window; the rest far from due."""
    config = runtime.config
    rng = random.Random(42)
    rows = []
    for number in range(1, items + 1):
        if number <= due:
            # The 15-minute grade clock runs out `offset` seconds after the start.
            offset = 5 + rng.random() * window
            reported = start + timedelta(seconds=offset) - timedelta(minutes=config.policy.grade_minutes)
            row = _item_row(number, reported, None, config)
            row["reminded_until"] = start  # earlier points (50 %, 80 %) are not part of the measure
        else:
            row = _item_row(number, start - timedelta(minutes=1), "一般", config)
        rows.append(row)
    for row in rows:
        probe = Item(**{k: v for k, v in row.items()})
        row["next_reminder_at"] = next_point_at(item_clocks(probe), config.policy, config.tz, row["reminded_until"])
    async with runtime.db.transaction() as session:
        for first in range(0, len(rows), 2000):
            await session.execute(insert(Item), rows[first : first + 2000])
        from sqlalchemy import update

        from store.models import Counter

        await session.execute(update(Counter).where(Counter.name == "item").values(value=items))


async def run(runtime: Runtime, seconds: float, tick: float) -> None:
    """The scheduler's two jobs, ticking on the wall clock."""
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        began = time.monotonic()
        await runtime.deadlines.run_once()
        while await runtime.outbox.run_once() >= runtime.outbox.batch:
            pass
        await asyncio.sleep(max(0.0, tick - (time.monotonic() - began)))


async def lateness(runtime: Runtime) -> list[float]:
    async with runtime.db.read() as session:
        rows = (await session.execute(
            select(OutboxMessage.due_at, OutboxMessage.sent_at).where(OutboxMessage.clock.is_not(None))
        )).all()
    return sorted((sent - due).total_seconds() for due, sent in rows if sent is not None)


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
    runtime = Runtime.build(config, SystemClock())
    try:
        await runtime.db.upgrade()
        print(f"filling {args.items} items ({args.due} due within {args.window:g} s) …", file=sys.stderr)
        filled = time.monotonic()
        start = datetime.now(UTC) + timedelta(seconds=0)
        await fill(runtime, args.items, args.due, args.window, start)
        start_offset = time.monotonic() - filled
        print(f"filled in {start_offset:.1f} s; running the sweep and outbox …", file=sys.stderr)
        await run(runtime, args.window + 10 + start_offset, args.tick)
        values = await lateness(runtime)
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
    }
    return result


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="PostgreSQL URL (a fresh database is created and dropped); default SQLite")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=60.0, help="seconds over which the due reminders fall")
    parser.add_argument("--tick", type=float, default=0.25, help="scheduler tick in seconds (config tick_seconds)")
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
