"""POST /api/v1/items:batch takes its items together (a fixed number of statements, not a dozen per
item) with exactly the outcome of posting them one by one: the same numbers, duplicates,
supplements, audit rows, grade questions and announcements. And batches running at once on
PostgreSQL neither fail on the item counter's lock nor deadlock on shared records."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.clock import ManualClock
from domain.config import Config
from store.models import Item, ItemEvent, ItemSource, ItemUnit, OutboxMessage, PendingQuestion
from tests.conftest import START, Bot, _truncate, start_bot
from tests.test_intake_api import SOURCE, count, deliver, post, token

BASE = {"source_system": SOURCE, "summary": "网传现场有人员受伤", "platform": "微博", "suggested_grade": None}


def record(
    n: int, *, url: str | None, external_id: str | None, unit: str | None = "城关镇", **more: Any
) -> dict[str, Any]:
    return {**BASE, "external_id": external_id, "url": url, "title": f"城关镇人民路第{n}号线索",
            "unit_hint": unit, **more}


U0, U1, U3 = "https://weibo.com/1/zero", "https://weibo.com/1/one", "https://www.douyin.com/video/3"
EARLIER = record(0, url=U0, external_id="a0")  # posted before the batch, by itself
SEQUENCE = [
    record(1, url=U1, external_id="e1"),                       # new: #2
    record(1, url=U1, external_id="e1"),                       # the same record again: #2, duplicate
    record(3, url=U1 + "?from=share", external_id="e3"),       # another record, same link: supplement of #2
    record(4, url=U3, external_id=None),                       # no external id: new, #3
    record(5, url=U3, external_id=None),                       # same link, no id: supplement of #3
    record(6, url=U0, external_id="a0"),                       # the record taken before the batch: #1
    record(7, url=U0 + "#comments", external_id="e7"),         # new record, link of #1: supplement of #1
    record(8, url="https://weibo.com/2/school", external_id="e8", unit="教育局"),  # new: #4, another chat
    record(9, url="not a link", external_id="e9"),             # invalid: 422, nothing kept
    record(10, url="https://weibo.com/2/secret", external_id="e10", classified=True),  # new: #5, 涉密
    record(11, url=None, external_id=None, unit=None),         # no link, no id, no unit: new, #6
]
EXPECTED = [(201, 2), (200, 2), (200, 2), (201, 3), (200, 3), (200, 1), (200, 1), (201, 4), (422, None), (201, 5),
            (201, 6)]


async def test_a_batch_has_the_outcome_of_posting_its_items_one_by_one(
    config: Config, tmp_path: Path, db_url: str
) -> None:
    batched, batch_results = await _run(config, batch=True)
    if db_url.startswith("sqlite"):
        config = config.with_database(f"sqlite+aiosqlite:///{tmp_path / 'one-by-one.db'}")
    else:
        await _truncate(db_url)
    singly, single_results = await _run(config, batch=False)
    assert batch_results == single_results == EXPECTED
    for table in batched:
        assert batched[table] == singly[table], table
    # The state compared is the state wanted (worked out above, by hand):
    assert [row[0] for row in batched["items"]] == [1, 2, 3, 4, 5, 6]
    sources = {(row[1], row[2]) for row in batched["sources"]}
    assert sources == {("a0", 1), ("e1", 2), ("e3", 2), ("e7", 1), ("e8", 4), ("e10", 5)}
    supplements = sorted(row[0] for row in batched["events"] if row[2] == "supplement")
    assert supplements == [1, 2, 3]
    assert len([row for row in batched["outbox"] if row[0].endswith(":reported")]) == 6


async def _run(config: Config, *, batch: bool) -> tuple[dict[str, list[tuple[Any, ...]]], list[tuple[int, int | None]]]:
    clock = ManualClock(START)
    bot = Bot(await start_bot(config, clock), clock, config)
    try:
        headers = await token(bot)
        status, _ = await post(bot, headers, EARLIER)
        assert status == 201
        if batch:
            status, body = await post(bot, headers, {"items": SEQUENCE}, path="/api/v1/items:batch")
            assert status == 200, body
            results = [(r["status"], r["item"]["number"] if r["item"] else None) for r in body["results"]]
        else:
            results = []
            for entry in SEQUENCE:
                status, body = await post(bot, headers, entry)
                results.append((status, body["number"] if status < 300 else None))
        await deliver(bot)  # the announcements, and their audit rows, out in both runs
        return await _state(bot), results
    finally:
        await bot.client.close()


async def _state(bot: Bot) -> dict[str, list[tuple[Any, ...]]]:
    """What a batch writes, without ids and insertion order (a batch writes its audit rows by kind)."""
    async with bot.runtime.db.read() as session:
        numbers = {i.id: i.number for i in (await session.execute(select(Item))).scalars()}
        items = sorted(
            (i.number, i.chat_id, i.source, i.link, i.link_key, i.summary, i.category, i.lead_unit_id, i.status,
             i.reported_by, i.grade_due_at, i.classified, i.next_reminder_at, i.updated_at)
            for i in (await session.execute(select(Item))).scalars()
        )
        units = sorted((numbers[u.item_id], u.unit_id, u.is_lead, u.position)
                       for u in (await session.execute(select(ItemUnit))).scalars())
        events = sorted((numbers[e.item_id], e.actor, e.action, e.chat_id, e.detail, repr(e.after), e.at)
                        for e in (await session.execute(select(ItemEvent))).scalars() if e.item_id is not None)
        pending = sorted((q.chat_id, q.user_id, q.kind, numbers.get(q.item_id or 0), repr(q.payload), q.expires_at)
                         for q in (await session.execute(select(PendingQuestion))).scalars())
        outbox = sorted((m.key, m.chat_id, m.text, tuple(m.mentions), numbers.get(m.item_id or 0))
                        for m in (await session.execute(select(OutboxMessage))).scalars())
        sources = sorted((s.source_system, s.external_id, numbers[s.item_id])
                         for s in (await session.execute(select(ItemSource))).scalars())
    return {"items": items, "units": units, "events": events, "pending": pending, "outbox": outbox,
            "sources": [(row[0], row[1], row[2]) for row in sources]}


async def test_batches_at_once_neither_fail_nor_leave_gaps_nor_deadlock(bot: Bot) -> None:
    """Four batches at once, two of them sharing records in opposite orders: every batch is kept
    (no 503 from the counter's lock, no deadlock between the records' locks), each record is one
    item, and the numbers run without a gap."""
    headers = await token(bot)
    own = [[record(100 * b + i, url=f"https://weibo.com/b{b}/{i}", external_id=f"b{b}-{i}") for i in range(60)]
           for b in range(2)]
    shared = [record(900 + i, url=f"https://weibo.com/shared/{i}", external_id=f"s-{i}") for i in range(60)]
    bodies = [own[0], own[1], shared, list(reversed(shared))]
    answers = await asyncio.gather(*(post(bot, headers, {"items": b}, path="/api/v1/items:batch") for b in bodies))
    assert [status for status, _ in answers] == [200, 200, 200, 200], answers
    assert await count(bot, Item) == 180
    created = sum(body["created"] for _, body in answers)
    duplicates = sum(body["duplicates"] for _, body in answers)
    assert (created, duplicates) == (180, 60)
    async with bot.runtime.db.read() as session:
        numbers = sorted((await session.execute(select(Item.number))).scalars())
    assert numbers == list(range(1, 181))
