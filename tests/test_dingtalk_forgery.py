"""10,000 forged DingTalk callbacks: none accepted, nothing written; then 1,000 genuine ones: all accepted.

SQLite only: the signature is checked before the body is read and before any database access, so
the database cannot change what is refused; the PostgreSQL half is skipped to keep the suite fast.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from domain.config import Config
from store.models import ChatMessage, InboundSeen, Item, ItemEvent, OutboxMessage
from tests.conftest import Bot, start_bot
from tests.fakes.dingtalk import FakeDingTalk, dingtalk_sign, now_ms

FORGED = 10_000
GENUINE = 1_000
BATCH = 50  # requests in flight at once
SKEW_MS = 300_000  # max_skew_seconds in config.example.toml
TABLES: list[Any] = [Item, ItemEvent, ChatMessage, OutboxMessage, InboundSeen]
NON_NUMERIC = ["", "abc", "1.7e12", "{now}.0", " {now}x", "+{now}", "-{now}", "0x{now:x}", "١٧٩٥٣٩٩٢٠٠٠٠٠",
               "{now}{now}{now}", "{now}\t1", "１７９５"]

Forgery = tuple[dict[str, Any], dict[str, str], int]  # body, headers, expected status


async def counts(bot: Bot) -> dict[str, int]:
    result = {}
    async with bot.runtime.db.read() as session:
        for model in TABLES:
            result[model.__tablename__] = int(
                (await session.execute(select(func.count()).select_from(model))).scalar_one())
    return result


def forgeries(fake: FakeDingTalk, seen: dict[str, Any], seen_headers: dict[str, str]) -> Iterator[Forgery]:
    """Ten kinds in turn; every body is a plausible report from a configured person in the duty chat."""
    rng = random.Random(20261123)
    now = now_ms(fake.clock)
    secret = fake.app_secret
    for index in range(FORGED):
        body = fake.message(f"上报 伪造线索{index} 城关镇人民路发生火灾")
        stamp = str(now)
        valid = dingtalk_sign(stamp, secret)
        kind = index % 10
        if kind == 0:  # random signature
            headers = {"timestamp": stamp, "sign": base64.b64encode(rng.randbytes(32)).decode()}
        elif kind == 1:  # the valid signature with one bit flipped
            raw = bytearray(base64.b64decode(valid))
            bit = rng.randrange(len(raw) * 8)
            raw[bit // 8] ^= 1 << (bit % 8)
            headers = {"timestamp": stamp, "sign": base64.b64encode(bytes(raw)).decode()}
        elif kind == 2:  # signed with a wrong secret
            wrong = rng.choice([secret + "x", secret[:-1], secret.upper(), f"guess-{rng.random()}"])
            headers = {"timestamp": stamp, "sign": dingtalk_sign(stamp, wrong)}
        elif kind in (3, 4):  # correctly signed but too old / too far in the future
            offset = SKEW_MS + rng.randint(1, 3 * 3_600_000)
            stale = str(now - offset if kind == 3 else now + offset)
            headers = {"timestamp": stale, "sign": dingtalk_sign(stale, secret)}
        elif kind == 5:  # a header missing
            headers = rng.choice([{}, {"timestamp": stamp}, {"sign": valid}, {"timestamp": "", "sign": valid}])
        elif kind == 6:  # a timestamp that is not plain digits, signed over what is sent
            stamp = rng.choice(NON_NUMERIC).format(now=now)
            headers = {"timestamp": stamp, "sign": dingtalk_sign(stamp, secret)}
        elif kind == 7:  # a captured (timestamp, sign) replayed with an already handled msgId
            body["msgId"] = seen["msgId"]
            yield body, dict(seen_headers), 200
            continue
        elif kind == 8:  # the URL-encoded form of a valid signature (the custom robot's format)
            headers = {"timestamp": stamp, "sign": quote_plus(valid)}
        else:  # a valid signature of another moment
            headers = {"timestamp": stamp, "sign": dingtalk_sign(str(now - rng.randint(1, 1000)), secret)}
        yield body, headers, 401


async def test_forged_callbacks_are_refused_and_genuine_ones_accepted(
    config: Config, clock: ManualClock, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    if request.node.callspec.params.get("db_url") == "postgresql":
        pytest.skip("SQLite only: the signature is checked before any database access; keeps the suite fast")
    caplog.set_level(logging.ERROR)  # 10,000 refusals are each logged at WARNING; not needed here
    async with FakeDingTalk(clock) as fake:
        client = await start_bot(config, clock, fake.environ())
        bot = Bot(client, clock, config)
        try:
            await run_scenario(bot, fake)
        finally:
            await client.close()


async def run_scenario(bot: Bot, fake: FakeDingTalk) -> None:
    # A genuine message first, so that its signature and msgId can be replayed.
    seen = fake.message("帮助")
    seen_headers = fake.headers()
    assert (await fake.call(bot.client, seen, headers=seen_headers)).status == 200
    await bot.runtime.outbox.drain()
    before = await counts(bot)
    posts_before = len(fake.posts)

    started = time.perf_counter()
    outcomes: Counter[tuple[int, int]] = Counter()
    batch: list[Forgery] = []
    for forgery in forgeries(fake, seen, seen_headers):
        batch.append(forgery)
        if len(batch) == BATCH:
            outcomes.update(await send_batch(bot, fake, batch))
            batch = []
    outcomes.update(await send_batch(bot, fake, batch))
    forged_seconds = time.perf_counter() - started
    await bot.runtime.outbox.drain()

    assert sum(outcomes.values()) == FORGED
    assert {expected for expected, _ in outcomes} == {401, 200}
    assert all(expected == got for expected, got in outcomes), outcomes
    assert await counts(bot) == before  # not one row in items, item_events, chat_messages, outbox, inbound_seen
    assert len(fake.posts) == posts_before  # and nothing said in the chat
    assert before["items"] == 0

    started = time.perf_counter()
    genuine = [(fake.message(f"上报 第{n}条：网友反映西岸滨河路路灯不亮"), fake.headers(), 200) for n in range(GENUINE)]
    for start in range(0, GENUINE, BATCH):
        results = await send_batch(bot, fake, genuine[start : start + BATCH])
        assert all(status == 200 for _, status in results), results
    await bot.runtime.outbox.drain()
    genuine_seconds = time.perf_counter() - started
    after = await counts(bot)
    assert after["items"] == GENUINE and after["inbound_seen"] == before["inbound_seen"] + GENUINE
    assert len(fake.posts_of("session")) == posts_before + GENUINE and fake.problems == []
    print(f"\n{FORGED} forged callbacks in {forged_seconds:.1f} s; {GENUINE} genuine in {genuine_seconds:.1f} s")


async def send_batch(bot: Bot, fake: FakeDingTalk, batch: list[Forgery]) -> list[tuple[int, int]]:
    async def one(body: dict[str, Any], headers: dict[str, str], expected: int) -> tuple[int, int]:
        response = await fake.call(bot.client, body, headers=headers)
        await response.read()
        return expected, response.status

    return list(await asyncio.gather(*(one(*forgery) for forgery in batch)))
