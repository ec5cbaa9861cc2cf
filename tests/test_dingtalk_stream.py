"""DingTalk Stream mode against a local fake gateway (open-connection POST + WebSocket).

The gateway's base URL comes from DINGTALK_OPENAPI_ENDPOINT in the environ mapping given to the
bot, so os.environ and the SDK's module constants stay untouched. Blocking HTTP (requests,
http.client) is patched to fail: nothing of the sort may run inside the event loop.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from bot.clock import ManualClock
from domain.config import Config
from store.models import ChatMessage, InboundSeen, Item
from tests.conftest import Bot, start_bot
from tests.fakes.dingtalk import ROBOT_TOPIC, FakeDingTalk, dingtalk_config
from tests.outage_support import database_held

MAJOR_IDS = ["dt_shenhao", "dt_hanmei", "dt_yangfan", "dt_sunli", "dt_zhoutao"]


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeDingTalk]:
    async with FakeDingTalk(clock) as fake:
        yield fake


@pytest.fixture
def blocking_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every blocking HTTP client entry point the SDK uses, patched to record and fail."""
    calls: list[str] = []

    def refuse(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"blocking {name} called")
        return call

    monkeypatch.setattr(requests, "post", refuse("requests.post"))
    monkeypatch.setattr(requests, "request", refuse("requests.request"))
    monkeypatch.setattr(requests.Session, "request", refuse("requests.Session.request"))
    monkeypatch.setattr(http.client.HTTPConnection, "request", refuse("http.client.HTTPConnection.request"))
    return calls


@pytest.fixture
async def bot(config: Config, clock: ManualClock, fake: FakeDingTalk, blocking_calls: list[str]) -> AsyncIterator[Bot]:
    stream_config = dingtalk_config(config, mode="stream")
    client = await start_bot(stream_config, clock, fake.environ(mode="stream"))
    try:
        yield Bot(client, clock, stream_config)
    finally:
        await client.close()  # cancels the stream task: must return, not hang
    assert blocking_calls == []


async def count(bot: Bot, model: Any) -> int:
    async with bot.runtime.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def ack_response(ack: dict[str, Any]) -> Any:
    return json.loads(ack["data"])


async def test_a_robot_message_is_acked_recorded_and_answered(bot: Bot, fake: FakeDingTalk) -> None:
    await fake.wait_connected()
    [opened] = fake.opened
    assert opened["clientId"] == fake.app_key and opened["clientSecret"] == fake.app_secret
    assert opened["subscriptions"] == [{"type": "CALLBACK", "topic": ROBOT_TOPIC}]

    ack = await fake.push(fake.message("上报 城关镇人民路发生火灾，网传多人受伤"))
    assert ack["code"] == 200 and ack["headers"]["messageId"] == fake.acks[-1]["headers"]["messageId"]
    assert ack["headers"]["contentType"] == "application/json" and ack_response(ack) == {"response": "OK"}
    assert await count(bot, Item) == 1
    await bot.runtime.outbox.drain()
    [reply] = fake.posts_of("session")
    assert reply.ok and reply.text.startswith("已受理舆情线索 #1")

    await fake.push(fake.message("1"))
    await bot.runtime.outbox.drain()
    notice = fake.posts_of("session")[-1]
    assert notice.text.startswith("【舆情通报】#1 重大舆情")
    assert notice.at is not None and notice.at["atUserIds"] == MAJOR_IDS
    assert fake.posts_of("robot") == [] and fake.problems == []
    assert "DINGTALK_OPENAPI_ENDPOINT" not in os.environ


