"""Benchmark: "who is on duty at time t" with five years of roster in the database.

Fills a database with the example chat's roster (白班/夜班 on 工作日, 24-hour shifts on 休息日 and
法定节假日, two 值班员 and one 带班领导 per shift, rotations per shift, day and week, some leave and
overrides), materialised for five years, then times the lookup the bot uses for every message
(`RosterDuty.on_duty`: an in-memory index of the materialised rows, revalidated against the roster
version at most once a second) at random instants — and, for comparison, the same with the version
read on every call, and the indexed range query on `roster_shifts` alone.

Rerun:
    .venv/bin/python bench/roster_lookup.py                          # SQLite in a temporary file
    .venv/bin/python bench/roster_lookup.py --database postgresql+asyncpg://postgres@127.0.0.1:5432/bench

A benchmark, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete  # noqa: E402

from domain.config import load_config  # noqa: E402
from domain.directory import Directory  # noqa: E402
from handlers.roster_service import Roster, RosterDuty  # noqa: E402
from store import roster as store  # noqa: E402
from store.db import Database  # noqa: E402
from store.models import RosterLeave, RosterOverride, RosterRotation, RosterTemplate  # noqa: E402

CHAT = "wecom_duty"
WARM_UP = 200


def definitions(start: date) -> tuple[list[RosterTemplate], list[RosterRotation]]:
    def template(name: str, day_type: str, begin: str, end: str) -> RosterTemplate:
        return RosterTemplate(chat_id=CHAT, name=name, day_type=day_type, start_time=begin, end_time=end,
                              officers=2, leaders=1)

    templates = [
        template("白班", "工作日", "08:30", "17:30"), template("夜班", "工作日", "17:30", "08:30"),
        template("全天", "休息日", "08:30", "08:30"), template("全天", "法定节假日", "08:30", "08:30"),
    ]
    officers = ["zhao_min", "sun_li", "feng_xue", "jiang_bo", "yang_fan", "you_jia", "zhang_jing"]
    rotations = [
        RosterRotation(chat_id=CHAT, role="值班员", shifts=["白班"], people=officers, advance="每天",
                       start_date=start),
        RosterRotation(chat_id=CHAT, role="值班员", shifts=["夜班", "全天"], people=officers[::-1],
                       advance="每班", start_date=start),
        RosterRotation(chat_id=CHAT, role="带班领导", shifts=[], people=["li_hua", "zhou_tao", "han_mei"],
                       advance="每周", start_date=start),
    ]
    return templates, rotations


async def fill(db: Database, roster: Roster, first: date, years: int, rng: random.Random) -> int:
    templates, rotations = definitions(first)
    last = first + timedelta(days=365 * years)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.transaction() as session:
        await session.execute(delete(RosterLeave).where(RosterLeave.created_by == "bench"))
        await session.execute(delete(RosterOverride).where(RosterOverride.created_by == "bench"))
        await store.replace_definitions(session, CHAT, templates, rotations)
        for _ in range(60):  # leave and swaps spread over the years
            at = datetime.combine(first, datetime.min.time(), tzinfo=UTC) + timedelta(days=rng.randrange(365 * years))
            session.add(RosterLeave(person_id=rng.choice(["zhao_min", "sun_li", "feng_xue"]), start_at=at,
                                    end_at=at + timedelta(days=rng.randint(1, 5)), reason="", created_at=now,
                                    created_by="bench"))
            session.add(RosterOverride(chat_id=CHAT, person_id="you_jia", replaces="jiang_bo", start_at=at,
                                       end_at=at + timedelta(hours=12), kind="admin", created_at=now,
                                       created_by="bench"))
        await session.flush()
        chunk = first
        while chunk <= last:  # a year at a time, as the horizon job would
            end = min(chunk + timedelta(days=365), last)
            await roster.rebuild(session, CHAT, chunk, end)
            chunk = end + timedelta(days=1)
    async with db.read() as session:
        rows = await store.shifts_on_days(session, CHAT, first, last)
    return len(rows)


def percentiles(samples: list[float]) -> str:
    samples = sorted(samples)
    p50 = statistics.median(samples)
    p99 = samples[max(int(len(samples) * 0.99) - 1, 0)]
    return f"p50 {p50:7.1f} µs   p99 {p99:7.1f} µs   max {samples[-1]:8.1f} µs"


async def measure(label: str, lookups: int, call: Callable[[datetime], Awaitable[object]],
                  instants: list[datetime]) -> None:
    samples = []
    for index, at in enumerate(instants[: lookups + WARM_UP]):
        begin = time.perf_counter_ns()
        found = await call(at)
        elapsed = time.perf_counter_ns() - begin
        if index >= WARM_UP:  # connection, statement cache
            samples.append(elapsed / 1000)
        assert found, at
    print(f"  {label:<44} {percentiles(samples)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="database URL (default: SQLite in a temporary directory)")
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--lookups", type=int, default=5000)
    args = parser.parse_args()
    config = load_config(ROOT / "config.example.toml")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite+aiosqlite:///{tmp}/bench.db"
        db = Database(url)
        await db.upgrade()
        roster = Roster.build(config, Directory(config))
        rng = random.Random(20261123)
        first = date(2026, 1, 1)
        started = time.perf_counter()
        rows = await fill(db, roster, first, args.years, rng)
        print(f"{db.engine.dialect.name}: {rows} shift rows ({args.years} years of one chat's roster) "
              f"materialised in {time.perf_counter() - started:.1f} s")
        duty = RosterDuty(roster.directory)
        chat = roster.directory.chats[CHAT]
        span = int(timedelta(days=365 * args.years).total_seconds())
        origin = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
        instants = [origin + timedelta(seconds=rng.randrange(span)) for _ in range(args.lookups + WARM_UP)]
        print(f"\"who is on duty at t\" at {args.lookups} random instants in the {args.years} years:")
        async with db.read() as session:
            await duty.on_duty(session, chat, origin)  # the first lookup loads the chat's index from here on

            async def cached(at: datetime) -> object:
                found = await duty.on_duty(session, chat, at)
                return found.officers and found.leaders

            async def table(at: datetime) -> object:
                return await store.on_duty_at(session, CHAT, at)

            index = duty._cache[CHAT]  # the bench looks inside on purpose

            async def memory(at: datetime) -> object:
                return index.at(at)

            strict = RosterDuty(roster.directory, revalidate=0)  # re-reads the version on every call
            await strict.on_duty(session, chat, origin)

            async def revalidated(at: datetime) -> object:
                found = await strict.on_duty(session, chat, at)
                return found.officers and found.leaders

            await measure("RosterDuty.on_duty (what every message uses)", args.lookups, cached, instants)
            await measure("  of which: in-memory index only", args.lookups, memory, instants)
            await measure("RosterDuty, version re-read on every call", args.lookups, revalidated, instants)
            await measure("indexed table query alone (no cache)", args.lookups, table, instants)
        print("rerun: .venv/bin/python bench/roster_lookup.py [--database URL] [--years N] [--lookups N]")
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
