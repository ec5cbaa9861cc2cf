"""The shared inbound pipeline (issue #15, point 2): after its channel verified and decoded it, a
message from WeCom, DingTalk HTTP or DingTalk Stream takes one path — strangers answered once and
nothing recorded, known senders recorded (or spooled) and dispatched, replies through the outbox —
and the callback or Stream frame is acknowledged without waiting on a send."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.channels.base import DeliveryResult
from bot.channels.pipeline import ANSWER_GRACE, UNSUPPORTED, Arrival, Door, Labels, Pipeline, Received
from bot.clock import ManualClock
from bot.dispatch import DIRECT_CHAT, UNKNOWN_CHAT, UNKNOWN_SENDER
from bot.runtime import Runtime
from domain.config import Config
from domain.vocab import Platform
from store.models import ChatMessage, InboundSeen, Item, OutboxMessage
from tests.conftest import Bot, start_bot
from tests.fakes.dingtalk import Answer, FakeDingTalk, dingtalk_config
from tests.fakes.wecom import running

RECORDS: list[Any] = [Item, ChatMessage, InboundSeen, OutboxMessage]
ADMINS = "（许明）"
REPLY_URL = "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC1"


class Recorder:
    """A channel's own post of a direct answer, recorded; `hold` keeps it hanging until set."""

    def __init__(self, hold: asyncio.Event | None = None) -> None:
        self.answers: list[tuple[str, str, str]] = []  # (message id, reply URL, text)
        self.hold = hold
        self.cut_off = False

    async def answer(self, arrival: Arrival, reply_url: str, text: str) -> DeliveryResult:
        self.answers.append((arrival.message_id, reply_url, text))
        if self.hold is not None:
            try:
                await self.hold.wait()
            except asyncio.CancelledError:
                self.cut_off = True
                raise
        return DeliveryResult(ok=True, detail="errcode 0")


@pytest.fixture
async def runtime(config: Config, clock: ManualClock) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(config, clock)
    await runtime.db.upgrade()
    try:
        yield runtime
    finally:
        await runtime.pipeline.close(0)
        await runtime.outbox.drain()
        await runtime.db.dispose()


async def records(runtime: Runtime) -> dict[str, int]:
    async with runtime.db.read() as session:
        return {model.__tablename__: int((await session.execute(select(func.count()).select_from(model))).scalar_one())
                for model in RECORDS}


NOTHING = {model.__tablename__: 0 for model in RECORDS}
WECOM = ("wecom", Platform.WECOM, ["wecom_duty", "coordinators", "ops"], Labels("chattype", "chatid", "userid"),
         "wrkSFfCgAAqinghe0000duty", "ZhaoMin")
DINGTALK = ("dingtalk", Platform.DINGTALK, ["dingtalk_duty"],
            Labels("conversationType", "conversationId", "senderStaffId"), "cidQingHeDuty0000000000==", "dt_zhaomin")


def door_of(side: tuple[Any, ...], answerer: Recorder) -> tuple[Door, str, str]:
    channel, platform, chats, labels, chat_id, user_id = side
    return Door(channel, platform, frozenset(chats), answerer, labels), chat_id, user_id


def arrival(message_id: str, chat_id: str | None, user_id: str | None, text: str | None = "帮助", *,
            group: bool = True, reply_url: str | None = REPLY_URL) -> Arrival:
    return Arrival(message_id=message_id, chat_id=chat_id, chat_type="group" if group else "single", group=group,
                   user_id=user_id, text=text, reply_url=reply_url)


# -- strangers: one answer each, nothing recorded, the same for every platform ------------------------------------


