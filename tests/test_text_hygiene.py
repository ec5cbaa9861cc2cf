"""Issue #13 point 8 (part): whatever the text, it is kept — and nothing private reaches a log.

- Text with a lone surrogate is cleaned (U+FFFD) and kept, never dropped with a 200; text with
  NUL is kept without it; a platform message id longer than the database column is kept as its
  digest (so retries still de-duplicate and two ids sharing a prefix stay two messages) — on
  PostgreSQL as on SQLite, through WeCom, DingTalk and the local channel.
- Reply URLs are erased from the outbox once spent or expired (store/replyurls.erase_reply_urls).
- No log line carries message text or a reply URL, database errors included (statement
  parameters hidden).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.clock import ManualClock
from domain.config import Config
from domain.messages import MAX_MESSAGE_ID, InboundMessage, clean_text, message_key
from domain.vocab import Platform
from store import outbox
from store.db import Database
from store.models import ChatMessage, InboundSeen, Item, OutboxMessage
from store.replyurls import erase_reply_urls
from tests.conftest import START, Bot, start_bot
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import aibot_message, running
from tests.test_forgery import forget_signatures

DIRTY = "上报 城关镇\ud800人民路\x00发生火灾\udfff，网传多人受伤"
CLEAN_SUMMARY_PART = "城关镇\ufffd人民路发生火灾\ufffd"
LONG_ID = "M" * 300


def test_clean_text_replaces_lone_surrogates_and_drops_nul() -> None:
    assert clean_text("a\ud800b") == "a\ufffdb"
    assert clean_text("a\x00b\x00") == "ab"
    assert clean_text("\ud83d\ude00") == "😀"  # a pair written as two escapes is one character
    assert clean_text("普通文字 plain") == "普通文字 plain"
    message = InboundMessage(platform=Platform.WECOM, chat_id="wecom_duty", sender_id="x\x00y", text=DIRTY,
                             received_at=START, message_id="id\ud800")
    assert message.text == "上报 城关镇\ufffd人民路发生火灾\ufffd，网传多人受伤" and message.sender_id == "xy"
    assert message.message_id is not None and message.message_id.isascii()


def test_long_message_ids_are_kept_as_their_digest() -> None:
    key = message_key(LONG_ID)
    assert len(key) == MAX_MESSAGE_ID and key == message_key(LONG_ID) and key == message_key(key)
    assert message_key(LONG_ID + "x") != key  # the same first 128 characters, another message
    assert message_key("msgFAKE00000001") == "msgFAKE00000001"


async def rows(bot: Bot, model: Any) -> list[Any]:
    async with bot.runtime.db.read() as session:
        return list((await session.execute(select(model))).scalars())


async def assert_kept_clean(bot: Bot) -> None:
    [item] = await rows(bot, Item)
    assert CLEAN_SUMMARY_PART in item.summary and "\x00" not in item.summary
    said = [m.text for m in await rows(bot, ChatMessage) if m.kind == "in"]
    assert any(CLEAN_SUMMARY_PART in t for t in said)
    seen = [s.message_id for s in await rows(bot, InboundSeen)]
    assert message_key(LONG_ID) in seen and all(len(s) <= MAX_MESSAGE_ID for s in seen)


async def test_wecom_keeps_dirty_text_and_long_ids(config: Config, clock: ManualClock) -> None:
    async with running(config, clock) as w:
        async def send(msgid: str, body: str) -> None:
            payload = aibot_message(msgid=msgid, userid="ZhaoMin", text=f"@值班助手 {body}",
                                    response_url=w.fake.response_url(f"RC{w.next_id()}"))
            encrypt = w.wecom.encrypt(json.dumps(payload).encode())  # \u escapes carry the surrogates
            status, _ = await w.post(w.wecom.query(encrypt, w.timestamp()), json.dumps({"encrypt": encrypt}).encode())
            assert status == 200

        await send(LONG_ID, DIRTY)
        await send(LONG_ID, DIRTY)  # WeCom's retry: no second item
        await w.deliver()
        await assert_kept_clean(w.bot)
        await send(LONG_ID + "x", "帮助")  # shares the first 128 characters: another message, answered
        await w.deliver()
        assert len(w.fake.reply_posts()) == 2


async def test_dingtalk_keeps_dirty_text_and_long_ids(
    config: Config, clock: ManualClock, db_url: str
) -> None:
    await forget_signatures(db_url)
    async with FakeDingTalk(clock) as fake:
        client = await start_bot(config, clock, fake.environ())
        bot = Bot(client, clock, config)
        try:
            for msg_id in (LONG_ID, LONG_ID):
                message = fake.message(DIRTY, msg_id=msg_id)
                response = await fake.call(client, json.dumps(message).encode())
                assert response.status == 200, await response.text()
            await bot.runtime.outbox.drain()
            await assert_kept_clean(bot)
            assert len(fake.posts_of("session")) == 1
        finally:
            await client.close()


async def test_the_local_channel_keeps_dirty_text(bot: Bot) -> None:
    body = json.dumps({"chat": "wecom_duty", "sender": "li_hua", "text": DIRTY}).encode()
    response = await bot.client.post("/local/messages", data=body, headers={"Idempotency-Key": "k" * 128})
    assert response.status == 200 and (await response.json())["replies"]
    [item] = await rows(bot, Item)
    assert CLEAN_SUMMARY_PART in item.summary
    stranger = json.dumps({"chat": "wecom_duty", "sender": "nobody\x00\ud800", "text": "帮助\x00"}).encode()
    response = await bot.client.post("/local/messages", data=stranger)
    assert response.status == 200 and (await response.json())["replies"]
    assert any(m.sender == "nobody\ufffd" for m in await rows(bot, ChatMessage))


# -- reply URLs are erased once spent or expired ---------------------------------------------------------------


async def test_reply_urls_are_erased_once_sent_or_expired(db_url: str) -> None:
    db = Database(db_url)
    await db.upgrade()
    now = START
    soon, gone = now + timedelta(minutes=30), now - timedelta(seconds=1)
    cases = {  # key: (status, expiry, kept?)
        "pending-valid": (outbox.PENDING, soon, True),
        "claimed-valid": (outbox.CLAIMED, soon, True),
        "pending-expired": (outbox.PENDING, gone, False),
        "pending-no-expiry": (outbox.PENDING, None, False),
        "sent": (outbox.SENT, soon, False),
        "failed": (outbox.FAILED, soon, False),
        "cancelled": (outbox.CANCELLED, soon, False),
        "merged": (outbox.MERGED, soon, False),
    }
    try:
        async with db.transaction() as session:
            for key, (status, expires, _) in cases.items():
                url = f"https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code={key}"
                session.add(OutboxMessage(key=key, chat_id="wecom_duty", text="回复", mentions=[], created_at=now,
                                          due_at=now, status=status, attempts=0, reply_url=url,
                                          reply_url_expires_at=expires))
            session.add(OutboxMessage(key="no-url", chat_id="wecom_duty", text="通知", mentions=[], created_at=now,
                                      due_at=now, status=outbox.SENT, attempts=1))
        async with db.transaction() as session:
            assert await erase_reply_urls(session, now) == 6
        async with db.read() as session:
            found = (await session.execute(select(OutboxMessage))).scalars()
            stored = {r.key: (r.reply_url, r.reply_url_expires_at) for r in found}
        for key, (_, _, kept) in cases.items():
            url, expires = stored[key]
            assert (url is not None) == kept and (expires is not None) == kept, key
        async with db.transaction() as session:
            assert await erase_reply_urls(session, now) == 0  # nothing left to erase
            assert await erase_reply_urls(session, now + timedelta(hours=1)) == 2  # the valid ones expire
    finally:
        await db.dispose()


# -- logs: no message text, no reply URL, no statement parameters ---------------------------------------------------


SECRET_TEXT = "上报 机密线索甲乙丙丁：某某小区业主维权群截图"


def private_lines(caplog: pytest.LogCaptureFixture, *secrets: str) -> list[str]:
    """Log lines of the bot (the test servers' access logs aside: `serve` runs without one)."""
    lines = [f"{r.name}: {r.getMessage()} {r.exc_text or ''}" for r in caplog.records if r.name != "aiohttp.access"]
    return [line for line in lines if any(secret in line for secret in secrets)]


async def test_no_log_line_carries_message_text_or_a_reply_url(
    config: Config, clock: ManualClock, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await forget_signatures(db_url)
    async with running(config, clock) as w:
        status, _, code = await w.say("ZhaoMin", SECRET_TEXT)
        await w.say("Stranger01", SECRET_TEXT)  # an unregistered sender is logged, not the text
        await w.say("ZhaoMin", SECRET_TEXT, response_code="RC-BAD", chatid="wrkUnknownChat")
        await w.deliver()
        assert status == 200
        wecom_url = w.fake.response_url(code)
    async with FakeDingTalk(clock) as fake:
        client = await start_bot(config, clock, fake.environ())
        try:
            message = fake.message(SECRET_TEXT)
            message["sessionWebhook"] = "https://attacker.example/robot/sendBySession?session=leak"
            assert (await fake.call(client, message)).status == 200
            good = fake.message(SECRET_TEXT)
            assert (await fake.call(client, good)).status == 200
            await Bot(client, clock, config).runtime.outbox.drain()
        finally:
            await client.close()
    assert caplog.records  # the bot did log (who, which chat, what was refused)
    assert private_lines(caplog, SECRET_TEXT[3:], wecom_url, "response_code=", "attacker.example",
                         good["sessionWebhook"], "session=") == []


async def test_database_errors_hide_statement_parameters(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    db = Database(db_url)
    await db.upgrade()
    secret = "机密：某某小区业主维权群截图 https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=SECRET"
    statement = text("INSERT INTO chat_messages (chat_id, at, sender, text, mentions, kind, nope) "
                     "VALUES ('c', :at, 's', :text, '[]', 'in', 1)")
    failure: Exception | None = None
    try:
        async with db.transaction() as session:
            await session.execute(statement, {"at": START, "text": secret})
    except Exception as exc:  # what the bot's own handlers do with an unexpected database error
        logging.getLogger("dutybot.test").exception("a statement failed")
        failure = exc
    finally:
        await db.dispose()
    assert failure is not None and "parameters hidden" in str(failure)
    [logged] = [r for r in caplog.records if r.name == "dutybot.test"]
    assert logged.exc_text is not None and "parameters hidden" in logged.exc_text
    assert "SECRET" not in caplog.text and "机密" not in caplog.text and secret not in str(failure)
