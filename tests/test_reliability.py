"""Reliability of the deadline/outbox engine under faults, replicas, downtime and rate limits.

Every test here drives time with the ManualClock and the jobs by hand (`run_once`), like the
scheduler would every `tick_seconds`; the robots are a seeded `ChaosRobot` on loopback. The only
wall-clock waits are real HTTP round trips and the client timeout of the injected stalls.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.clock import ManualClock
from bot.outbox import OutboxWorker
from bot.runtime import RUNTIME, Runtime
from domain.config import Config
from store import outbox
from tests.conftest import START, start_bot
from tests.replica_support import (
    LIMIT,
    ChaosRobot,
    Faults,
    Outcome,
    Received,
    Seed,
    busiest_window,
    chat_ids,
    delivered,
    lost_answers,
    next_activity,
    reliability_config,
    reminder_rows,
    seed_reminders,
    spread,
    statuses,
    unexplained_duplicates,
)

TICK = timedelta(seconds=1)


@dataclass
class Replica:
    client: TestClient[web.Request, web.Application]

    @property
    def runtime(self) -> Runtime:
        return self.client.app[RUNTIME]  # type: ignore[index]


@asynccontextmanager
async def replicas(config: Config, clock: ManualClock, environ: dict[str, str], count: int = 1
                   ) -> AsyncIterator[list[Replica]]:
    """`count` bots (own database engine, HTTP client, worker id each) on one database and one clock."""
    started: list[Replica] = []
    try:
        for _ in range(count):
            started.append(Replica(await start_bot(config, clock, environ)))
        for n, replica in enumerate(started):
            replica.runtime.outbox._rng = random.Random(n)  # the backoff jitter, seeded
        yield started
    finally:
        for replica in started:
            await replica.client.close()


def extra_workers(runtime: Runtime, count: int) -> list[OutboxWorker]:
    """More outbox workers in the same process (as replicas would run), sharing the runtime's senders."""
    base = runtime.outbox
    workers = []
    for n in range(count):
        worker = OutboxWorker(
            db=runtime.db, clock=runtime.clock, directory=runtime.directory, senders=base.senders,
            worker_id=f"{base.worker_id}+{n}", metrics=runtime.metrics, webhook_envs=base.webhook_envs,
            lease=base.lease, rate_limit=base.rate_limit, rate_window=base.rate_window, digest_after=base.digest_after,
        )
        worker._rng = random.Random(100 + n)
        workers.append(worker)
    return workers


