"""Fill a migrated database quickly: items by bulk insert, the roster through bench/roster_lookup.py.

Items are written with Core `INSERT … VALUES` in executemany batches (not through HTTP): five
years of a county's reports, each with its lead unit and two audit events (reported, closed).
All are closed, so the deadline sweep has nothing to do with them, as in a real store where the
open items are a handful.
"""

from __future__ import annotations

import random
import re
from collections import Counter as Tally
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text, update

from store.db import Database
from store.models import Counter, InboundSeen, Item, ItemEvent, ItemUnit, OutboxMessage

CHAT = "dingtalk_duty"
BATCH = 5000
FIRST_DAY = datetime(2022, 1, 1, tzinfo=UTC)
SOURCES = ["微博", "微信公众号", "抖音", "12345平台", "新闻跟帖", "今日头条"]
UNITS = ["gov_office", "health", "education", "chengguan", "dongfeng", "xian", "tax"]
CATEGORIES = ["民生诉求", "突发事件", "政策解读", "其他"]


def _item_rows(start: int, count: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    span = int(timedelta(days=5 * 365).total_seconds())
    for number in range(start, start + count):
        at = FIRST_DAY + timedelta(seconds=rng.randrange(span))
        rows.append({
            "number": number, "chat_id": CHAT, "source": rng.choice(SOURCES),
            "link": f"https://weibo.com/{7_000_000 + number}",
            "summary": f"网友反映第{number}号线索：城关镇某小区停水三天无人处理 https://weibo.com/{7_000_000 + number}",
            "category": rng.choice(CATEGORIES), "grade": "一般", "lead_unit_id": rng.choice(UNITS),
            "status": "已办结", "reported_by": "sun_li", "reported_at": at,
            "grade_due_at": at + timedelta(minutes=15), "graded_at": at + timedelta(minutes=5), "graded_by": "zhou_tao",
            "pass_on_due_at": at + timedelta(hours=24), "response_due_at": at + timedelta(hours=48),
            "assigned_at": at + timedelta(minutes=6), "acknowledged_at": at + timedelta(minutes=30),
            "acknowledged_by": "zhao_min", "responded_at": at + timedelta(hours=20), "response_form": "情况通报",
            "response_link": None, "response_text": "已核实处理", "closed_at": at + timedelta(hours=30),
            "verdict": "已处置", "merged_into": None, "classified": False, "referred_to": [],
            "updated_at": at + timedelta(hours=30), "next_reminder_at": None,
            "reminded_until": at + timedelta(hours=30),
        })
    return rows


async def fill_items(db: Database, count: int, *, seed: int = 20261123) -> int:
    """Append `count` closed items (with units and audit events); the item counter follows."""
    rng = random.Random(seed)
    async with db.read() as session:
        first = int((await session.execute(select(func.coalesce(func.max(Item.number), 0)))).scalar_one()) + 1
    done = 0
    while done < count:
        size = min(BATCH, count - done)
        rows = _item_rows(first + done, size, rng)
        async with db.transaction() as session:
            await session.execute(insert(Item), rows)
            numbers = [r["number"] for r in rows]
            ids = dict((await session.execute(
                select(Item.number, Item.id).where(Item.number.in_(numbers)))).tuples().all())
            await session.execute(insert(ItemUnit), [
                {"item_id": ids[r["number"]], "unit_id": r["lead_unit_id"], "is_lead": True, "position": 0}
                for r in rows])
            events = []
            for r in rows:
                item_id = ids[r["number"]]
                events.append({"item_id": item_id, "at": r["reported_at"], "actor": "sun_li", "chat_id": CHAT,
                               "action": "reported", "detail": r["summary"], "before": {},
                               "after": {"number": r["number"]}})
                events.append({"item_id": item_id, "at": r["closed_at"], "actor": "zhou_tao", "chat_id": CHAT,
                               "action": "closed", "detail": "已处置", "before": {}, "after": {}})
            await session.execute(insert(ItemEvent), events)
            await session.execute(update(Counter).where(Counter.name == "item").values(value=first + done + size - 1))
        done += size
    return count


async def fill_roster(db: Database, years: int) -> int:
    """Five years (or `years`) of the DingTalk duty chat's roster, with bench/roster_lookup.py's
    definitions and fill (that module is another engineer's: called, not copied or edited)."""
    from bench import roster_lookup
    from domain.config import load_config
    from domain.directory import Directory
    from handlers.roster_service import Roster

    # roster_lookup fills its module-level CHAT (the WeCom duty chat); the DingTalk callback asks
    # about dingtalk_duty, so the same definitions go there.
    roster_lookup.CHAT = CHAT
    config = load_config(roster_lookup.ROOT / "config.example.toml")
    roster = Roster.build(config, Directory(config))
    first = date.today() - timedelta(days=365 * years // 2)
    rows: int = await roster_lookup.fill(db, roster, first, years, random.Random(20261123))
    return rows


async def analyze(db: Database) -> None:
    """Planner statistics (and, on PostgreSQL, the visibility map) after the bulk fill, as a store
    that grew over years would have them — and so that autovacuum does not run during the
    measurement."""
    async with db.engine.connect() as conn:
        if db.sqlite:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
            # The bulk fill left hundreds of MB in the WAL; a store that grew over years has been
            # checkpointed many times, and reads measured through a huge WAL would not be its reads.
            await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        else:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE"))


async def count_items(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.count()).select_from(Item))).scalar_one())


