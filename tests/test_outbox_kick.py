"""The intake API's kicks of the outbox (OutboxWorker.kick_soon): the first runs at once, the ones
that follow within KICK_GAP_SECONDS make a single later run, and drain() waits for it — so a push
of hundreds of creates a second makes a few claims a second, not one per group commit, and every
announcement still goes out within the gap. Through a real worker on the test's database."""

from __future__ import annotations

import asyncio

import pytest

from bot import outbox as outbox_module
from bot.outbox import OutboxWorker
from bot.runtime import RUNTIME
from tests.conftest import Bot

GAP = 0.05  # shortened for the test: the behaviour, not the production value, is under test


@pytest.fixture
def worker(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> tuple[OutboxWorker, list[float]]:
    monkeypatch.setattr(outbox_module, "KICK_GAP_SECONDS", GAP)
    real: OutboxWorker = bot.client.app[RUNTIME].outbox  # type: ignore[index]
    runs: list[float] = []
    run_due = real.run_due

    async def counted() -> int:
        runs.append(asyncio.get_running_loop().time())
        return await run_due()

    monkeypatch.setattr(real, "run_due", counted)
    return real, runs


async def test_the_first_kick_runs_at_once_and_a_burst_makes_one_later_run(
        worker: tuple[OutboxWorker, list[float]]) -> None:
    outbox, runs = worker
    started = asyncio.get_running_loop().time()
    for _ in range(50):
        outbox.kick_soon()
    await asyncio.sleep(0)
    assert len(runs) == 1  # the first, at once
    await outbox.drain()  # waits for the delayed run too
    assert len(runs) == 2
    assert runs[1] - started >= GAP * 0.9


async def test_kicks_a_gap_apart_each_run_at_once(worker: tuple[OutboxWorker, list[float]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "KICK_GAP_SECONDS", 0.0)  # every kick is a gap after the last
    outbox, runs = worker
    for expected in (1, 2, 3):
        outbox.kick_soon()
        await asyncio.sleep(0)
        assert len(runs) == expected  # at once, none delayed
        await outbox.drain()
    assert len(runs) == 3


async def test_no_kick_while_stopping(worker: tuple[OutboxWorker, list[float]]) -> None:
    outbox, runs = worker
    outbox.begin_stop(bound=1.0)
    outbox.kick_soon()
    await outbox.drain()
    assert runs == []