async def drive(
    clock: ManualClock, runtime: Runtime, workers: Sequence[OutboxWorker], *, done: Callable[[], Awaitable[bool]],
    limit: timedelta,
) -> int:
    """Tick every second: sweep the clocks, then let every worker run once (concurrently, like
    replicas). Ticks with nothing due are skipped (they would change nothing). Stops when `done`,
    or when nothing more would happen within `limit` (the test's assertions then say what is
    missing). Returns the ticks run."""
    start = clock.now()
    ticks = 0
    while True:
        await runtime.deadlines.run_once()
        await asyncio.gather(*(worker.run_once() for worker in workers))
        ticks += 1
        if await done():
            return ticks
        upcoming = await next_activity(runtime.db)
        if upcoming is None or upcoming - start > limit:
            return ticks
        step = TICK
        if upcoming > clock.now() + TICK:
            step = TICK * -((clock.now() - upcoming) // TICK)  # the first tick at or after it
        clock.advance(step)


def assert_each_once(robot: ChaosRobot, plan: Iterable[int]) -> None:
    """Every planned reminder reached its robot (alone or in a digest), and none twice — except
    where an answer was lost after the robot accepted (none injected here; a machine too slow for
    the client timeout would show up as LOST_LATE, and may do so only rarely)."""
    counts = delivered(robot.received)
    expected = set(plan)
    missing, extra = sorted(expected - set(counts)), sorted(set(counts) - expected)
    assert not missing and not extra, f"missing {missing[:20]}, extra {extra[:20]}"
    assert unexplained_duplicates(robot.received) == {}
    outcomes = robot.outcomes()
    assert outcomes[Outcome.LOST_STALL] + outcomes[Outcome.LOST_DROP] == 0
    assert outcomes[Outcome.LOST_LATE] <= 3, outcomes


def at_user_ids(config: Config, people: Sequence[str]) -> set[str]:
    by_id = {p.id: p for p in config.people}
    return {by_id[p].dingtalk_userid or p for p in people}


def wecom_user_ids(config: Config, people: Sequence[str]) -> set[str]:
    by_id = {p.id: p for p in config.people}
    return {by_id[p].wecom_userid or p for p in people}


async def check_digests(config: Config, runtime: Runtime, posts: Sequence[Received], platform: str) -> int:
    """Every accepted digest names its items once each and mentions exactly the union of their mentions."""
    rows = await reminder_rows(runtime.db)
    resolve = at_user_ids if platform == "dingtalk" else wecom_user_ids
    digests = 0
    for post in posts:
        numbers = post.numbers
        if not post.accepted or not post.text.startswith("【汇总】"):
            continue
        digests += 1
        assert len(numbers) == len(set(numbers)) >= 2, post.text
        assert all(rows[n].status == "merged" for n in numbers)
        union = resolve(config, [p for n in numbers for p in rows[n].mentions])
        assert set(post.mentions) == union, (post.text, post.mentions)
    return digests


# -- the fault soak ------------------------------------------------------------------------------------------------


# SQLite only: the PostgreSQL path of the same workers is covered by the lost-answer test below and
# the replica tests; running both would double the suite's slowest test.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_fault_soak_1000_reminders_over_10_robots_arrive_exactly_once(
    config: Config, clock: ManualClock
) -> None:
    # The robot runs in the bot's own event loop: a pause of the loop longer than the client's
    # timeout (a busy CI machine) turns answers already given into timeouts, and so into copies the
    # fake cannot tell from real ones. 0.2 s was too tight there (11 such copies at once in one run).
    config = reliability_config(config, timeout_seconds=0.5)
    faults = Faults(http_500=0.30, stall=0.10, throttled=0.05)
    async with ChaosRobot(clock.now, seed=20261123, faults=faults) as robot, \
            replicas(config, clock, robot.environ(config)) as [bot]:
        runtime = bot.runtime
        plan = await seed_reminders(runtime.db, spread(chat_ids(10), 1000, START, timedelta(minutes=3), seed=7))
        workers = [runtime.outbox, *extra_workers(runtime, 3)]

        async def done() -> bool:
            counts = await statuses(runtime.db)
            return len(delivered(robot.received)) == len(plan) and not counts["pending"] + counts["claimed"]

        await drive(clock, runtime, workers, done=done, limit=timedelta(hours=2))

        assert_each_once(robot, plan)
        outcomes = robot.outcomes()
        assert outcomes[Outcome.HTTP_500] and outcomes[Outcome.STALL] and outcomes[Outcome.THROTTLED], outcomes
        assert outcomes[Outcome.OVER_LIMIT] == 0 and outcomes[Outcome.REJECTED] == 0, robot.problems
        assert robot.problems == []
        for chat in chat_ids(10):
            env = config.chats[[c.id for c in config.chats].index(chat)].webhook_env
            assert busiest_window([r.at for r in robot.received if r.robot == env]) <= LIMIT
        rows = await reminder_rows(runtime.db)
        assert {row.status for row in rows.values()} <= {"sent", "merged"}
        assert await check_digests(config, runtime, robot.received, "dingtalk") > 0
        assert (await statuses(runtime.db))["failed"] == 0