async def test_duplicates_strangers_pings_and_bad_frames(bot: Bot, fake: FakeDingTalk) -> None:
    await fake.wait_connected()
    message = fake.message("上报 西岸滨河路路灯不亮")
    await fake.push(message)
    again = await fake.push(message)  # redelivered: same msgId
    assert again["code"] == 200 and await count(bot, Item) == 1 and await count(bot, InboundSeen) == 1
    await bot.runtime.outbox.drain()
    assert len(fake.posts) == 1

    chat_rows = await count(bot, ChatMessage)
    stranger = await fake.push(fake.message("上报 x", staff_id="dt_stranger"))
    assert stranger["code"] == 200
    await bot.runtime.outbox.drain()  # the answer is posted after the ack (the outbox's drain waits for it)
    assert fake.posts[-1].kind == "session" and fake.posts[-1].text == bot.runtime.handler.unknown_sender_reply().text
    assert await count(bot, ChatMessage) == chat_rows and await count(bot, InboundSeen) == 1

    ping = await fake.push({"opaque": "p-1"}, kind="SYSTEM", topic="ping")
    assert ping["code"] == 200 and ack_response(ping) == {"opaque": "p-1"}

    malformed = await fake.push({"msgId": "only-an-id"})
    assert malformed["code"] == 400
    # The connection survives all of it.
    assert (await fake.push(fake.message("帮助")))["code"] == 200


async def test_a_disconnect_request_is_followed_by_a_new_connection(bot: Bot, fake: FakeDingTalk) -> None:
    assert await fake.wait_connected() == 1
    ack = await fake.push({"reason": "server is restarting"}, kind="SYSTEM", topic="disconnect")
    assert ack["code"] == 200
    assert await fake.wait_connected() == 2  # after a pause of about a second
    assert len(fake.opened) == 2  # a fresh ticket for the new connection
    assert (await fake.push(fake.message("上报 西岸滨河路路灯不亮")))["code"] == 200
    assert await count(bot, Item) == 1


async def test_a_refused_handshake_is_retried_and_stop_still_works(
    config: Config, clock: ManualClock, fake: FakeDingTalk, blocking_calls: list[str]
) -> None:
    stream_config = dingtalk_config(config, mode="stream")
    environ = fake.environ(mode="stream", DUTYBOT_DINGTALK_APP_SECRET="wrong-secret")
    client = await start_bot(stream_config, clock, environ)
    try:
        await asyncio.wait_for(fake.open_requested.wait(), 10)
        assert fake.opened[0]["clientSecret"] == "wrong-secret" and not fake.connected.is_set()
    finally:
        await asyncio.wait_for(client.close(), 10)  # cancelled during its backoff pause
    assert blocking_calls == []


async def test_a_stream_message_is_acked_only_once_kept_issue13_p1(
    bot: Bot, fake: FakeDingTalk,
) -> None:
    """While the database cannot be written a frame is acked OK only once it is in the spool; when
    the spool cannot take it either, the ack is a system error, so that DingTalk delivers it again."""
    await fake.wait_connected()
    bot.runtime.handler.write_budget = 0.5
    async with database_held(bot):
        kept = await fake.push(fake.message("上报 城关镇人民路发生火灾", msg_id="msgSTREAM-KEPT"))
        assert kept["code"] == 200 and ack_response(kept) == {"response": "OK"}
        bot.runtime.spool.max_bytes = 1  # the spool is full as well
        refused = await fake.push(fake.message("上报 西岸滨河路路灯不亮", msg_id="msgSTREAM-LOST"))
        assert refused["code"] != 200  # not acknowledged: DingTalk redelivers
    assert await count(bot, Item) == 0
    bot.runtime._probed = None
    assert await bot.runtime.keeper.replay_once(bot.runtime.handler) == 1
    assert await count(bot, Item) == 1
    bot.runtime.spool.max_bytes = 1 << 20
    again = await fake.push(fake.message("上报 西岸滨河路路灯不亮", msg_id="msgSTREAM-LOST"))  # the redelivery
    assert again["code"] == 200 and await count(bot, Item) == 2


async def test_a_frame_for_another_robot_is_not_handled_issue15(bot: Bot, fake: FakeDingTalk) -> None:
    """Stream mode knows the app key, which is the robot's code: a message naming another robot or
    none is refused (the signature-free Stream frame is still checked like a callback body)."""
    await fake.wait_connected()
    foreign = fake.message("上报 伪造线索 城关镇人民路发生火灾")
    foreign["robotCode"] = "dingOtherRobot"
    ack = await fake.push(foreign)
    assert ack["code"] != 200
    assert await count(bot, Item) == 0 and await count(bot, InboundSeen) == 0
    assert (await fake.push(fake.message("上报 城关镇人民路发生火灾，网传多人受伤")))["code"] == 200
    assert await count(bot, Item) == 1
