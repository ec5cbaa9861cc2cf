"""The deadline sweep end to end: reminders, escalation, stop re-checks, idempotency, downtime."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.deadlines import DeadlineSweep
from store.models import OutboxMessage
from tests.conftest import Bot

REPORT = "上报 城关镇人民路发生火灾，网传多人受伤"
REMINDER_KEYS = select(OutboxMessage.key).where(OutboxMessage.clock.is_not(None))


async def tick(bot: Bot) -> None:
    """One scheduler round, driven by the test: sweep the clocks, then deliver."""
    await bot.runtime.deadlines.run_once()
    while await bot.runtime.outbox.run_once():
        pass


async def bot_posts(bot: Bot, chat: str = "wecom_duty", after: int = 0) -> list[dict[str, Any]]:
    return [m for m in await bot.messages(chat, after) if m["from"] == "bot"]


async def last_seq(bot: Bot, chat: str = "wecom_duty") -> int:
    messages = await bot.messages(chat)
    return int(messages[-1]["seq"]) if messages else 0


async def major_item(bot: Bot) -> int:
    await bot.say("liu_yang", REPORT)
    bot.clock.advance(timedelta(minutes=5))
    await bot.say("zhao_min", "1")
    return await last_seq(bot)


async def test_pass_on_reminder_and_escalation(bot: Bot) -> None:
    seq = await major_item(bot)  # reported 10:00, 重大: pass-on due 10:30
    bot.clock.advance(timedelta(minutes=10))  # 10:15, half-way
    await tick(bot)
    [half] = await bot_posts(bot, after=seq)
    assert half["text"].startswith("【提醒】#1 重大｜签收时限 11月23日 10:30（剩余15分钟）")
    assert half["mentions"] == ["yang_fan", "zhao_min"]  # the liaison who must 签收, and the duty officer

    seq = await last_seq(bot)
    bot.clock.advance(timedelta(minutes=15))  # 10:30: 80 % (10:24) and the deadline
    await tick(bot)
    eighty, overdue = await bot_posts(bot, after=seq)
    assert eighty["text"].startswith("【提醒】#1 重大｜签收时限")
    assert overdue["text"].startswith("【超时催办】第1次 #1 重大｜签收已到时限（时限 11月23日 10:30）")
    # An overdue 重大 item chases the 带班领导 on duty too (001 第九条).
    assert overdue["mentions"] == ["yang_fan", "han_mei", "zhao_min", "li_hua"]

    seq = await last_seq(bot)
    bot.clock.advance(timedelta(minutes=30))  # 11:00, first repeat: the principal is added
    await tick(bot)
    [repeat] = await bot_posts(bot, after=seq)
    assert repeat["text"].startswith("【超时催办】第2次 #1 重大｜签收已超时30分钟")
    assert "shen_hao" in repeat["mentions"]
    assert await bot_posts(bot, "coordinators") == [] or all(
        "超时" not in m["text"] for m in await bot_posts(bot, "coordinators")
    )

    bot.clock.advance(timedelta(minutes=60))  # 12:00, second repeat (the interval doubles): copy to the coordinators
    await tick(bot)
    copies = [m for m in await bot_posts(bot, "coordinators") if "【超时催办】第3次" in m["text"]]
    assert len(copies) == 1


async def test_acknowledging_stops_the_pass_on_reminders(bot: Bot) -> None:
    seq = await major_item(bot)
    await bot.say("yang_fan", "签收 #1")
    seq = await last_seq(bot)
    bot.clock.advance(timedelta(hours=2))
    await tick(bot)
    assert [m for m in await bot_posts(bot, after=seq) if "｜签收" in m["text"]] == []


async def test_reminder_queued_then_clock_stopped_is_not_sent(bot: Bot) -> None:
    await major_item(bot)
    bot.clock.advance(timedelta(minutes=10))
    await bot.runtime.deadlines.run_once()  # queued, not yet delivered
    async with bot.runtime.db.transaction() as session:
        from store import items as item_store

        item = await item_store.by_number(session, 1)
        assert item is not None
        item.acknowledged_at = bot.clock.now()  # the unit acknowledged in the meantime
    seq = await last_seq(bot)
    assert await bot.runtime.outbox.run_once() == 1
    assert await bot_posts(bot, after=seq) == []
    async with bot.runtime.db.read() as session:
        rows = list((await session.execute(select(OutboxMessage).where(OutboxMessage.clock.is_not(None)))).scalars())
    assert [r.status for r in rows] == ["cancelled"]


async def test_any_number_of_sweeps_queue_each_reminder_once(bot: Bot) -> None:
    await major_item(bot)
    bot.clock.advance(timedelta(minutes=31))
    runtime = bot.runtime
    other = DeadlineSweep(db=runtime.db, clock=runtime.clock, config=runtime.config,
                          directory=runtime.directory, duty=runtime.duty)
    for _ in range(5):
        await runtime.deadlines.run_once()
        await other.run_once()
    async with runtime.db.read() as session:
        keys = list((await session.execute(REMINDER_KEYS)).scalars())
    assert len(keys) == len(set(keys)) == 3  # pass-on 50 %, 80 %, overdue
    # A reset of the sweep position (as if another replica had not seen the update) changes nothing.
    async with runtime.db.transaction() as session:
        from store.models import Item

        item = (await session.execute(select(Item))).scalar_one()
        item.reminded_until = item.reported_at
        item.next_reminder_at = item.reported_at
    await runtime.deadlines.run_once()
    async with runtime.db.read() as session:
        again = list((await session.execute(REMINDER_KEYS)).scalars())
    assert sorted(again) == sorted(keys)


async def test_after_downtime_missed_reminders_are_sent_once_late_and_in_order(bot: Bot) -> None:
    seq = await major_item(bot)
    bot.clock.advance(timedelta(hours=2))  # the bot was down: nothing swept since 10:05
    await tick(bot)
    posts = await bot_posts(bot, after=seq)
    texts = [m["text"] for m in posts]
    # 50 %, 80 %, overdue, repeats at 11:00 and 12:00 (the example's 重大 interval doubles from 30 min)
    assert len(texts) == 5
    assert all("（补发：原定" in t for t in texts)
    assert texts[0].startswith("【提醒】") and texts[2].startswith("【超时催办】第1次 ")
    assert texts[3].startswith("【超时催办】第2次 ") and texts[4].startswith("【超时催办】第3次 ")
    await tick(bot)
    assert len(await bot_posts(bot, after=seq)) == 5


async def test_ungraded_item_chases_the_duty_officer_and_reporter(bot: Bot) -> None:
    await bot.say("liu_yang", REPORT)
    seq = await last_seq(bot)
    bot.clock.advance(timedelta(minutes=15))
    await tick(bot)
    overdue = [m for m in await bot_posts(bot, after=seq) if m["text"].startswith("【超时催办】第1次 ")]
    assert len(overdue) == 1 and "定级已到时限" in overdue[0]["text"]
    assert overdue[0]["mentions"] == ["zhao_min", "liu_yang"]


async def test_general_reminders_wait_for_the_morning(bot: Bot) -> None:
    bot.clock.advance(timedelta(hours=4))  # 14:00 local
    await bot.say("liu_yang", "上报 西岸滨河路路灯不亮")
    await bot.say("zhao_min", "3")  # 一般: pass-on 24 h → half-way at 02:00, held until 07:30
    seq = await last_seq(bot)
    bot.clock.advance(timedelta(hours=12, minutes=30))  # 02:30 local
    await tick(bot)
    assert await bot_posts(bot, after=seq) == []
    bot.clock.advance(timedelta(hours=5))  # 07:30 local
    await tick(bot)
    [held] = await bot_posts(bot, after=seq)
    assert held["text"].startswith("【提醒】#1 一般｜签收时限 11月24日 14:00")


async def test_metrics_and_health(bot: Bot) -> None:
    await major_item(bot)
    bot.clock.advance(timedelta(minutes=10))
    await tick(bot)
    body = await (await bot.client.get("/metrics")).text()
    assert 'dutybot_deliveries_total{outcome="sent"}' in body
    assert "dutybot_reminder_lateness_seconds_count 1.0" in body
    assert "dutybot_outbox_depth 0.0" in body
    assert "dutybot_deadline_sweeps_total" in body
    health = await bot.client.get("/healthz")
    payload = await health.json()
    assert payload["database"] is True and payload["outbox_ok"] is True
    assert health.status == 503 and payload["scheduler"] is False  # this test drives the jobs itself


async def test_sent_reminders_are_in_the_audit_trail(bot: Bot) -> None:
    await major_item(bot)
    bot.clock.advance(timedelta(minutes=31))
    await tick(bot)
    reply = await bot.say("zhao_min", "查询 #1")
    assert "舆情值班助手 发送通知 【提醒】#1 重大｜签收时限" in reply["text"]
    assert "发送通知 【超时催办】第1次 #1 重大｜签收" in reply["text"]
