"""The WeCom channel against the fake WeCom, through the real HTTP entry points (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode
from xml.etree import ElementTree

import pytest
from sqlalchemy import select

from bot.channels.wecom import UNSUPPORTED
from bot.clock import ManualClock
from bot.dispatch import DIRECT_CHAT, UNKNOWN_CHAT
from domain.config import Config
from store import outbox
from store.models import ChannelStatus, ChatMessage, InboundSeen, Item, ItemEvent, OutboxMessage
from tests.fakes.wecom import (
    AES_KEY,
    COORD_KEY,
    DUTY_KEY,
    TOKEN,
    Answer,
    WecomBot,
    WecomClient,
    aibot_message,
    load_vectors,
    running,
)

REPORT = "上报 城关镇人民路发生火灾，网传多人受伤"
MAJOR_USERIDS = ["ShenHao", "HanMei", "YangFan", "ZhaoMin", "LiHua"]
MAJOR = ["shen_hao", "han_mei", "yang_fan", "zhao_min", "li_hua"]
NOTHING_WRITTEN = (Item, ItemEvent, ChatMessage, OutboxMessage, InboundSeen)


@pytest.fixture
async def wecom(config: Config, clock: ManualClock) -> AsyncIterator[WecomBot]:
    async with running(config, clock) as harness:
        yield harness


async def rows(w: WecomBot, model: type) -> list[Any]:
    async with w.bot.runtime.db.read() as session:
        return list((await session.execute(select(model))).scalars())


async def replies(w: WecomBot) -> list[OutboxMessage]:
    """Outbox rows queued as replies to callbacks (reminders the core may queue are left aside)."""
    return [r for r in await rows(w, OutboxMessage) if r.key.startswith("reply:")]


async def outbox_row(w: WecomBot, key: str) -> OutboxMessage:
    found: list[OutboxMessage] = [r for r in await rows(w, OutboxMessage) if r.key == key]
    assert len(found) == 1
    return found[0]


async def assert_nothing_written(w: WecomBot) -> None:
    for model in NOTHING_WRITTEN:
        assert await w.count(model) == 0, model.__tablename__


# -- URL verification -----------------------------------------------------------------------------------


async def test_url_verification_answers_the_bare_plaintext(wecom: WecomBot) -> None:
    query = wecom.wecom.verify_url("1288432023552776189", wecom.timestamp())
    response = await wecom.bot.client.get(f"{wecom.path}?{query}")
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.read() == b"1288432023552776189"  # no quotes, no newline


async def test_url_verification_refuses_a_bad_signature_and_a_stale_timestamp(wecom: WecomBot) -> None:
    query = wecom.wecom.verify_url("1288432023552776189", wecom.timestamp())
    params = dict(parse_qsl(query))
    params["msg_signature"] = "0" * 40
    bad = await wecom.bot.client.get(wecom.path, params=params)
    assert bad.status == 401 and "1288432023552776189" not in await bad.text()
    stale = wecom.wecom.verify_url("1288432023552776189", wecom.timestamp() - 3601)
    assert (await wecom.bot.client.get(f"{wecom.path}?{stale}")).status == 401
    for edge in (-3600, 3600):  # exactly an hour off is still accepted
        query = wecom.wecom.verify_url("1", wecom.timestamp() + edge)
        assert (await wecom.bot.client.get(f"{wecom.path}?{query}")).status == 200
    missing = await wecom.bot.client.get(wecom.path)
    assert missing.status == 400


async def test_the_route_exists_only_for_the_channels_own_id(wecom: WecomBot) -> None:
    query = wecom.wecom.verify_url("1", wecom.timestamp())
    assert (await wecom.bot.client.get(f"/callback/wecom/other?{query}")).status == 404


# -- a known member in a served chat --------------------------------------------------------------------


async def test_report_is_answered_empty_and_the_reply_goes_to_response_url(wecom: WecomBot) -> None:
    status, body, code = await wecom.say("ZhaoMin", REPORT)
    assert (status, body) == (200, "")
    await wecom.deliver()
    [reply] = wecom.fake.reply_posts(code)
    assert reply.msgtype == "markdown" and reply.content.startswith("已受理舆情线索 #1")
    assert wecom.fake.webhook_posts(DUTY_KEY) == []  # the reply @-mentions nobody: response_url suffices
    [item] = await rows(wecom, Item)
    assert item.reported_by == "zhao_min" and item.chat_id == "wecom_duty"
    said = [m for m in await rows(wecom, ChatMessage) if m.sender == "zhao_min"]
    assert [m.text for m in said] == [REPORT]  # the leading "@值班助手 " was stripped
    [row] = await replies(wecom)
    # Answered on response_url (the post above); once used the URL is erased (issue 13 point 8).
    assert row.status == outbox.SENT and row.reply_url is None
    assert wecom.fake.problems == []


async def test_grade_notice_mentions_by_userid_and_the_copy_goes_to_the_coordinators_webhook(
    wecom: WecomBot,
) -> None:
    await wecom.say("ZhaoMin", REPORT)
    await wecom.deliver()
    status, _, code = await wecom.say("ZhaoMin", "1")
    assert status == 200
    await wecom.deliver()
    [notice] = wecom.fake.webhook_posts(DUTY_KEY)
    assert notice.msgtype == "text"
    assert notice.content.startswith("【舆情通报】#1 重大舆情")
    assert notice.mentioned_list == MAJOR_USERIDS
    assert "@沈浩" not in notice.content  # WeCom renders the @ from mentioned_list
    assert wecom.fake.reply_posts(code) == []  # a reply that must @ people does not use response_url
    [copy] = wecom.fake.webhook_posts(COORD_KEY)
    assert copy.content.startswith("【舆情通报】#1 重大舆情") and copy.mentioned_list == []
    assert wecom.fake.problems == []
    notices = [m for m in await rows(wecom, ChatMessage) if m.chat_id == "wecom_duty" and m.kind == "notice"]
    assert notices[-1].mentions == MAJOR


async def test_a_repeated_msgid_has_no_second_effect(wecom: WecomBot) -> None:
    payload = aibot_message(msgid="MSG-REPEAT", userid="ZhaoMin", text=f"@值班助手 {REPORT}",
                            response_url=wecom.fake.response_url("RC-REPEAT"))
    query, body = wecom.wecom.json_callback(payload, wecom.timestamp())
    assert await wecom.post(query, body) == (200, "")
    await wecom.deliver()
    # WeCom's retry (same request) and a replay of it: both answered 200, neither does anything.
    assert await wecom.post(query, body) == (200, "")
    wecom.clock.advance(timedelta(minutes=50))
    assert await wecom.post(query, body) == (200, "")
    await wecom.deliver()
    assert await wecom.count(Item) == 1
    assert len(await replies(wecom)) == 1
    assert len(wecom.fake.reply_posts()) == 1


async def test_a_replay_after_the_timestamp_window_is_refused(wecom: WecomBot) -> None:
    payload = aibot_message(msgid="MSG-OLD", userid="ZhaoMin", text=f"@值班助手 {REPORT}")
    query, body = wecom.wecom.json_callback(payload, wecom.timestamp())
    assert (await wecom.post(query, body))[0] == 200
    wecom.clock.advance(timedelta(hours=1, seconds=1))
    # By now the msgid record may be purged (after 2 h): the timestamp check refuses it first.
    assert (await wecom.post(query, body))[0] == 401
    assert await wecom.count(Item) == 1


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        pytest.param({"msgtype": "mixed", "mixed": {"msg_item": [
            {"msgtype": "text", "text": {"content": "@机器人 上报 人民路火灾"}},
            {"msgtype": "image", "image": {"url": "https://example.invalid/1.png"}},
            {"msgtype": "text", "text": {"content": "现场有浓烟"}},
        ]}}, "上报 人民路火灾\n现场有浓烟", id="mixed"),
        pytest.param({"msgtype": "voice", "voice": {"content": "上报 人民路火灾"}}, "上报 人民路火灾", id="voice"),
    ],
)
async def test_mixed_and_voice_messages_carry_text(wecom: WecomBot, extra: dict[str, Any], text: str) -> None:
    payload = aibot_message(msgid="MSG-MIXED", userid="ZhaoMin", response_url=wecom.fake.response_url("RC-M"),
                            **extra)
    query, body = wecom.wecom.json_callback(payload, wecom.timestamp())
    assert await wecom.post(query, body) == (200, "")
    [item] = await rows(wecom, Item)
    assert item.summary == text.removeprefix("上报 ")


async def test_an_event_is_answered_empty_and_recorded_nowhere(wecom: WecomBot) -> None:
    payload = {"msgid": "EV1", "aibotid": "AIBOTID", "chattype": "group", "chatid": "wrkSFfCgAAqinghe0000duty",
               "from": {"userid": "ZhaoMin"}, "msgtype": "event", "event": {"eventtype": "enter_chat"}}
    query, body = wecom.wecom.json_callback(payload, wecom.timestamp())
    assert await wecom.post(query, body) == (200, "")
    await assert_nothing_written(wecom)
    assert wecom.fake.posts == []


async def test_an_image_is_answered_with_a_hint_and_recorded_nowhere(wecom: WecomBot) -> None:
    payload = aibot_message(msgid="IMG1", userid="ZhaoMin", msgtype="image", image={"url": "https://x.invalid/a"},
                            response_url=wecom.fake.response_url("RC-IMG"))
    query, body = wecom.wecom.json_callback(payload, wecom.timestamp())
    assert await wecom.post(query, body) == (200, "")
    await wecom.bot.runtime.outbox.drain()  # the answer is posted after the 200, never before it
    assert [p.content for p in wecom.fake.reply_posts("RC-IMG")] == [UNSUPPORTED]
    await assert_nothing_written(wecom)


# -- unknown chats and senders: one polite answer, nothing written ---------------------------------


@pytest.mark.parametrize(
    ("userid", "chatid", "expected"),
    [
        pytest.param("ZhaoMin", "wrkUNKNOWNCHAT", UNKNOWN_CHAT.format(admins="（许明）"), id="unknown-chat"),
        # A WeCom chat in the config but bound to no channel of this id: not served here.
        pytest.param("ZhaoMin", "wrkSFfCgAAqinghe00chengguan", UNKNOWN_CHAT.format(admins="（许明）"),
                     id="chat-of-no-channel"),
        pytest.param("ZhaoMin", None, DIRECT_CHAT.format(admins="（许明）"), id="single-chat"),
        pytest.param("Stranger01", "wrkSFfCgAAqinghe0000duty",
                     "您好，您尚未登记为本群值班助手的使用人员，请联系管理员（许明）将您加入配置。", id="unknown-user"),
    ],
)
async def test_unknown_chat_or_sender_gets_one_answer_and_nothing_is_written(
    wecom: WecomBot, caplog: pytest.LogCaptureFixture, userid: str, chatid: str | None, expected: str
) -> None:
    caplog.set_level(logging.INFO)
    status, body, code = await wecom.say(userid, REPORT, chatid=chatid)
    assert (status, body) == (200, "")
    await wecom.deliver()
    assert [p.content for p in wecom.fake.reply_posts()] == [expected]
    assert wecom.fake.reply_posts(code) and wecom.fake.webhook_posts(DUTY_KEY) == []
    await assert_nothing_written(wecom)
    assert "wecom wecom: message MSG" in caplog.text  # only a log line


# -- delivery outcomes -----------------------------------------------------------------------------------


async def test_a_revoked_webhook_key_is_a_config_error_reported_to_the_admins(
    config: Config, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(config, clock) as w:
        w.fake.keys.discard(DUTY_KEY)  # the robot was removed from the group: its key is revoked
        await w.say("LiuYang", REPORT)  # the reply @-mentions the duty officer: group robot
        await w.deliver()
        [post] = w.fake.webhook_posts(DUTY_KEY)
        assert post.answer.errcode == 93000
        [reply] = await replies(w)
        assert reply.status == outbox.HELD and reply.attempts == 1  # held until the robot accepts again
        assert reply.last_error is not None and reply.last_error.startswith("errcode 93000: invalid webhook url")
        assert "http" not in reply.last_error and DUTY_KEY not in reply.last_error
        [status] = [s for s in await rows(w, ChannelStatus) if s.chat_id == "wecom_duty"]
        assert status.channel == "wecom" and status.config_error
        [alert] = [r for r in await rows(w, OutboxMessage) if r.chat_id == "ops" and r.key.startswith("alert:")]
        assert alert.text.startswith("【系统告警】通道 wecom 向“清河县舆情值班群（企业微信）”发送消息失败")
        assert alert.mentions == ["xu_ming"]
        assert len(w.fake.webhook_posts(DUTY_KEY)) == 1  # not retried
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("bot", "store", "handlers")))
    assert "not delivered: errcode 93000" in ours
    for secret in (TOKEN, AES_KEY, DUTY_KEY, COORD_KEY):  # the fake's own access log is not ours
        assert secret not in ours


@pytest.mark.parametrize("answer", [Answer(45009), Answer(-1), Answer(http_status=500)], ids=["45009", "-1", "500"])
async def test_rate_limit_and_server_trouble_are_retried_later(wecom: WecomBot, answer: Answer) -> None:
    wecom.fake.answer_next(DUTY_KEY, answer)
    await wecom.say("LiuYang", REPORT)
    await wecom.deliver()
    [row] = await replies(wecom)
    assert row.status == outbox.PENDING and row.attempts == 1
    assert row.due_at > wecom.clock.now() and row.last_error
    await wecom.bot.runtime.outbox.run_once()
    assert (await replies(wecom))[0].status == outbox.PENDING  # not due yet
    wecom.clock.advance(timedelta(minutes=10, seconds=1))  # past the longest backoff
    await wecom.bot.runtime.outbox.run_once()
    [row] = await replies(wecom)
    assert row.status == outbox.SENT and row.attempts == 2
    first, second = wecom.fake.webhook_posts(DUTY_KEY)
    assert first.answer == answer and second.answer == Answer()
    assert first.body == second.body and second.mentioned_list == ["ZhaoMin"]


async def test_an_unreachable_webhook_is_retried(config: Config, clock: ManualClock) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with running(config, clock, DUTYBOT_WECOM_WEBHOOK=f"http://127.0.0.1:{port}/send?key=k") as w:
        await w.say("LiuYang", REPORT)
        await w.deliver()
        [row] = await replies(w)
        assert row.status == outbox.PENDING and row.last_error is not None
        assert row.last_error.startswith("网络错误：") and str(port) not in row.last_error


async def test_a_chat_without_its_own_webhook_fails_with_a_config_error(config: Config, clock: ManualClock) -> None:
    async with running(config, clock, DUTYBOT_WECOM_COORD_WEBHOOK="") as w:
        await w.say("ZhaoMin", REPORT)
        await w.deliver()
        await w.say("ZhaoMin", "1")
        await w.deliver()
        [copy] = [r for r in await rows(w, OutboxMessage)
                  if r.chat_id == "coordinators" and r.text.startswith("【舆情通报】")]
        assert copy.status == outbox.HELD  # held until the webhook is configured
        assert copy.last_error == "群 coordinators 未配置群机器人 webhook（环境变量 DUTYBOT_WECOM_COORD_WEBHOOK）"
        assert w.fake.webhook_posts(COORD_KEY) == []
        assert len(w.fake.webhook_posts(DUTY_KEY)) == 1  # the duty chat itself is unaffected


async def enqueue(w: WecomBot, text: str, mentions: list[str], key: str = "test:long", **reply: Any) -> None:
    async with w.bot.runtime.db.transaction() as session:
        await outbox.enqueue(session, key=key, chat_id="wecom_duty", text=text, mentions=mentions,
                             now=w.clock.now(), **reply)


async def test_a_long_notice_is_split_under_2048_bytes_with_the_mentions_on_the_last_part(wecom: WecomBot) -> None:
    lines = [f"第{i:03d}行：城关镇人民路火灾现场处置进展通报，请各单位按职责跟进。" for i in range(120)]
    text = "\n".join(lines)
    assert len(text.encode()) > 3 * 2048
    await enqueue(wecom, text, MAJOR)
    await wecom.bot.runtime.outbox.run_once()
    posts = wecom.fake.webhook_posts(DUTY_KEY)
    assert len(posts) >= 4 and wecom.fake.problems == []
    assert all(len(p.content.encode()) <= 2048 for p in posts)
    assert "\n".join(p.content for p in posts) == text  # cut at line ends, nothing lost or reordered
    assert [p.mentioned_list for p in posts] == [[]] * (len(posts) - 1) + [MAJOR_USERIDS]
    assert (await outbox_row(wecom, "test:long")).status == outbox.SENT


async def test_a_single_overlong_line_is_cut_between_characters(wecom: WecomBot) -> None:
    text = "火灾" * 1500 + "😀" * 300  # 9,000 + 1,200 bytes, no line break
    await enqueue(wecom, text, ["zhao_min"])
    await wecom.bot.runtime.outbox.run_once()
    posts = wecom.fake.webhook_posts(DUTY_KEY)
    assert all(len(p.content.encode()) <= 2048 for p in posts) and wecom.fake.problems == []
    assert "".join(p.content for p in posts) == text
    assert posts[-1].mentioned_list == ["ZhaoMin"]


async def test_a_split_message_resumes_after_the_parts_already_delivered(wecom: WecomBot) -> None:
    text = "\n".join(["甲" * 600, "乙" * 600, "丙" * 600])  # three parts of 1,800 bytes
    wecom.fake.answer_next(DUTY_KEY, 0, 45009)
    await enqueue(wecom, text, ["zhao_min"])
    await wecom.bot.runtime.outbox.run_once()
    wecom.clock.advance(timedelta(minutes=10, seconds=1))
    await wecom.bot.runtime.outbox.run_once()
    delivered = [p.content[0] for p in wecom.fake.delivered("webhook", DUTY_KEY)]
    assert delivered == ["甲", "乙", "丙"]
    assert len(wecom.fake.webhook_posts(DUTY_KEY)) == 4  # 甲, 乙 (45009), 乙, 丙


async def test_an_expired_or_used_response_url_falls_back_to_the_group_robot(wecom: WecomBot) -> None:
    now = wecom.clock.now()
    await enqueue(wecom, "已过期的回复", [], key="test:expired", reply_url=wecom.fake.response_url("RC-OLD"),
                  reply_url_expires_at=now - timedelta(seconds=1))
    wecom.fake.answer_next("RC-USED", 40014)
    await enqueue(wecom, "已用过的回复", [], key="test:used", reply_url=wecom.fake.response_url("RC-USED"),
                  reply_url_expires_at=now + timedelta(minutes=30))
    await wecom.bot.runtime.outbox.run_once()
    assert wecom.fake.reply_posts("RC-OLD") == []
    assert len(wecom.fake.reply_posts("RC-USED")) == 1
    assert sorted(p.content for p in wecom.fake.webhook_posts(DUTY_KEY)) == ["已用过的回复", "已过期的回复"]
    assert {(await outbox_row(wecom, key)).status for key in ("test:expired", "test:used")} == {outbox.SENT}


async def test_a_long_reply_goes_whole_to_response_url(wecom: WecomBot) -> None:
    text = "\n".join(f"第{i}条：进展情况说明。" for i in range(400))  # over 4,096 but under 20,480 bytes
    await enqueue(wecom, text, [], reply_url=wecom.fake.response_url("RC-LONG"),
                  reply_url_expires_at=wecom.clock.now() + timedelta(hours=1))
    await wecom.bot.runtime.outbox.run_once()
    assert [p.content for p in wecom.fake.reply_posts("RC-LONG")] == [text]
    assert wecom.fake.webhook_posts(DUTY_KEY) == []


async def test_markdown_format_mentions_inline(config: Config, clock: ManualClock) -> None:
    channels = [c.model_copy(update={"message_format": "markdown"}) if c.platform == "wecom" else c
                for c in config.channels]
    async with running(config.model_copy(update={"channels": channels}), clock) as w:
        await w.say("ZhaoMin", REPORT)
        await w.say("ZhaoMin", "1")
        await w.deliver()
        [notice] = w.fake.webhook_posts(DUTY_KEY)
        assert notice.msgtype == "markdown" and "mentioned_list" not in notice.body["markdown"]
        assert notice.content.startswith("【舆情通报】#1 重大舆情")
        assert notice.content.endswith("<@ShenHao> <@HanMei> <@YangFan> <@ZhaoMin> <@LiHua>")
        assert w.fake.problems == []


# -- the published vectors, end to end (a self-built app's receive id, the clock at the vector's time) ----


VECTORS = load_vectors()


@asynccontextmanager
async def vector_bot(config: Config, vector: dict[str, Any]) -> AsyncIterator[WecomBot]:
    channels = [c.model_copy(update={"receive_id": vector["receiveid"]}) if c.platform == "wecom" else c
                for c in config.channels]
    clock = ManualClock(datetime.fromtimestamp(int(vector["timestamp"]), UTC))
    async with running(config.model_copy(update={"channels": channels}), clock,
                       DUTYBOT_WECOM_TOKEN=vector["token"], DUTYBOT_WECOM_AES_KEY=vector["encoding_aes_key"]) as w:
        w.wecom = WecomClient(vector["token"], vector["encoding_aes_key"], vector["receiveid"])
        yield w


VERIFY = [v for v in VECTORS if v["kind"] == "verify_url"]
XML_MESSAGES = [v for v in VECTORS if v["kind"] == "decrypt" and v["plaintext"].startswith("<xml>")]


@pytest.mark.parametrize("vector", VERIFY, ids=[v["id"] for v in VERIFY])
async def test_published_url_verification_through_the_route(config: Config, vector: dict[str, Any]) -> None:
    async with vector_bot(config, vector) as w:
        echostr = vector.get("echostr_urlencoded") or quote(vector["echostr"], safe="")
        query = (f"msg_signature={vector['msg_signature']}&timestamp={vector['timestamp']}"
                 f"&nonce={vector['nonce']}&echostr={echostr}")
        response = await w.bot.client.get(f"{w.path}?{query}")
        assert response.status == 200
        assert await response.read() == vector["plaintext"].encode()
        # WeCom percent-encodes; a raw "+" read as a space by form decoding is tolerated too.
        raw = query.replace(echostr, vector["echostr"])
        assert await (await w.bot.client.get(f"{w.path}?{raw}")).text() == vector["plaintext"]


@pytest.mark.parametrize("vector", XML_MESSAGES, ids=[v["id"] for v in XML_MESSAGES])
async def test_published_app_message_gets_an_encrypted_passive_reply(config: Config, vector: dict[str, Any]) -> None:
    async with vector_bot(config, vector) as w:
        body = (f"<xml><ToUserName><![CDATA[{vector['receiveid']}]]></ToUserName>"
                f"<Encrypt><![CDATA[{vector['encrypt']}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>")
        query = urlencode({"msg_signature": vector["msg_signature"], "timestamp": vector["timestamp"],
                           "nonce": vector["nonce"]})
        status, answer = await w.post(query, body.encode(), content_type="text/xml")
        assert status == 200
        envelope = ElementTree.fromstring(answer)
        encrypt, timestamp, nonce = (envelope.findtext(tag) or "" for tag in ("Encrypt", "TimeStamp", "Nonce"))
        assert envelope.findtext("MsgSignature") == w.wecom.sign(timestamp, nonce, encrypt)
        message, receive_id, _ = w.wecom.decrypt(encrypt)
        assert receive_id == vector["receiveid"]
        reply = ElementTree.fromstring(message)
        sender = ElementTree.fromstring(vector["plaintext"]).findtext("FromUserName")
        assert reply.findtext("ToUserName") == sender and reply.findtext("FromUserName") == vector["receiveid"]
        assert reply.findtext("MsgType") == "text"
        assert reply.findtext("Content") == DIRECT_CHAT.format(admins="（许明）")
        await assert_nothing_written(w)
        assert w.fake.posts == []