_ID_IN_SUMMARY = re.compile(r"编号(\S+)")


async def ingestion_check(db: Database, run_tag: str, channel: str = "dingtalk") -> dict[str, Any]:
    """For one measured run: did every accepted message make exactly one item, one audit entry
    and one reply carrying the grade question, and nothing else?"""
    prefix = f"bench{run_tag}t"
    async with db.read() as session:
        seen = list((await session.execute(select(InboundSeen.message_id).where(
            InboundSeen.channel == channel, InboundSeen.message_id.like(f"{prefix}%")))).scalars())
        items = (await session.execute(select(Item.id, Item.summary).where(
            Item.summary.like(f"%编号{prefix}%")))).all()
        item_ids = [row[0] for row in items]
        events = Tally[Any]()
        for chunk in _chunks(item_ids, 5000):
            found = await session.execute(select(ItemEvent.item_id, ItemEvent.action).where(
                ItemEvent.item_id.in_(chunk)))
            events.update(action for _, action in found.tuples())
        replies = (await session.execute(select(OutboxMessage.key, OutboxMessage.text).where(
            OutboxMessage.key.like(f"reply:{channel}:{prefix}%")))).all()
        units = 0
        for chunk in _chunks(item_ids, 5000):
            units += int((await session.execute(select(func.count()).select_from(ItemUnit).where(
                ItemUnit.item_id.in_(chunk)))).scalar_one())
        duplicates = int((await session.execute(text(
            "SELECT count(*) FROM (SELECT number FROM items GROUP BY number HAVING count(*) > 1) AS d"))).scalar_one())
    per_message = Tally(m.group(1) for _, summary in items if (m := _ID_IN_SUMMARY.search(summary)))
    seen_set = set(seen)
    exactly_one = sum(1 for message_id in seen_set if per_message.get(message_id) == 1)
    return {
        "messages_recorded": len(seen_set),
        "items": len(items),
        "items_per_message_exactly_one": exactly_one,
        "items_without_message": sum(1 for m in per_message if m not in seen_set),
        "reported_audit_entries": events.get("reported", 0),
        "lead_unit_rows": units,
        "replies_queued": len(replies),
        "replies_with_grade_question": sum(1 for _, body in replies if "定级" in body),
        "duplicate_item_numbers": duplicates,
    }


def _chunks(values: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]
