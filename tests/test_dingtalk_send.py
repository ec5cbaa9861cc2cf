"""Delivery through the DingTalk custom robot and sessionWebhooks: signing, limits, outcomes."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import pytest
from sqlalchemy import select

from bot.channels.dingtalk import MAX_POST_BODY, post_json
from bot.channels.dingtalk_sign import sign, signed_webhook_url
from bot.clock import ManualClock
from domain.config import Config
from store import channel_status, outbox
from store.models import OutboxMessage
from tests.conftest import Bot, start_bot
from tests.fakes.dingtalk import Answer, FakeDingTalk, dingtalk_config, now_ms


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


async def enqueue(
    bot: Bot, text: str, mentions: Sequence[str] = (), *, key: str = "test:1", reply_url: str | None = None,
    expires_at: datetime | None = None,
) -> None:
    async with bot.runtime.db.transaction() as session:
        await outbox.enqueue(session, key=key, chat_id="dingtalk_duty", text=text, mentions=list(mentions),
                             now=bot.clock.now(), reply_url=reply_url, reply_url_expires_at=expires_at)


async def rows(bot: Bot) -> dict[str, OutboxMessage]:
    async with bot.runtime.db.read() as session:
        return {r.key: r for r in (await session.execute(select(OutboxMessage))).scalars()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- signing ----------------------------------------------------------------------------------------------


async def test_a_notice_is_signed_once_encoded_and_accepted(bot: Bot, fake: FakeDingTalk) -> None:
    await enqueue(bot, "【提醒】#1 距签收时限还有10分钟", ["zhou_tao", "sun_li"])
    assert await bot.runtime.outbox.run_once() == 1
    [post] = fake.posts
    stamp = str(now_ms(bot.clock))
    expected = sign(stamp, fake.robot_secret)
    assert post.kind == "robot" and post.ok, post.answer
    assert post.params["timestamp"] == stamp
    assert post.params["sign"] == expected  # decoded once by the server: the raw base64
    assert f"&sign={quote_plus(expected)}" in post.query_string  # encoded exactly once on the wire
    assert post.body == {
        "msgtype": "text",
        "text": {"content": "【提醒】#1 距签收时限还有10分钟\n@dt_zhoutao @dt_sunli"},
        "at": {"atMobiles": [], "atUserIds": ["dt_zhoutao", "dt_sunli"], "isAtAll": False},
    }
    assert (await rows(bot))["test:1"].status == "sent"


async def test_markdown_format(config: Config, clock: ManualClock, fake: FakeDingTalk) -> None:
    client = await start_bot(dingtalk_config(config, message_format="markdown"), clock, fake.environ())
    bot = Bot(client, clock, config)
    try:
        await enqueue(bot, "【舆情通报】#1 重大舆情\n签收时限：11月23日 10:30", ["zhou_tao"])
        await bot.runtime.outbox.run_once()
    finally:
        await client.close()
    [post] = fake.posts
    assert post.ok and post.body is not None and post.body["msgtype"] == "markdown"
    assert post.body["markdown"] == {
        "title": "【舆情通报】#1 重大舆情",
        "text": "【舆情通报】#1 重大舆情  \n签收时限：11月23日 10:30  \n@dt_zhoutao",
    }
    assert post.at == {"atMobiles": [], "atUserIds": ["dt_zhoutao"], "isAtAll": False}


# -- the 20,000-byte limit ------------------------------------------------------------------------------


async def test_a_long_message_is_split_under_the_limit_with_mentions_on_the_last_part(
    bot: Bot, fake: FakeDingTalk
) -> None:
    lines = [f"第{n}条：城关镇人民路商户反映占道经营整治问题，网民评论“情况属实”，请核实。" for n in range(700)]
    text = "\n".join(lines)
    assert len(text.encode()) > 2 * MAX_POST_BODY
    await enqueue(bot, text, ["shen_hao", "zhou_tao", "ghost"])
    await bot.runtime.outbox.run_once()
    posts = fake.posts_of("robot")
    assert len(posts) >= 3 and all(p.ok for p in posts), [p.answer for p in posts]
    assert all(len(p.raw) <= MAX_POST_BODY for p in posts)
    assert [p.at is not None for p in posts] == [False] * (len(posts) - 1) + [True]
    assert posts[-1].at == {"atMobiles": [], "atUserIds": ["dt_shenhao", "dt_zhoutao"], "isAtAll": False}
    tail = "\n@dt_shenhao @dt_zhoutao @ghost"  # an unknown person is still named
    assert "\n".join(p.text for p in posts) == text + tail
    assert all("@dt_" not in p.text for p in posts[:-1])
    assert fake.problems == []
    assert (await rows(bot))["test:1"].status == "sent"


# -- outcomes ------------------------------------------------------------------------------------------------


async def test_310000_fails_the_row_flags_the_channel_and_alerts_the_admins(
    config: Config, clock: ManualClock, fake: FakeDingTalk, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "SECwrong0000000000000000000000000000000000000000000000000000000"
    client = await start_bot(config, clock, fake.environ(DUTYBOT_DINGTALK_SECRET=wrong))
    bot = Bot(client, clock, config)
    caplog.set_level(logging.DEBUG)
    try:
        await enqueue(bot, "【提醒】测试")
        await bot.runtime.outbox.run_once()
        [post] = fake.posts
        assert post.answer["errcode"] == 310000  # the fake's own signature check refused it
        row = (await rows(bot))["test:1"]
        assert row.status == "held" and row.last_error == "errcode 310000: sign not match"  # not failed: held
        async with bot.runtime.db.read() as session:
            [status] = await channel_status.all_rows(session)
        assert (status.channel, status.chat_id, status.config_error) == ("dingtalk", "dingtalk_duty", True)
        alerts = [r for r in (await rows(bot)).values() if r.key.startswith("alert:config:dingtalk:")]
        assert [a.chat_id for a in alerts] == ["ops"] and "errcode 310000" in alerts[0].text
        bot.clock.advance(timedelta(hours=1))
        await bot.runtime.outbox.run_once()
        assert (await rows(bot))["test:1"].status == "held"  # not retried until a probe
        assert len(fake.posts) == 1
    finally:
        await client.close()
    # Everything the bot (and its libraries) logged; the fake server's own access log is not the bot's.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert "310000" in logged
    for secret in (wrong, fake.app_secret, fake.access_token, post.params["sign"], quote_plus(post.params["sign"])):
        assert secret not in logged


async def test_a_wrong_access_token_is_a_config_error(config: Config, clock: ManualClock, fake: FakeDingTalk) -> None:
    webhook = f"{fake.base_url}/robot/send?access_token=revoked0123"
    client = await start_bot(config, clock, fake.environ(DUTYBOT_DINGTALK_WEBHOOK=webhook))
    bot = Bot(client, clock, config)
    try:
        await enqueue(bot, "【提醒】测试")
        await bot.runtime.outbox.run_once()
        row = (await rows(bot))["test:1"]
        assert row.status == "held" and row.last_error == "errcode 300001: token is not exist"
        assert "revoked0123" not in (row.last_error or "")
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("answer", "detail"),
    [(Answer(130101, "send too fast, exceed 20 times per minute"),
      "errcode 130101: send too fast, exceed 20 times per minute"),
     (Answer(status=500), "HTTP 500"), (Answer(redirect=True), "HTTP 302（疑似限流）")],
    ids=["130101", "http-500", "302"],
)
async def test_throttling_and_server_errors_are_retried_later(
    bot: Bot, fake: FakeDingTalk, answer: Answer, detail: str
) -> None:
    fake.answer("robot", answer)
    await enqueue(bot, "【提醒】测试")
    await bot.runtime.outbox.run_once()
    row = (await rows(bot))["test:1"]
    assert row.status == "pending" and row.attempts == 1 and row.last_error == detail
    assert row.due_at > bot.clock.now()
    assert await bot.runtime.outbox.run_once() == 0  # not before its time
    bot.clock.advance(timedelta(minutes=11))
    assert await bot.runtime.outbox.run_once() == 1
    assert (await rows(bot))["test:1"].status == "sent" and fake.posts[-1].ok


async def test_a_connection_error_is_retried(config: Config, clock: ManualClock, fake: FakeDingTalk) -> None:
    webhook = f"http://127.0.0.1:{free_port()}/robot/send?access_token={fake.access_token}"
    client = await start_bot(config, clock, fake.environ(DUTYBOT_DINGTALK_WEBHOOK=webhook))
    bot = Bot(client, clock, config)
    try:
        await enqueue(bot, "【提醒】测试")
        await bot.runtime.outbox.run_once()
        row = (await rows(bot))["test:1"]
        assert row.status == "pending" and row.last_error == "ClientConnectorError"
    finally:
        await client.close()


async def test_a_timeout_is_retryable(fake: FakeDingTalk, clock: ManualClock) -> None:
    fake.answer("robot", Answer(hang=True))
    url = signed_webhook_url(fake.webhook, fake.robot_secret, now_ms(clock))
    body = b'{"msgtype": "text", "text": {"content": "x"}}'
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.2)) as http:
        result = await post_json(http, url, body, [fake.access_token])
    assert (result.ok, result.retryable, result.config_error, result.detail) == (False, True, False, "TimeoutError")


async def test_a_refused_session_webhook_falls_back_to_the_robot(bot: Bot, fake: FakeDingTalk) -> None:
    unknown_session = f"{fake.base_url}/robot/sendBySession?session=closed"
    await enqueue(bot, "回复", reply_url=unknown_session, expires_at=bot.clock.now() + timedelta(hours=1))
    await bot.runtime.outbox.run_once()
    assert [(p.kind, p.answer.get("errcode")) for p in fake.posts] == [("session", 300001), ("robot", 0)]
    assert (await rows(bot))["test:1"].status == "sent"


async def test_a_session_reply_about_to_expire_goes_to_the_robot(bot: Bot, fake: FakeDingTalk) -> None:
    message: dict[str, Any] = fake.message("x")
    await enqueue(bot, "回复", reply_url=message["sessionWebhook"],
                  expires_at=bot.clock.now() + timedelta(seconds=10))
    await bot.runtime.outbox.run_once()
    assert [p.kind for p in fake.posts] == ["robot"]