@pytest.mark.parametrize("side", [WECOM, DINGTALK], ids=["wecom", "dingtalk"])
async def test_strangers_are_answered_once_and_nothing_is_recorded(
    runtime: Runtime, side: tuple[Any, ...], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.channels.pipeline")
    recorder = Recorder()
    door, chat_id, user_id = door_of(side, recorder)
    strangers = [
        arrival("m-unknown-chat", "someOtherGroup", user_id),
        arrival("m-single", None, user_id, group=False),
        arrival("m-unknown-user", chat_id, "stranger01"),
        arrival("m-no-user", chat_id, None),
        arrival("m-image", chat_id, user_id, None),  # a known sender, but nothing the bot can read
    ]
    for message in strangers:
        assert await runtime.pipeline.receive(door, message) is Received.ANSWERED
        assert await runtime.pipeline.receive(door, message) is Received.ANSWERED  # the platform's retry
    await runtime.pipeline.drain()  # the answers go out after the acknowledgement, never before it
    unknown_chat, direct = UNKNOWN_CHAT.format(admins=ADMINS), DIRECT_CHAT.format(admins=ADMINS)
    unknown_sender = UNKNOWN_SENDER.format(admins=ADMINS)
    assert recorder.answers == [  # once each, the retries not again
        ("m-unknown-chat", REPLY_URL, unknown_chat), ("m-single", REPLY_URL, direct),
        ("m-unknown-user", REPLY_URL, unknown_sender), ("m-no-user", REPLY_URL, unknown_sender),
        ("m-image", REPLY_URL, UNSUPPORTED),
    ]
    assert await records(runtime) == NOTHING
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.channels.pipeline"]
    platform = door.platform.value
    # The platform ids the admin copies into the config, named as the platform names them.
    assert (f"{platform} {door.channel}: message m-unknown-chat from a chat this channel does not serve "
            f"({door.labels.chat_type} group, {door.labels.chat} someOtherGroup, {door.labels.user} {user_id})"
            in lines)
    assert f"{platform} {door.channel}: message m-unknown-user from unregistered user stranger01 in chat " \
           f"{side[2][0]}" in lines


async def test_a_chat_served_by_another_channel_is_a_stranger_here(runtime: Runtime) -> None:
    recorder = Recorder()
    door, _, user_id = door_of(WECOM, recorder)
    # chengguan_duty is a WeCom chat of the config that no channel serves; dingtalk_duty is another platform's.
    for chat_id in ("wrkSFfCgAAqinghe00chengguan", "cidQingHeDuty0000000000=="):
        assert await runtime.pipeline.receive(door, arrival(f"m-{chat_id}", chat_id, user_id)) is Received.ANSWERED
    await runtime.pipeline.drain()
    assert [text for _, _, text in recorder.answers] == [UNKNOWN_CHAT.format(admins=ADMINS)] * 2
    assert await records(runtime) == NOTHING


async def test_a_stranger_without_a_reply_url_is_not_answered(runtime: Runtime) -> None:
    recorder = Recorder()
    door, chat_id, _ = door_of(DINGTALK, recorder)
    received = await runtime.pipeline.receive(door, arrival("m1", chat_id, "stranger01", reply_url=None))
    assert received is Received.ANSWERED and recorder.answers == []
    assert await records(runtime) == NOTHING


# -- known senders: recorded once, replies in the outbox with the reply URL ------------------------------------------


@pytest.mark.parametrize("side", [WECOM, DINGTALK], ids=["wecom", "dingtalk"])
async def test_a_known_sender_is_recorded_once_and_answered_through_the_outbox(
    runtime: Runtime, side: tuple[Any, ...]
) -> None:
    recorder = Recorder()
    door, chat_id, user_id = door_of(side, recorder)
    message = arrival("m-help", chat_id, user_id, "帮助")
    assert await runtime.pipeline.receive(door, message) is Received.HANDLED
    assert await runtime.pipeline.receive(door, message) is Received.DUPLICATE
    await runtime.outbox.drain()
    assert recorder.answers == []  # the reply is the outbox's, never a direct post
    async with runtime.db.read() as session:
        seen = (await session.execute(select(InboundSeen))).scalars().all()
        reply = (await session.execute(select(OutboxMessage))).scalars().one()
        said = (await session.execute(select(ChatMessage).where(ChatMessage.kind == "in"))).scalars().one()
    assert [(s.channel, s.message_id) for s in seen] == [(door.channel, "m-help")]
    assert reply.key == f"reply:{door.channel}:m-help:0" and reply.chat_id == side[2][0]
    assert said.sender == "zhao_min" and said.text == "帮助"


# -- the acknowledgement never waits on a hanging platform ------------------------------------------------------


async def test_a_hanging_answer_holds_the_acknowledgement_only_for_the_grace(runtime: Runtime) -> None:
    pipeline = Pipeline(directory=runtime.directory, clock=runtime.clock, handler=runtime.handler, answer_grace=0.05)
    hold = asyncio.Event()
    recorder = Recorder(hold)
    door, chat_id, _ = door_of(WECOM, recorder)
    received = await asyncio.wait_for(pipeline.receive(door, arrival("m1", chat_id, "stranger01")), 5)
    assert received is Received.ANSWERED and len(recorder.answers) == 1  # posted, and still in flight
    hold.set()
    await pipeline.drain()  # the answer went on in the background and finished
    assert not recorder.cut_off

    stuck = Recorder(asyncio.Event())  # never released
    door, chat_id, _ = door_of(WECOM, stuck)
    await asyncio.wait_for(pipeline.receive(door, arrival("m2", chat_id, "stranger01")), 5)
    await asyncio.wait_for(pipeline.close(0), 5)  # the stop cuts it off
    assert stuck.cut_off


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeDingTalk]:
    async with FakeDingTalk(clock) as fake:
        yield fake


