"""Issue #13 (3): one slow robot delays no other group.

Four chats, each with a WeCom group robot of its own on the fake platform. The first robot holds
every post it gets for 15 s before answering (a real hang: [delivery] timeout_seconds is 20 here,
so the client waits it out). The test plays the scheduler: it moves the ManualClock to each
reminder's due time, sweeps the clocks and runs the outbox's drain (what a tick does), and waits
— on the fake's arrivals, never on a deadline — until the three other robots have their reminder.
Lateness is measured on the event loop's monotonic time, from the tick at the due time to the
arrival at the fake robot; the bot's own clock stamps the arrival at the due time exactly.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.clock import ManualClock
from domain.config import Config
from store import outbox
from tests.conftest import START, Bot, start_bot
from tests.fakes.wecom import FakeWecom, wecom_environ
from tests.replica_support import Seed, reliability_config, reminder_numbers, reminder_rows, seed_reminders

ROBOTS = 4
HANG = 15.0  # seconds the first robot holds each post
ROUNDS = 6  # reminders per chat, one every STEP
STEP = timedelta(seconds=10)
BUDGET = 1.0  # seconds a reminder of a robot that answers at once may be late


def robot_key(i: int) -> str:
    return f"rel-robot-key-{i:02d}"


async def test_a_hanging_robot_holds_back_only_its_own_reminders(config: Config, clock: ManualClock) -> None:
    config = reliability_config(config, platform="wecom", robots=ROBOTS, timeout_seconds=20)
    fake = FakeWecom(now=clock.now)
    fake.keys |= {robot_key(i) for i in range(ROBOTS)}
    fake.hang[robot_key(0)] = HANG
    await fake.start()
    environ = wecom_environ(fake) | {f"DUTYBOT_REL{i:02d}_WEBHOOK": fake.webhook_url(robot_key(i))
                                     for i in range(ROBOTS)}
    client = await start_bot(config, clock, environ)
    bot = Bot(client, clock, config)
    runtime = bot.runtime
    loop = asyncio.get_running_loop()
    try:
        seeds = [Seed(f"rel{i:02d}", START + STEP * k) for k in range(ROUNDS) for i in range(ROBOTS)]
        plan = await seed_reminders(runtime.db, seeds)
        chat_of = {number: seed.chat_id for number, seed in plan.items()}

        def got(i: int) -> int:
            return len(fake.webhook_posts(robot_key(i)))

        lateness: list[float] = []
        tick_seconds: list[float] = []
        for k in range(ROUNDS):
            clock.set(START + STEP * k)
            ticked = loop.time()
            await runtime.deadlines.run_once()
            await runtime.outbox.run_due()  # hands the rows to their robots' lanes and returns
            tick_seconds.append(loop.time() - ticked)
            await fake.wait_until(lambda k=k: all(got(i) == k + 1 for i in range(1, ROBOTS)), within=HANG)
            for i in range(1, ROBOTS):
                post = fake.webhook_posts(robot_key(i))[k]
                assert post.received_at == clock.now()  # in the bot's time: at the due moment
                lateness.append(post.monotonic - ticked)
        hung = fake.webhook_posts(robot_key(0))
        assert len(hung) == 1  # its first reminder is still in flight; the rest wait for that robot alone
        assert max(lateness) < BUDGET, lateness
        assert max(tick_seconds) < BUDGET, tick_seconds  # the scheduler's tick never waits for the hang

        # The hanging robot answers after 15 s; its other reminders then follow at the next tick.
        fake.hang.clear()
        await runtime.outbox.drain()
        assert loop.time() - hung[0].monotonic >= HANG - 0.1  # the hang was real
        await runtime.deadlines.run_once()
        await runtime.outbox.run_due()
        await runtime.outbox.drain()
        first = fake.webhook_posts(robot_key(0))
        assert [chat_of[n] for p in first for n in reminder_numbers(p.content)] == ["rel00"] * ROUNDS
        rows = await reminder_rows(runtime.db)
        assert {row.status for row in rows.values()} == {outbox.SENT} and len(rows) == ROUNDS * ROBOTS
        assert fake.problems == []
        print(f"\nisolation: max lateness of the {ROBOTS - 1} answering robots {max(lateness) * 1000:.0f} ms "
              f"(median {sorted(lateness)[len(lateness) // 2] * 1000:.0f} ms), longest tick "
              f"{max(tick_seconds) * 1000:.0f} ms, while robot 0 hung {HANG:g} s")
    finally:
        await client.close()
        await fake.close()