# -- accepted, then the answer was lost ----------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_duplicates_come_only_from_answers_lost_after_acceptance(config: Config, clock: ManualClock) -> None:
    config = reliability_config(config, timeout_seconds=0.2)
    faults = Faults(http_500=0.10, lost_stall=0.05, lost_drop=0.05)
    async with ChaosRobot(clock.now, seed=4242, faults=faults) as robot, \
            replicas(config, clock, robot.environ(config)) as [bot]:
        runtime = bot.runtime
        plan = await seed_reminders(runtime.db, spread(chat_ids(10), 300, START, timedelta(minutes=5), seed=3))

        async def done() -> bool:
            counts = await statuses(runtime.db)
            return len(delivered(robot.received)) == len(plan) and not counts["pending"] + counts["claimed"]

        await drive(clock, runtime, [runtime.outbox, *extra_workers(runtime, 3)], done=done,
                    limit=timedelta(hours=2))

        counts, lost = delivered(robot.received), lost_answers(robot.received)
        outcomes = robot.outcomes()
        assert outcomes[Outcome.LOST_STALL] and outcomes[Outcome.LOST_DROP], outcomes
        assert set(counts) == set(plan)
        # Each lost answer makes exactly one extra copy of what it carried; nothing else is repeated.
        assert {n: c - 1 for n, c in counts.items() if c > 1} == dict(lost)
        assert unexplained_duplicates(robot.received) == {}
        assert sum(lost.values()) >= outcomes[Outcome.LOST_STALL] + outcomes[Outcome.LOST_DROP]
        assert robot.problems == []


# -- three replicas ------------------------------------------------------------------------------------------------


async def test_three_replicas_ticking_every_second_send_each_of_500_reminders_once(
    config: Config, clock: ManualClock
) -> None:
    config = reliability_config(config, timeout_seconds=0.5)
    async with ChaosRobot(clock.now, seed=3, faults=Faults(http_500=0.10)) as robot, \
            replicas(config, clock, robot.environ(config), count=3) as bots:
        db = bots[0].runtime.db
        plan = await seed_reminders(db, spread(chat_ids(10), 500, START, timedelta(minutes=8), seed=11))
        for tick in range(600):  # 10 simulated minutes, every replica sweeping and delivering each second
            # Replicas are separate processes whose ticks fall in any order: rotate who goes first.
            # (On SQLite a claim never yields to the loop, so the first one here takes what is due.)
            order = bots[tick % 3:] + bots[: tick % 3]
            await asyncio.gather(*(b.runtime.deadlines.run_once() for b in order))
            await asyncio.gather(*(b.runtime.outbox.run_once() for b in order))
            clock.advance(TICK)

        assert_each_once(robot, plan)
        assert robot.outcomes()[Outcome.OVER_LIMIT] == 0 and robot.problems == []
        rows = await reminder_rows(db)
        assert len(rows) == len(plan) and {r.status for r in rows.values()} <= {"sent", "merged"}
        senders = Counter((r.claimed_by or "").rsplit("#", 1)[0] for r in rows.values() if r.status == "sent")
        assert len(senders) == 3, senders  # the work really was shared


# -- restart after downtime ----------------------------------------------------------------------------------------