def quick_stop(config: Config) -> Config:
    """Posts the platform leaves hanging are cut off at the stop: let that take one second, not ten."""
    return config.model_copy(update={"delivery": config.delivery.model_copy(update={"shutdown_seconds": 1})})


@pytest.mark.parametrize("staff_id", ["dt_zhaomin", "dt_stranger"], ids=["known-sender", "stranger"])
async def test_a_hanging_dingtalk_does_not_delay_the_callback(
    config: Config, clock: ManualClock, fake: FakeDingTalk, staff_id: str
) -> None:
    fake.answer("session", Answer(hang=True))
    fake.answer("robot", Answer(hang=True))
    client = await start_bot(quick_stop(config), clock, fake.environ())
    try:
        started = asyncio.get_running_loop().time()
        # A send would hang for [delivery] timeout_seconds (10 s): the callback must not wait on it.
        response = await asyncio.wait_for(fake.call(client, fake.message("帮助", staff_id=staff_id)), ANSWER_GRACE + 3)
        assert response.status == 200 and await response.json() == {}
        assert asyncio.get_running_loop().time() - started < ANSWER_GRACE + 3
    finally:
        await client.close()


@pytest.mark.parametrize("staff_id", ["dt_zhaomin", "dt_stranger"], ids=["known-sender", "stranger"])
async def test_a_hanging_dingtalk_does_not_delay_the_stream_ack(
    config: Config, clock: ManualClock, fake: FakeDingTalk, staff_id: str
) -> None:
    fake.answer("session", Answer(hang=True))
    fake.answer("robot", Answer(hang=True))
    stream = quick_stop(dingtalk_config(config, mode="stream"))
    client = await start_bot(stream, clock, fake.environ(mode="stream"))
    bot = Bot(client, clock, stream)
    try:
        await fake.wait_connected()
        ack = await fake.push(fake.message("帮助", staff_id=staff_id), within=ANSWER_GRACE + 3)
        assert ack["code"] == 200
        if staff_id == "dt_zhaomin":
            async with bot.runtime.db.read() as session:  # acked once kept, its reply still being posted
                assert (await session.execute(select(func.count()).select_from(InboundSeen))).scalar_one() == 1
    finally:
        await client.close()


# -- one path for every door ---------------------------------------------------------------------------------


async def test_every_platform_door_takes_the_pipeline(
    config: Config, clock: ManualClock, fake: FakeDingTalk, caplog: pytest.LogCaptureFixture
) -> None:
    """The same stranger, on WeCom, DingTalk HTTP and DingTalk Stream: the same words, the same log
    line (the pipeline's), and nothing recorded."""
    caplog.set_level(logging.INFO, logger="bot.channels.pipeline")
    answers: list[str] = []
    async with running(config, clock) as w:
        assert (await w.say("Stranger01", "帮助"))[:2] == (200, "")
        await w.deliver()
        answers += [p.content for p in w.fake.reply_posts()]
        assert await records(w.bot.runtime) == NOTHING
    for mode in ("http", "stream"):
        dingtalk = dingtalk_config(config, mode=mode)
        client = await start_bot(dingtalk, clock, fake.environ(mode=mode))
        bot = Bot(client, clock, dingtalk)
        try:
            message = fake.message("帮助", staff_id="dt_stranger")
            if mode == "http":
                assert (await fake.call(client, message)).status == 200
            else:
                await fake.wait_connected()
                assert (await fake.push(message))["code"] == 200
            await bot.runtime.pipeline.drain()
            assert await records(bot.runtime) == NOTHING
        finally:
            await client.close()
    answers += [p.text for p in fake.posts_of("session")]
    assert answers == [UNKNOWN_SENDER.format(admins=ADMINS)] * 3
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.channels.pipeline"]
    assert [line.split(": message ")[0] for line in lines if "from unregistered user" in line] == [
        "wecom wecom", "dingtalk dingtalk", "dingtalk dingtalk"]
