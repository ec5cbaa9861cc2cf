"""DingTalk HTTP callback mode against the fake DingTalk, on SQLite and PostgreSQL.

The fake signs callbacks with its own HMAC code and checks every post the bot makes (sign, body,
limit, @-mentions); replies are delivered by driving the outbox, never by sleeping.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from domain.config import Config
from store.models import ChatMessage, InboundSeen, Item, ItemEvent, OutboxMessage
from tests.conftest import Bot, start_bot
from tests.fakes.dingtalk import Answer, FakeDingTalk, now_ms

MAJOR_IDS = ["dt_shenhao", "dt_hanmei", "dt_yangfan", "dt_sunli", "dt_zhoutao"]
RECORD_TABLES: list[Any] = [Item, ItemEvent, ChatMessage, OutboxMessage, InboundSeen]


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeDingTalk]:
    async with FakeDingTalk(clock) as fake:
        yield fake


@pytest.fixture
async def bot(config: Config, clock: ManualClock, fake: FakeDingTalk) -> AsyncIterator[Bot]:
    client = await start_bot(config, clock, fake.environ())
    try:
        yield Bot(client, clock, config)
    finally:
        await client.close()


async def count(bot: Bot, model: Any) -> int:
    async with bot.runtime.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def counts(bot: Bot) -> dict[str, int]:
    return {model.__tablename__: await count(bot, model) for model in RECORD_TABLES}


async def say(bot: Bot, fake: FakeDingTalk, text: str, **fields: Any) -> dict[str, Any]:
    """A genuine callback; returns the message sent. Delivery is driven by the caller."""
    message = fake.message(text, **fields)
    response = await fake.call(bot.client, message)
    assert response.status == 200, await response.text()
    assert await response.json() == {}
    return message


def session_of(message: dict[str, Any]) -> str:
    return str(message["sessionWebhook"].split("session=")[1])


# -- the conversation ------------------------------------------------------------------------------------


async def test_report_is_recorded_and_answered_on_the_session_webhook(bot: Bot, fake: FakeDingTalk) -> None:
    message = await say(bot, fake, "上报 网友在微博反映城关镇东风小区停水三天 https://weibo.com/123/abc")
    await bot.runtime.outbox.drain()
    [post] = fake.posts
    assert post.kind == "session" and post.ok and post.params["session"] == session_of(message)
    assert post.text.startswith("已受理舆情线索 #1")
    assert post.at is not None and post.at["isAtAll"] is False
    assert fake.problems == []  # every atUserIds entry is also written as @userId in the text
    async with bot.runtime.db.read() as session:
        item = (await session.execute(select(Item))).scalar_one()
        row = (await session.execute(select(OutboxMessage))).scalar_one()
    assert (item.chat_id, item.reported_by, item.source) == ("dingtalk_duty", "sun_li", "微博")
    # Answered on the sessionWebhook (the post above); once used the URL is erased (issue 13 point 8).
    assert row.status == "sent" and row.reply_url is None


async def test_grade_1_posts_the_major_notice_mentioning_the_policy_people(bot: Bot, fake: FakeDingTalk) -> None:
    await say(bot, fake, "上报 城关镇人民路发生火灾，网传多人受伤")
    await bot.runtime.outbox.drain()
    await say(bot, fake, "1")
    await bot.runtime.outbox.drain()
    notice = fake.posts_of("session")[-1]
    assert notice.ok and notice.text.startswith("【舆情通报】#1 重大舆情")
    assert notice.at is not None and notice.at["atUserIds"] == MAJOR_IDS
    assert notice.text.endswith("\n" + " ".join(f"@{uid}" for uid in MAJOR_IDS))
    assert fake.problems == []
    async with bot.runtime.db.read() as session:
        item = (await session.execute(select(Item))).scalar_one()
    assert item.grade == "重大" and item.graded_by == "sun_li"


async def test_rich_text_is_read_like_text(bot: Bot, fake: FakeDingTalk) -> None:
    await say(bot, fake, "上报 西岸滨河路路灯不亮", msgtype="richText")
    await bot.runtime.outbox.drain()
    assert fake.posts_of("session")[0].text.startswith("已受理舆情线索 #1")


async def test_an_expired_session_webhook_falls_back_to_the_signed_robot(bot: Bot, fake: FakeDingTalk) -> None:
    await say(bot, fake, "上报 西岸滨河路路灯不亮", expires_in_ms=-1000)
    await bot.runtime.outbox.drain()
    [post] = fake.posts
    assert post.kind == "robot" and post.ok, post.answer  # the fake checked timestamp and sign
    assert post.text.startswith("已受理舆情线索 #1") and post.at is not None
    assert fake.problems == []


async def test_a_reply_retried_after_the_session_expired_goes_to_the_robot(bot: Bot, fake: FakeDingTalk) -> None:
    fake.answer("session", Answer(status=500))
    await say(bot, fake, "上报 西岸滨河路路灯不亮")
    await bot.runtime.outbox.drain()
    assert [p.kind for p in fake.posts] == ["session"]
    bot.clock.advance(timedelta(hours=2))  # past the ≈90 min session lifetime
    assert await bot.runtime.outbox.run_once() == 1
    assert [p.kind for p in fake.posts] == ["session", "robot"] and fake.posts[-1].ok


async def test_a_session_webhook_outside_dingtalks_robot_host_is_not_used(bot: Bot, fake: FakeDingTalk) -> None:
    message = fake.message("上报 西岸滨河路路灯不亮")
    message["sessionWebhook"] = "https://attacker.example/robot/sendBySession?session=x"
    assert (await fake.call(bot.client, message)).status == 200
    await bot.runtime.outbox.drain()
    assert [p.kind for p in fake.posts] == ["robot"]
    async with bot.runtime.db.read() as session:
        row = (await session.execute(select(OutboxMessage))).scalar_one()
    assert row.reply_url is None


async def test_a_duplicate_msg_id_has_no_effect(bot: Bot, fake: FakeDingTalk) -> None:
    message = await say(bot, fake, "上报 西岸滨河路路灯不亮")
    await bot.runtime.outbox.drain()
    before = await counts(bot)
    bot.clock.advance(timedelta(seconds=5))
    again = await fake.call(bot.client, message)  # DingTalk's retry: same msgId, fresh signature
    assert again.status == 200 and await again.json() == {}
    await bot.runtime.outbox.drain()
    assert await counts(bot) == before
    assert before["items"] == 1 and len(fake.posts) == 1


@pytest.mark.parametrize(
    ("fields", "answer"),
    [
        ({"conversation_id": "cidSomewhereElse0000000=="}, "本群尚未接入"),
        ({"conversation_id": "cidPrivate00000000000==", "conversation_type": "1"}, "单聊消息不予处理"),
        ({"staff_id": "dt_stranger"}, "您尚未登记"),
        ({"staff_id": None}, "您尚未登记"),
    ],
    ids=["unknown-conversation", "single-chat", "unknown-sender", "no-staff-id"],
)
async def test_strangers_get_one_polite_answer_and_nothing_is_recorded(
    bot: Bot, fake: FakeDingTalk, fields: dict[str, Any], answer: str
) -> None:
    message = await say(bot, fake, "上报 西岸滨河路路灯不亮", **fields)
    await bot.runtime.outbox.drain()
    [post] = fake.posts
    assert post.kind == "session" and post.ok and post.params["session"] == session_of(message)
    assert answer in post.text  # the same words WeCom uses for the same case (bot/dispatch.py)
    assert "许明" in post.text  # says whom to ask: the configured admin
    assert await counts(bot) == dict.fromkeys(counts_names(), 0)


def counts_names() -> list[str]:
    return [model.__tablename__ for model in RECORD_TABLES]


# -- refusals ---------------------------------------------------------------------------------------------


async def test_unsigned_and_stale_callbacks_are_refused(bot: Bot, fake: FakeDingTalk) -> None:
    message = fake.message("上报 伪造")
    now = now_ms(bot.clock)
    for headers in ({}, {"timestamp": str(now)}, fake.headers(timestamp=now - 300_001),
                    fake.headers(timestamp=now + 300_001), fake.headers(secret="wrong")):
        response = await fake.call(bot.client, message, headers=headers)
        assert response.status == 401
    assert (await fake.call(bot.client, message, headers=fake.headers(timestamp=now - 300_000))).status == 200


async def test_a_callback_for_another_channel_id_is_not_routed(bot: Bot, fake: FakeDingTalk) -> None:
    response = await fake.call(bot.client, fake.message("上报 x"), channel="other")
    assert response.status == 404


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"msgId": 1}', json.dumps({"msgId": "m1", "msgtype": "text"}).encode(),
     json.dumps({"msgId": "m1", "conversationId": "c", "msgtype": "text", "text": "x"}).encode(),
     b"\xff\xfe", b"[" * 5000 + b"]" * 5000],
    ids=["text", "array", "numeric-id", "no-conversation", "text-not-object", "not-utf8", "deep"],
)
async def test_a_signed_but_malformed_body_is_400(bot: Bot, fake: FakeDingTalk, body: bytes) -> None:
    response = await fake.call(bot.client, body)
    assert response.status == 400
    assert await counts(bot) == dict.fromkeys(counts_names(), 0)


async def test_an_oversized_body_is_413_by_content_length(bot: Bot, fake: FakeDingTalk) -> None:
    response = await fake.call(bot.client, b"x" * (64 * 1024 + 1))
    assert response.status == 413


async def test_an_oversized_chunked_body_is_413(bot: Bot, fake: FakeDingTalk) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(80):
            yield b"x" * 1024

    headers = {"Content-Type": "application/json", **fake.headers()}
    response = await bot.client.post("/callback/dingtalk/dingtalk", data=chunks(), headers=headers)
    assert response.status == 413
    assert await counts(bot) == dict.fromkeys(counts_names(), 0)