async def test_restart_after_five_minutes_down_sends_50_due_reminders_late_within_a_minute(
    config: Config, clock: ManualClock
) -> None:
    config = reliability_config(config, robots=4)
    async with ChaosRobot(clock.now, seed=5) as robot:
        environ = robot.environ(config)
        async with replicas(config, clock, environ) as [bot]:
            # 35 reminders for one robot (over its budget: a digest) and 15 for three others, all due
            # while the bot is down.
            seeds = spread(["rel00"], 35, START + timedelta(seconds=30), timedelta(minutes=3), seed=1)
            seeds += spread(["rel01", "rel02", "rel03"], 15, START + timedelta(seconds=30), timedelta(minutes=3))
            plan = await seed_reminders(bot.runtime.db, seeds)
            await bot.runtime.deadlines.run_once()
            await bot.runtime.outbox.run_once()
        assert robot.received == []
        clock.advance(timedelta(minutes=5))  # down
        restarted = clock.now()
        async with replicas(config, clock, environ) as [bot]:
            # The robot's budget frees up one window after the first posts: 60 s plus the 2 s the
            # worker counts on top for skew between the platform's clocks and ours ([delivery]
            # rate_skew_seconds), so the digest of what waited goes out at +62 s.
            window = timedelta(seconds=config.delivery.rate_window_seconds + config.delivery.rate_skew_seconds)
            for _ in range(int(window / TICK) + 1):  # ticks at +0 s … +62 s
                await bot.runtime.deadlines.run_once()
                await bot.runtime.outbox.run_once()
                clock.advance(TICK)
            assert_each_once(robot, plan)
            assert all(r.at - restarted <= window for r in robot.received)
            for post in robot.accepted:
                lines = [line for line in post.text.split("\n") if line.startswith("· ")] or [post.text]
                assert all("补发" in line for line in lines), post.text
            rows = await reminder_rows(bot.runtime.db)
            assert all(row.late for row in rows.values())
            assert await check_digests(config, bot.runtime, robot.received, "dingtalk") >= 1


# -- the rate limit and the digest ---------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["dingtalk", "wecom"])
async def test_200_notices_to_one_robot_never_exceed_20_in_any_minute(
    config: Config, clock: ManualClock, platform: str
) -> None:
    config = reliability_config(config, platform=platform, robots=1)
    async with ChaosRobot(clock.now, seed=9) as robot, replicas(config, clock, robot.environ(config)) as [bot]:
        runtime = bot.runtime
        plan = await seed_reminders(runtime.db, spread(["rel00"], 200, START, timedelta(minutes=4), seed=2))

        async def done() -> bool:
            counts = await statuses(runtime.db)
            return not counts["pending"] + counts["claimed"] and len(delivered(robot.received)) == len(plan)

        await drive(clock, runtime, [runtime.outbox], done=done, limit=timedelta(hours=1))
        times = [r.at for r in robot.received]
        assert busiest_window(times) <= LIMIT, busiest_window(times)
        assert robot.outcomes()[Outcome.OVER_LIMIT] == 0 and robot.problems == []
        assert_each_once(robot, plan)
        assert await check_digests(config, runtime, robot.received, platform) >= 1
        rows = await reminder_rows(runtime.db)
        # Waiting for the budget is not a failed attempt (attempts drive the retry backoff).
        assert {r.attempts for r in rows.values() if r.status == "sent"} == {1}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_message_split_in_parts_takes_one_slot_per_part(config: Config, clock: ManualClock) -> None:
    config = reliability_config(config, platform="wecom", robots=1)
    async with ChaosRobot(clock.now, seed=2) as robot, replicas(config, clock, robot.environ(config)) as [bot]:
        runtime = bot.runtime
        async with runtime.db.transaction() as session:
            for n in range(10):  # each about 5,000 bytes: three posts of WeCom text (2,048 bytes)
                text = "\n".join(f"通知{n}-第{k:02d}行：城关镇人民路商户反映占道经营问题，请核实。" for k in range(60))
                await outbox.enqueue(session, key=f"long:{n}", chat_id="rel00", text=text, mentions=["zhao_min"],
                                     now=clock.now())
        for _ in range(181):
            await runtime.outbox.run_once()
            clock.advance(TICK)
        accepted = robot.accepted
        assert len(accepted) == 30 and robot.problems == []
        assert busiest_window([r.at for r in robot.received]) <= LIMIT
        lines = Counter(line for post in accepted for line in post.text.split("\n") if line.startswith("通知"))
        assert len(lines) == 600 and set(lines.values()) == {1}


