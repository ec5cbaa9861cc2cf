"""The scheduler's timing: the deadline timer between ticks, single-flight sweeps and drains,
and a stop that waits for running jobs. The clock is a ManualClock; timers are inspected and
fired by hand, never waited for."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.scheduler import REARM_FLOOR, build_scheduler
from store.models import Item
from tests.conftest import Bot
from tests.test_deadlines import bot_posts, last_seq, major_item


async def _next_point(bot: Bot) -> timedelta:
    """How far the item's next reminder point is, after a sweep has settled what is owed now."""
    await bot.runtime.deadlines.run_once()
    return await _stored_next_point(bot)


async def _stored_next_point(bot: Bot) -> timedelta:
    async with bot.runtime.db.read() as session:
        due = (await session.execute(select(Item.next_reminder_at))).scalar_one()
    assert due is not None
    return due - bot.clock.now()


async def test_the_timer_is_armed_for_a_point_before_the_next_tick_and_delivers_it(bot: Bot) -> None:
    seq = await major_item(bot)  # 重大 reported 10:00, graded 10:05: the pass-on 50 % point is 10:15
    jobs = build_scheduler(bot.runtime)
    timer = jobs.timer
    bot.clock.advance(await _next_point(bot) - timedelta(seconds=0.4))  # 0.4 s before the point

    await timer.run()
    assert timer._timer is not None and timer._armed_for == bot.clock.now() + timedelta(seconds=0.4)
    assert await bot_posts(bot, after=seq) == []  # not yet due

    bot.clock.advance(timedelta(seconds=0.4))
    handle, timer._timer = timer._timer, None  # fire it by hand rather than wait for it
    handle.cancel()
    timer._fire()
    await asyncio.gather(*timer.tasks())
    await bot.runtime.outbox.drain()  # the sweep handed its reminder straight to the outbox
    [reminder] = await bot_posts(bot, after=seq)
    assert reminder["text"].startswith("【提醒】#1 重大｜签收时限")
    await jobs.stop()


async def test_no_timer_when_the_tick_comes_first(bot: Bot) -> None:
    await major_item(bot)
    jobs = build_scheduler(bot.runtime)
    await jobs.timer.run()  # the next point is minutes away; the 1-second tick takes it
    assert jobs.timer._timer is None
    await jobs.stop()


async def test_a_point_that_fell_due_during_a_sweep_is_swept_again_soon(bot: Bot) -> None:
    await major_item(bot)
    timer = build_scheduler(bot.runtime).timer
    bot.clock.advance(await _next_point(bot) + timedelta(seconds=1))  # already due
    timer._arm(bot.clock.now() - timedelta(seconds=1))
    assert timer._timer is not None
    loop = asyncio.get_running_loop()
    assert timer._timer.when() - loop.time() <= REARM_FLOOR  # at once, but never a busy loop
    timer.stop()
    timer._arm(bot.clock.now())
    assert timer._timer is None  # stopped: no more timed sweeps


async def test_a_sweep_asked_for_while_one_runs_goes_round_again(bot: Bot) -> None:
    seq = await major_item(bot)
    timer = build_scheduler(bot.runtime).timer
    sweep = bot.runtime.deadlines
    rounds = 0
    real = sweep.run_once

    async def first_round_then_advance() -> int:
        nonlocal rounds
        rounds += 1
        queued = await real()
        if rounds == 1:
            # While this sweep runs, the tick fires and the clock reaches the 50 % point.
            bot.clock.advance(await _stored_next_point(bot))
            await timer.run()  # returns at once: it only asks for another round
        return queued

    sweep.run_once = first_round_then_advance  # type: ignore[method-assign]
    await timer.run()
    await bot.runtime.outbox.drain()
    assert rounds == 2
    assert len([m for m in await bot_posts(bot, after=seq) if m["text"].startswith("【提醒】#1")]) == 1
    timer.stop()


async def test_one_drain_at_a_time_and_a_second_call_extends_it(bot: Bot) -> None:
    outbox = bot.runtime.outbox
    started = asyncio.Event()
    release = asyncio.Event()
    calls = 0
    real = outbox.run_once

    async def slow_once() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            started.set()
            await release.wait()
        return await real()

    outbox.run_once = slow_once  # type: ignore[method-assign]
    first = asyncio.create_task(outbox.run_due())
    await started.wait()
    assert await outbox.run_due() == 0  # the tick while a drain runs: no second drain
    release.set()
    await first
    assert calls == 2  # …but the running drain went round once more for it


async def test_stop_waits_for_a_running_job(bot: Bot) -> None:
    await major_item(bot)
    seq = await last_seq(bot)
    jobs = build_scheduler(bot.runtime)
    jobs.start()
    bot.clock.advance(timedelta(minutes=10))  # the 50 % point
    gate = asyncio.Event()
    real = bot.runtime.deadlines.run_once
    finished = False

    async def gated() -> int:
        nonlocal finished
        gate.set()
        queued = await real()
        finished = True
        return queued

    bot.runtime.deadlines.run_once = gated  # type: ignore[method-assign]
    await asyncio.wait_for(gate.wait(), timeout=30)  # the scheduler's first tick has started a sweep
    await jobs.stop()
    assert finished  # not cancelled half-way by APScheduler's shutdown
    await bot.runtime.outbox.drain()
    assert any(m["text"].startswith("【提醒】#1") for m in await bot_posts(bot, after=seq))
