"""Issue #13 (4): a bounded, clean shutdown.

SIGTERM stops taking new work, lets posts in flight finish up to [delivery] shutdown_seconds,
releases the claims it did not use (claimed_by and lease_until cleared, so another replica or the
next start takes them at once instead of after the lease), and exits within the bound plus 2 s
whatever the platforms do.

Two ways in: the app's own stop path (the test server's close: on_shutdown, then the cleanup
context), on both databases, with a fake WeCom robot that holds its answers; and a real
`dutybot serve` process sent SIGTERM while a ChaosRobot stalls every post, then a second worker
that must send everything at once. Durations are measured on the monotonic clock; the waits are
for events (a post reaching the fake, a process exiting), never for a deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import select

from bot.clock import ManualClock, SystemClock
from domain.config import Config, load_config
from store import outbox
from store.db import Database
from store.models import OutboxMessage
from tests.conftest import EXAMPLE_CONFIG, ROOT, Bot, start_bot
from tests.fakes.wecom import FakeWecom, wecom_environ
from tests.replica_support import (
    ChaosRobot,
    Faults,
    chat_ids,
    delivered,
    reliability_config,
    reminder_rows,
    seed_reminders,
    spread,
    write_config_file,
)

BOUND = 2.0  # [delivery] shutdown_seconds in these tests (the default is 10)
SLACK = 2.0  # the process is gone within the bound plus this
BACKLOG = 6  # rows queued for the hanging robot


def robot_key(i: int) -> str:
    return f"stop-robot-key-{i:02d}"


async def outbox_rows(db: Database) -> list[OutboxMessage]:
    async with db.read() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def test_stopping_the_app_cuts_a_hanging_post_at_the_bound_and_releases_every_claim(
    config: Config, clock: ManualClock
) -> None:
    config = reliability_config(config, platform="wecom", robots=2, timeout_seconds=30, shutdown_seconds=BOUND)
    fake = FakeWecom(now=clock.now)
    fake.keys |= {robot_key(0), robot_key(1)}
    fake.hang[robot_key(0)] = 60.0  # longer than the bound and than the test
    await fake.start()
    environ = wecom_environ(fake) | {f"DUTYBOT_REL{i:02d}_WEBHOOK": fake.webhook_url(robot_key(i)) for i in range(2)}
    loop = asyncio.get_running_loop()
    try:
        client = await start_bot(config, clock, environ)
        runtime = Bot(client, clock, config).runtime
        async with runtime.db.transaction() as session:
            for n in range(BACKLOG):
                for chat in ("rel00", "rel01"):
                    await outbox.enqueue(session, key=f"stop:{chat}:{n}", chat_id=chat, text=f"通知{n}",
                                         mentions=[], now=clock.now())
        await runtime.outbox.run_due()
        await fake.wait_until(lambda: len(fake.webhook_posts(robot_key(0))) == 1
                              and len(fake.webhook_posts(robot_key(1))) == BACKLOG, within=10)
        for _ in range(1000):  # the answering robot's lane records its last post
            if all(r.status == outbox.SENT for r in await outbox_rows(runtime.db) if r.chat_id == "rel01"):
                break
            await asyncio.sleep(0.01)
        claimed = [r for r in await outbox_rows(runtime.db) if r.status == outbox.CLAIMED]
        assert len(claimed) == BACKLOG and {r.chat_id for r in claimed} == {"rel00"}  # one posting, five waiting

        started = loop.time()
        closing = asyncio.create_task(client.close())
        # The claims not in use are released at once, long before the bound.
        released_after = None
        while released_after is None:
            rows = [r for r in await outbox_rows(runtime.db) if r.chat_id == "rel00"]
            if sum(r.status == outbox.PENDING for r in rows) == BACKLOG - 1:
                released_after = loop.time() - started
            elif closing.done():
                break
            else:
                await asyncio.sleep(0.01)  # polling for the release, not waiting for a deadline
        await closing
        stopped_after = loop.time() - started
        assert released_after is not None and released_after < BOUND / 2, released_after
        assert BOUND - 0.1 <= stopped_after <= BOUND + SLACK, stopped_after  # the hanging post had the bound

        db = Database(config.database.url)
        try:
            rows = [r for r in await outbox_rows(db) if r.chat_id == "rel00"]
            assert all(r.status == outbox.PENDING and r.claimed_by is None and r.lease_until is None for r in rows)
            assert sorted(r.attempts for r in rows) == [0] * (BACKLOG - 1) + [1]  # only the cut-off post counts
        finally:
            await db.dispose()

        # A second worker (another replica, or the next start) takes them at once: no lease to wait for.
        fake.hang.clear()
        again = await start_bot(config, clock, environ)
        try:
            assert await Bot(again, clock, config).runtime.outbox.run_once() == BACKLOG
            texts = [p.content for p in fake.webhook_posts(robot_key(0))]
            assert texts == ["通知0", *(f"通知{n}" for n in range(BACKLOG))]  # the cut-off one, once more
        finally:
            await again.close()
        print(f"\nshutdown (app): claims released after {released_after * 1000:.0f} ms, "
              f"stopped after {stopped_after:.2f} s with a bound of {BOUND:g} s")
    finally:
        await fake.close()


# -- a real process and SIGTERM --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


async def until_answering(port: int, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert process.returncode is None, tail(log)
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    await response.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)  # a real process starting
    raise AssertionError("dutybot serve did not start\n" + tail(log))


async def claimed_rows(db: Database) -> list[OutboxMessage]:
    return [r for r in await outbox_rows(db) if r.status == outbox.CLAIMED]


async def test_sigterm_stops_serve_within_the_bound_and_a_second_worker_sends_at_once(
    db_url: str, tmp_path: Path
) -> None:
    robots = 3
    path = write_config_file(tmp_path / "dutybot.toml", EXAMPLE_CONFIG, robots=robots, delivery={
        "timeout_seconds": 30, "lease_seconds": 120, "tick_seconds": 0.2, "shutdown_seconds": BOUND,
    })
    config = load_config(path).with_database(db_url)
    db = Database(db_url)
    await db.upgrade()
    log = tmp_path / "serve.log"
    async with ChaosRobot(SystemClock().now, seed=13, faults=Faults(stall=1.0), limit=None) as robot:
        plan = await seed_reminders(db, spread(chat_ids(robots), 12, datetime.now(UTC), timedelta(seconds=0.5)))
        port = free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("DUTYBOT_")},
               **robot.environ(config), "PYTHONPATH": str(ROOT)}
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", "serve", "--config", str(path), "--port", str(port),
                "--database", db_url, stdout=sink, stderr=sink, env=env, cwd=ROOT,
            )
        try:
            await until_answering(port, process, log)
            # Wait until every robot is stalling a post and the rest of the backlog is claimed.
            deadline = time.monotonic() + 30
            while len({r.robot for r in robot.received}) < robots or len(await claimed_rows(db)) < len(plan):
                assert time.monotonic() < deadline, tail(log)
                await asyncio.sleep(0.05)  # a real process claiming and posting
            stalled = len(robot.received)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), BOUND + SLACK + 5)
            stopped_after = time.monotonic() - started
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        output = tail(log)
        assert process.returncode == 0, output
        assert stopped_after <= BOUND + SLACK, (stopped_after, output)
        assert "正在停止" in output
        assert await claimed_rows(db) == []
        rows = await reminder_rows(db)
        assert all(r.status == outbox.PENDING and r.claimed_by is None and r.lease_until is None
                   for r in rows.values()), {n: (r.status, r.claimed_by) for n, r in rows.items()}

        # The robots answer again; a second worker sends every reminder at once, none twice.
        robot.faults = Faults()
        clock = ManualClock(datetime.now(UTC))  # no time passes: a lease would still be running
        client = await start_bot(config, clock, robot.environ(config))
        try:
            sent = await Bot(client, clock, config).runtime.outbox.run_once()
        finally:
            await client.close()
        assert sent == len(plan)
        assert dict(delivered(robot.received)) == {n: 1 for n in plan}
        print(f"\nshutdown (serve, {db_url.split(':')[0]}): SIGTERM to exit {stopped_after:.2f} s with a bound of "
              f"{BOUND:g} s, {stalled} stalled post(s) cut off, {len(plan)} claims released and sent at once")
    await db.dispose()
