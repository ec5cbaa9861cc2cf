"""The 定期通报 of a month of 100,000 items in under 2 s (issue #16 point 7) rests on the indexes of
migration 0010 and on the plans PostgreSQL and SQLite make of its queries. A planner takes a partial
index only for a query that repeats its condition: the migration's conditions are held word for word
to store/records_clocks.py's, and each database is asked for its plan; and PostgreSQL plans each of
the notice's statements for its own values."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from types import ModuleType

import pytest

from bench import records
from domain.config import Config
from store import records_clocks
from store.db import Database

VERSIONS = records.ROOT / "store" / "migrations" / "versions"


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("revision_0010", VERSIONS / "0010_period_notice_indexes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_migration_indexes_the_notices_the_queries_count(dialect: str) -> None:
    migration = _migration()
    for name, overdue in migration.INDEXES.items():
        assert records_clocks.REMINDER_INDEXES[overdue] == name
        assert migration._condition(dialect, overdue) == records_clocks.reminder_condition(dialect, overdue)


async def test_the_planner_counts_the_reminders_from_their_index(config: Config) -> None:
    db = Database(config.database.url)
    await db.upgrade()
    try:
        assert await records.fill(db, config, 60) > 60
        async with db.read() as session:
            connection = await session.connection()
            dialect = connection.dialect.name
            if dialect == "postgresql":  # a few rows: a sequential scan would be cheaper than any index
                await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            for overdue, name in records_clocks.REMINDER_INDEXES.items():
                condition = records_clocks.reminder_condition(dialect, overdue)
                hint = f" INDEXED BY {name}" if dialect == "sqlite" else ""  # as the store names it
                query = (f"SELECT item_id, count(*) FROM item_events{hint} WHERE {condition} "
                         "AND at >= '2026-09-01' AND at < '2026-10-01' GROUP BY item_id")
                explain = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
                plan = " ".join(str(row) for row in (await connection.exec_driver_sql(explain + query)).all())
                assert name in plan, plan
            # The rows whose JSON a notice reads, from their own index (JSON and all, no row read).
            if dialect == "postgresql":
                await connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
                await connection.exec_driver_sql("SET LOCAL enable_indexscan = off")
            hint = " INDEXED BY ix_item_events_facts" if dialect == "sqlite" else ""
            query = (f"SELECT item_id, after FROM item_events{hint} WHERE {records_clocks.FACTS_CONDITION} "
                     "AND action = 'graded' AND at >= '2026-09-01' AND at < '2026-10-01'")
            plan = " ".join(str(row) for row in (await connection.exec_driver_sql(explain + query)).all())
            assert "ix_item_events_facts" in plan and ("COVERING" in plan or "Index Only" in plan), plan
            # And the counts are the notices' own: every reminder key the fill wrote, once.
            start = datetime(2026, 8, 1, tzinfo=UTC)
            counts = await records_clocks.reminder_counts(session, start, datetime(2026, 11, 1, tzinfo=UTC))
            keys = await connection.exec_driver_sql("SELECT item_id, after FROM item_events WHERE action = 'notice'")
            expected: dict[int, list[int]] = {}
            for row in keys.all():
                after = row[1] if isinstance(row[1], dict) else json.loads(row[1])
                expected.setdefault(row[0], [0, 0])[":overdue:" in after["key"]] += 1
            assert {item_id: found[:2] for item_id, found in counts.items()} == expected
    finally:
        await db.dispose()


async def test_each_statement_of_a_notice_is_planned_for_its_own_values(config: Config) -> None:
    """The driver prepares a statement once per connection; after five runs PostgreSQL may keep a
    generic plan, which for the reminders of a list of items took twenty seconds instead of a tenth
    (the sixth monthly notice on one pooled connection). Only the notice's own transaction is changed."""
    db = Database(config.database.url)
    await db.upgrade()
    try:
        async with db.read() as session:
            await records_clocks.plan_each_time(session)
            connection = await session.connection()
            if connection.dialect.name != "postgresql":
                return
            assert (await connection.exec_driver_sql("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        async with db.read() as session:
            connection = await session.connection()
            assert (await connection.exec_driver_sql("SHOW plan_cache_mode")).scalar() == "auto"
    finally:
        await db.dispose()
