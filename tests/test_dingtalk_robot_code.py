"""A DingTalk callback's signature covers only its timestamp (PROTOCOLS.md D.1): a message naming
another robot (robotCode) or organisation (chatbotCorpId) than the configured app's is refused,
whatever its signature — on the HTTP callback (403, nothing written) and on Stream (not handled).
Issue #15, point 2."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from domain.config import Config, DingtalkChannelConfig
from store.models import ChatMessage, InboundSeen, Item, ItemEvent
from tests.conftest import Bot, start_bot
from tests.fakes.dingtalk import FakeDingTalk

TABLES: list[Any] = [Item, ItemEvent, ChatMessage, InboundSeen]


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeDingTalk]:
    async with FakeDingTalk(clock) as fake:
        yield fake


def pinned(config: Config, **fields: str) -> Config:
    channels = [c.model_copy(update=fields) if isinstance(c, DingtalkChannelConfig) else c for c in config.channels]
    return config.model_copy(update={"channels": channels})


async def written(bot: Bot) -> dict[str, int]:
    async with bot.runtime.db.read() as session:
        return {m.__tablename__: int((await session.execute(select(func.count()).select_from(m))).scalar_one())
                for m in TABLES}


@pytest.mark.parametrize(("field", "value"), [("robotCode", "dingOtherRobot"), ("chatbotCorpId", "dingOtherCorp"),
                                              ("robotCode", None)])
async def test_a_message_for_another_robot_is_refused_on_the_callback(
    config: Config, clock: ManualClock, fake: FakeDingTalk, field: str, value: str | None
) -> None:
    config = pinned(config, robot_code=fake.app_key, corp_id="dingcorpfake")
    client = await start_bot(config, clock, fake.environ())
    bot = Bot(client, clock, config)
    try:
        genuine = await fake.call(client, fake.message("上报 城关镇人民路发生火灾，网传多人受伤"))
        assert genuine.status == 200
        await bot.runtime.outbox.drain()  # its reply is logged when sent: counted before, not during
        before = await written(bot)
        message = fake.message("上报 伪造线索 城关镇人民路发生火灾")
        if value is None:
            del message[field]
        else:
            message[field] = value
        refused = await fake.call(client, message)  # signed correctly: the signature covers the timestamp only
        assert refused.status == 403
        assert await refused.json() == {"error": "消息不是发给本应用机器人的，请求被拒绝。"}
        assert await written(bot) == before
        metrics = await (await client.get("/metrics")).text()
        assert 'dutybot_callback_foreign_robot_refused_total{channel="dingtalk"} 1.0' in metrics
    finally:
        await client.close()
