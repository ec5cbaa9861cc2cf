"""The 定期通报 bench's own pieces, without timing (bench/records.py): the rows it writes have the shapes
the operations write (so the notice reads them as it reads a real trail), a small fill gives the same
figures by the database's sums and by the full replay, and its results section says what was met."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from bench import records
from domain.config import Config
from domain.directory import Directory
from handlers.records.facts import facts_for_window, max_clock, parse_reminder
from handlers.records.period import figures, period_notice
from handlers.records.period_facts import from_full
from store import records_period
from store.db import Database


def test_an_items_rows_are_shaped_as_the_operations_write_them(config: Config) -> None:
    rng = random.Random(7)
    reported = datetime(2026, 9, 10, 2, 0, tzinfo=UTC)
    units = [u.id for u in config.units]
    stories = [records.item_story(n, n, reported, config, units, rng, records.Mix(ack_late=0.5, respond_late=0.5))
               for n in range(1, 200)]
    actions = {event["action"] for _, events in stories for event in events}
    assert {"reported", "graded", "acknowledged", "responded", "closed", "notice"} <= actions
    for item, events in stories:
        first, graded = events[0], events[1]
        assert first["action"] == "reported" and first["after"]["lead_unit_id"] == item["lead_unit_id"]
        assert graded["action"] == "graded" and graded["after"]["grade"] == item["grade"]
        rules = config.policy.for_grade(next(g for g in records.Grade if g.value == item["grade"]))
        due = datetime.fromisoformat(graded["after"]["pass_on_due_at"])
        assert (due - reported).total_seconds() == rules.pass_on_minutes * 60
        for event in events:
            if event["action"] == "notice":
                reminder = parse_reminder(event["after"]["key"], event["at"])
                assert reminder is not None and reminder.clock.value in ("pass_on", "response")


async def test_a_small_fill_reads_the_same_by_sums_and_by_replay(config: Config) -> None:
    db = Database(config.database.url)
    await db.upgrade()
    try:
        rows = await records.fill(db, config, 300)
        now = datetime(2026, 10, 1, 9, 0, tzinfo=config.tz)
        directory = Directory(config)
        start, end = records.MONTH.bounds(config.tz)
        async with db.read() as session:
            fast = await period_notice(session, config, directory, records.MONTH, now)
            full = await facts_for_window(session, start, end, lookback=max_clock(config.policy))
            zero = await records_period.rows_between(session, start, end, ("zero_report",))
        replayed = figures(from_full(full.values(), zero, start, end), records.MONTH, config, directory, end)
        assert rows > 300 * 4 and 250 < fast.total <= 300
        assert [(u.unit, u.pass_on.owed, u.pass_on.on_time, u.response.owed, u.response.on_time, u.reminders,
                 u.urges, u.zero_missed, u.rank) for u in fast.units] == [
            (u.unit, u.pass_on.owed, u.pass_on.on_time, u.response.owed, u.response.on_time, u.reminders, u.urges,
             u.zero_missed, u.rank) for u in replayed.units]
        assert [(o.number, o.clock, o.late_by) for o in fast.overdue] == [
            (o.number, o.clock, o.late_by) for o in replayed.overdue]
        assert fast.totals().reminders > 0 and fast.totals().urges > 0 and fast.overdue
        measured = await records.measure(db, config, runs=1)
        assert measured["reported"] == fast.total and len(measured["notice_s"]) == 1
    finally:
        await db.dispose()


def test_the_section_says_whether_the_target_was_met() -> None:
    point = {"scenario": "records", "database": "sqlite", "items": 100_000, "reported": 96_800, "audit_rows": 776_331,
             "total_first_s": 1.9, "total_median_s": 1.7, "notice_s": [1.5, 1.6], "markdown_s": 0.05,
             "xlsx_s": 0.4, "met": True}
    lines = records.section({"points": [point]})
    assert lines[1].startswith("## 定期通报") and lines[-1] == (
        "| sqlite | 100,000 | 96,800 | 776,331 | 1.9 | 1.7 | 1.55 | 0.05 | 0.4 | yes |")
    assert records.section({"points": []}) == []