@pytest.mark.parametrize("platform", ["dingtalk", "wecom"])
async def test_a_backlog_over_digest_after_is_sent_as_a_digest_with_every_item_and_mention(
    config: Config, clock: ManualClock, platform: str
) -> None:
    config = reliability_config(config, platform=platform, robots=1)
    async with ChaosRobot(clock.now, seed=1) as robot, replicas(config, clock, robot.environ(config)) as [bot]:
        runtime = bot.runtime
        seeds = [Seed("rel00", START, reporter) for reporter in
                 ["liu_yang", "wang_jun", "li_hua", "chen_gang", "zhou_tao", "wu_fang"] * 6]
        plan = await seed_reminders(runtime.db, seeds)
        await runtime.deadlines.run_once()
        await runtime.outbox.run_once()  # 20 go out, the rest wait for the budget and are folded
        assert len(robot.accepted) == LIMIT
        # One window later (60 s plus the skew allowance) the budget frees up.
        clock.advance(timedelta(seconds=config.delivery.rate_window_seconds + config.delivery.rate_skew_seconds))
        while await runtime.outbox.run_once():
            pass
        digests = [p for p in robot.accepted if p.text.startswith("【汇总】")]
        assert digests, [p.text[:30] for p in robot.accepted]
        assert sorted(n for p in digests for n in p.numbers) == sorted(set(plan) - {
            n for p in robot.accepted if not p.text.startswith("【汇总】") for n in p.numbers})
        assert await check_digests(config, runtime, robot.received, platform) == len(digests)
        assert_each_once(robot, plan)


# -- a worker that outlives its lease ------------------------------------------------------------------------------


@dataclass
class SlowSender:
    """A sender whose first post hangs past the lease while another run takes the claims over; every
    post yields to the event loop, so the two runs interleave row by row."""

    channel_id: str
    posted: list[str]
    during_first: Callable[[], Awaitable[None]] | None = None
    second_post: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, chat: object, message: object) -> object:
        from bot.channels.base import DeliveryResult

        self.posted.append(str(getattr(message, "key", None)))
        if len(self.posted) > 1:
            self.second_post.set()
        hook, self.during_first = self.during_first, None
        if hook is not None:
            await hook()
        for _ in range(5):
            await asyncio.sleep(0)  # a network round trip, as far as the event loop is concerned
        return DeliveryResult(ok=True, detail="errcode 0")


@pytest.mark.parametrize("taker", ["another replica", "the same process (a kick)"])
async def test_a_worker_does_not_send_rows_taken_over_after_its_lease_ran_out(
    config: Config, clock: ManualClock, taker: str
) -> None:
    from domain.directory import Directory
    from store.db import Database

    db = Database(config.database.url)
    await db.upgrade()
    try:
        async with db.transaction() as session:
            for n in range(5):
                await outbox.enqueue(session, key=f"lease:{n}", chat_id="wecom_duty", text=f"通知{n}", mentions=[],
                                     now=clock.now())
        posted: list[str] = []
        sender = SlowSender("wecom", posted)
        directory = Directory(config)
        lease = timedelta(seconds=30)
        slow = OutboxWorker(db=db, clock=clock, directory=directory, senders={"wecom_duty": sender},
                            worker_id="slow", lease=lease)
        other = OutboxWorker(db=db, clock=clock, directory=directory, senders={"wecom_duty": sender},
                             worker_id="other", lease=lease) if taker == "another replica" else slow
        taking: list[asyncio.Task[int]] = []

        async def take_over() -> None:
            clock.advance(lease + TICK)  # the first post hangs past the lease…
            taking.append(asyncio.create_task(other.run_once()))  # …and another run claims everything
            await sender.second_post.wait()  # the taker is sending

        sender.during_first = take_over
        await slow.run_once()
        await asyncio.gather(*taking)
        # The post in flight when the lease ran out goes twice (unavoidable); nothing else does.
        assert Counter(posted) == {"lease:0": 2, "lease:1": 1, "lease:2": 1, "lease:3": 1, "lease:4": 1}
    finally:
        await db.dispose()
