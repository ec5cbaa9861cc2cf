"""Nothing is lost across a restart: a new app on the same database carries on."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import ManualClock
from domain.config import Config
from tests.conftest import Bot, start_bot


async def test_pending_question_and_items_survive_a_restart(config: Config, clock: ManualClock) -> None:
    first = await start_bot(config, clock)
    bot = Bot(first, clock, config)
    await bot.say("liu_yang", "上报 西岸滨河路井盖缺失")
    await first.close()  # the process is gone; only the database remains

    clock.advance(timedelta(minutes=5))
    second = await start_bot(config, clock)
    try:
        bot = Bot(second, clock, config)
        reply = await bot.say("zhao_min", "2")  # answers the question asked before the restart
        assert reply["text"].startswith("【舆情通报】#1 较大舆情")
        numbered = await bot.say("liu_yang", "上报 滨河路路灯不亮")
        assert numbered["text"].startswith("已受理舆情线索 #2")
        history = await bot.messages("wecom_duty")
        assert [m["from"] for m in history][:2] == ["liu_yang", "bot"]
    finally:
        await second.close()


async def test_undelivered_outbox_message_is_sent_after_restart(config: Config, clock: ManualClock) -> None:
    from store import outbox

    first = await start_bot(config, clock)
    bot = Bot(first, clock, config)
    async with bot.runtime.db.transaction() as session:
        await outbox.enqueue(session, key="test:restart", chat_id="coordinators", text="测试通知",
                             mentions=["wang_jun"], now=clock.now())
    await first.close()

    second = await start_bot(config, clock)
    try:
        bot = Bot(second, clock, config)
        assert await bot.runtime.outbox.run_once() == 1
        posted = [m for m in await bot.messages("coordinators") if m["from"] == "bot"]
        assert [m["text"] for m in posted] == ["测试通知\n@王军"]
        assert await bot.runtime.outbox.run_once() == 0
    finally:
        await second.close()


async def test_a_crashed_workers_claim_is_taken_over_after_its_lease(config: Config, clock: ManualClock) -> None:
    from store import outbox

    client = await start_bot(config, clock)
    bot = Bot(client, clock, config)
    try:
        async with bot.runtime.db.transaction() as session:
            await outbox.enqueue(session, key="test:lease", chat_id="coordinators", text="租约测试",
                                 mentions=[], now=clock.now())
            claimed = await outbox.claim(session, worker="dead-worker", now=clock.now(),
                                         lease=timedelta(minutes=2))
        assert len(claimed) == 1
        assert await bot.runtime.outbox.run_once() == 0  # still leased to the dead worker
        clock.advance(timedelta(minutes=3))
        assert await bot.runtime.outbox.run_once() == 1
        posted = [m["text"] for m in await bot.messages("coordinators") if m["from"] == "bot"]
        assert posted == ["租约测试"]
    finally:
        await client.close()
