"""Issue #13 point 7: nobody can make the bot @-mention people or post what it did not mean.

- A report whose text holds every platform's mention markup mentions nobody the policy did not
  choose, on WeCom (text and markdown) and DingTalk (text and markdown): checked on what the fake
  platforms received.
- A DingTalk (timestamp, sign) pair that comes back with another msgId more than 2 s after its
  first use is refused (401), logged and counted; within 2 s it is accepted; replicas share the
  pairs through the database; old pairs are purged.
- A reply URL from a callback is used only when it is the platform's own endpoint; anything else
  is dropped at intake (never stored) and the reply goes to the configured robot.
- The bench signs each request with its own timestamp, which the bot accepts unchanged.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from bench.payloads import (
    REPORT_TEXT,
    LoadSpec,
    cut,
    dingtalk_message,
    dingtalk_signatures,
    render_lua,
    signature_index,
)
from bench.payloads import message_id as bench_message_id
from bot.channels import reply_urls
from bot.channels.dingtalk_replay import SignatureGuard
from bot.channels.dingtalk_sign import verify_callback
from bot.channels.mentions import neutralise
from bot.clock import ManualClock
from bot.runtime import RUNTIME
from domain.config import Config
from store.db import Database
from store.models import Item, OutboxMessage, SignatureUse
from tests.conftest import Bot, start_bot
from tests.fakes.dingtalk import FakeDingTalk, dingtalk_config, now_ms
from tests.fakes.wecom import DUTY_KEY, aibot_message, running


@pytest.fixture(autouse=True)
async def no_signatures_left(db_url: str) -> None:
    """tests/conftest.py empties the PostgreSQL tables it knows between tests; signature_uses is
    new, so the pairs earlier tests used (at the same manual-clock instants) are cleared here."""
    await forget_signatures(db_url)


async def forget_signatures(db_url: str) -> None:
    db = Database(db_url)
    try:
        await db.upgrade()
        async with db.transaction() as session:
            await session.execute(delete(SignatureUse))
    finally:
        await db.dispose()


# Every mention form of both platforms, aimed at people the policy does not choose for a grade 1
# (王军 WangJun / dt_wangjun / 13800000001, 许明 XuMing) and at everybody; plus a web address
# whose "@" must survive.
LINK = "https://www.douyin.com/@qinghe_news"
HOSTILE = (
    "上报 城关镇人民路发生火灾 @all @ALL <@all> @所有人 <@WangJun> <@x> @13800000001 @dt_wangjun "
    f"@WangJun @XuMing 详见 {LINK}"
)
WECOM_CHOSEN = {"ShenHao", "HanMei", "YangFan", "ZhaoMin", "LiHua"}
DINGTALK_CHOSEN = {"dt_shenhao", "dt_hanmei", "dt_yangfan", "dt_sunli", "dt_zhoutao"}
LIVE_MENTION = re.compile(r"@\S")


def without_link(text: str) -> str:
    return text.replace(LINK, "")


def wecom_format(config: Config, message_format: str) -> Config:
    channels = [c.model_copy(update={"message_format": message_format}) if c.platform == "wecom" else c
                for c in config.channels]
    return config.model_copy(update={"channels": channels})


@pytest.mark.parametrize("message_format", ["text", "markdown"])
async def test_a_report_mentions_only_whom_the_policy_chose_on_wecom(
    config: Config, clock: ManualClock, message_format: str
) -> None:
    async with running(wecom_format(config, message_format), clock) as w:
        await w.say("ZhaoMin", HOSTILE)
        await w.deliver()
        await w.say("ZhaoMin", "1")
        await w.deliver()
        posts = w.fake.posts
        assert posts and w.fake.problems == []
        [notice] = [p for p in w.fake.webhook_posts(DUTY_KEY) if p.content.startswith("【舆情通报】")]
        assert "<＠WangJun>" in notice.content and "＠all" in notice.content and LINK in notice.content
        for post in posts:
            content = post.content
            chosen_markup = {f"<@{userid}>" for userid in WECOM_CHOSEN}
            tail = [token for token in content.split() if token in chosen_markup]
            for token in tail:
                content = content.replace(token, "")
            assert not LIVE_MENTION.search(without_link(content)), (post.kind, post.content)
            assert set(post.mentioned_list) <= WECOM_CHOSEN and post.mentioned_mobile_list == []
        mentioned = {u for p in posts for u in p.mentioned_list}
        markup = {m for p in posts for m in re.findall(r"<@([^>]+)>", p.content)}
        assert (mentioned | markup) == WECOM_CHOSEN  # the policy's people are still mentioned


@pytest.mark.parametrize("message_format", ["text", "markdown"])
async def test_a_report_mentions_only_whom_the_policy_chose_on_dingtalk(
    config: Config, clock: ManualClock, message_format: str
) -> None:
    async with FakeDingTalk(clock) as fake:
        client = await start_bot(dingtalk_config(config, message_format=message_format), clock, fake.environ())
        try:
            for text in (HOSTILE, "1"):
                response = await fake.call(client, fake.message(text))
                assert response.status == 200, await response.text()
                await client.app[RUNTIME].outbox.drain()
        finally:
            await client.close()
    assert fake.posts and fake.problems == []  # the fake checks every atUserIds entry is written as @id
    notice = next(p for p in fake.posts if p.text.startswith("【舆情通报】"))
    assert "＠all" in notice.text and "＠dt_wangjun" in notice.text and LINK in notice.text
    for post in fake.posts:
        at = post.at or {}
        assert at.get("isAtAll") is False and at.get("atMobiles", []) == []
        assert set(at.get("atUserIds", [])) <= DINGTALK_CHOSEN
        text = post.text
        for userid in at.get("atUserIds", []):
            text = text.replace(f"@{userid}", "")
        assert not LIVE_MENTION.search(without_link(text)), post.text
    assert {u for p in fake.posts for u in (p.at or {}).get("atUserIds", [])} == DINGTALK_CHOSEN


def test_neutralising_keeps_text_readable_and_links_working() -> None:
    assert neutralise("请在值班群内 @ 机器人") == "请在值班群内 @ 机器人"  # "@ " starts no mention
    assert neutralise("@all <@x> @13800000001") == "＠all <＠x> ＠13800000001"
    assert neutralise(f"见 {LINK} @dt_x") == f"见 {LINK} ＠dt_x"
    assert neutralise("http://x.example/@all") == "http://x.example/＠all"  # @all nowhere, not even in a link
    assert neutralise("没有提及") == "没有提及"


# -- DingTalk: a signature pair carries one message ------------------------------------------------------------


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeDingTalk]:
    async with FakeDingTalk(clock) as fake:
        yield fake


@pytest.fixture
async def dingtalk(config: Config, clock: ManualClock, fake: FakeDingTalk) -> AsyncIterator[Bot]:
    client = await start_bot(config, clock, fake.environ())
    try:
        yield Bot(client, clock, config)
    finally:
        await client.close()


async def count(bot: Bot, model: Any) -> int:
    async with bot.runtime.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_signature_pair_with_another_msgid_after_2_seconds_is_refused_logged_and_counted(
    dingtalk: Bot, fake: FakeDingTalk, caplog: pytest.LogCaptureFixture
) -> None:
    headers = fake.headers()
    first = fake.message("上报 西岸滨河路路灯不亮")
    assert (await fake.call(dingtalk.client, first, headers=headers)).status == 200
    dingtalk.clock.advance(timedelta(seconds=2))  # a busy robot: two callbacks, one millisecond
    twin = fake.message("上报 东岸滨河路路灯不亮")
    assert (await fake.call(dingtalk.client, twin, headers=headers)).status == 200
    dingtalk.clock.advance(timedelta(milliseconds=500))
    caplog.set_level(logging.WARNING)
    forged = fake.message("上报 伪造：城关镇发生重大事故")
    refused = await fake.call(dingtalk.client, forged, headers=headers)
    assert refused.status == 401
    assert "签名" in (await refused.json())["error"]
    assert any("another msgId" in r.getMessage() for r in caplog.records)
    # DingTalk retrying a message it already sent with this pair is no forgery: 200, handled once.
    assert (await fake.call(dingtalk.client, first, headers=headers)).status == 200
    assert await count(dingtalk, Item) == 2
    metrics = await (await dingtalk.client.get("/metrics")).text()
    assert 'dutybot_callback_signature_reuse_refused_total{channel="dingtalk"} 1.0' in metrics
    # A fresh pair for the same body is fine: the refusal was about the pair, not the message.
    assert (await fake.call(dingtalk.client, forged)).status == 200
    assert await count(dingtalk, Item) == 3


async def test_replicas_share_the_signature_pairs(config: Config, clock: ManualClock, fake: FakeDingTalk) -> None:
    """Two app instances on one database: a pair first used on one is refused on the other."""
    one = await start_bot(config, clock, fake.environ())
    two = await start_bot(config, clock, fake.environ())
    try:
        headers = fake.headers()
        assert (await fake.call(one, fake.message("上报 西岸滨河路路灯不亮"), headers=headers)).status == 200
        clock.advance(timedelta(seconds=3))
        assert (await fake.call(two, fake.message("上报 伪造"), headers=headers)).status == 401
        assert (await fake.call(two, fake.message("上报 东岸滨河路路灯不亮"))).status == 200
    finally:
        await one.close()
        await two.close()


async def test_pairs_are_forgotten_once_outside_the_skew_window(dingtalk: Bot, fake: FakeDingTalk) -> None:
    assert (await fake.call(dingtalk.client, fake.message("上报 西岸滨河路路灯不亮"))).status == 200
    assert await count(dingtalk, SignatureUse) == 1
    skew = next(c.max_skew_seconds for c in dingtalk.config.channels if c.platform == "dingtalk")
    dingtalk.clock.advance(timedelta(seconds=skew + 61))
    assert (await fake.call(dingtalk.client, fake.message("上报 东岸滨河路路灯不亮"))).status == 200
    async with dingtalk.runtime.db.read() as session:
        stamps = list((await session.execute(select(SignatureUse.timestamp_ms))).scalars())
    assert stamps == [now_ms(dingtalk.clock)]


def test_the_process_memory_applies_the_same_rule_when_the_database_is_down(clock: ManualClock) -> None:
    guard = SignatureGuard(channel_id="dingtalk", runtime=None, max_skew=timedelta(minutes=5))  # type: ignore[arg-type]
    assert guard._remember(1, "a", clock.now())
    clock.advance(timedelta(seconds=1))
    assert guard._remember(1, "b", clock.now())  # within 2 s
    clock.advance(timedelta(seconds=2))
    assert not guard._remember(1, "c", clock.now())
    assert guard._remember(1, "a", clock.now())  # a retry
    clock.advance(timedelta(minutes=11))
    assert guard._remember(2, "d", clock.now()) and list(guard._memory) == [2]  # old pairs dropped


# -- reply URLs: the platform's own endpoint or nothing ----------------------------------------------------------


def test_the_platforms_own_reply_endpoints_are_accepted() -> None:
    wecom = reply_urls.ReplyEndpoint.of(**reply_urls.WECOM, configured="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    dingtalk = reply_urls.ReplyEndpoint.of(**reply_urls.DINGTALK,
                                           configured="https://oapi.dingtalk.com/robot/send?access_token=t")
    good_wecom = "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC123"
    good_dingtalk = "https://oapi.dingtalk.com/robot/sendBySession?session=abc123"
    assert wecom.accept(good_wecom) == good_wecom and dingtalk.accept(good_dingtalk) == good_dingtalk
    for bad in ("http://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC",
                "https://qyapi.weixin.qq.com.evil.example/cgi-bin/aibot/response?response_code=RC",
                "https://evil.example@qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC",
                "https://qyapi.weixin.qq.com:8443/cgi-bin/aibot/response?response_code=RC",
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
                "https://qyapi.weixin.qq.com/cgi-bin/aibot/response",
                "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC#x",
                good_dingtalk, 12345, None, "", "javascript:alert(1)", good_wecom + "\n"):
        assert wecom.accept(bad) is None, bad
    assert dingtalk.accept(good_wecom) is None
    # A fake platform on loopback may be plain http; a remote one may not.
    local = reply_urls.ReplyEndpoint.of(**reply_urls.DINGTALK, configured="http://127.0.0.1:9/robot/send?access_token=t")
    assert local.accept("http://127.0.0.1:9/robot/sendBySession?session=s") is not None
    assert local.accept("http://127.0.0.1:10/robot/sendBySession?session=s") is None
    remote = reply_urls.ReplyEndpoint.of(**reply_urls.DINGTALK, configured="http://10.0.0.1/robot/send?access_token=t")
    assert remote.accept("http://10.0.0.1/robot/sendBySession?session=s") is None


@pytest.mark.parametrize("bad", [
    "https://attacker.example/cgi-bin/aibot/response?response_code=X",
    "http://127.0.0.1:1/cgi-bin/aibot/response?response_code=X",
    "{base}/cgi-bin/webhook/send?key=duty-robot-key-0001",
    "{base}/cgi-bin/aibot/response",
    ["not", "a", "url"],
])
async def test_a_wecom_response_url_that_is_not_the_reply_endpoint_is_never_stored(
    config: Config, clock: ManualClock, bad: Any
) -> None:
    async with running(config, clock) as w:
        url = bad.format(base=w.fake.base_url()) if isinstance(bad, str) else bad
        payload = aibot_message(msgid="MSG-BADURL", userid="ZhaoMin", text="@值班助手 上报 西岸滨河路路灯不亮")
        payload["response_url"] = url
        query, body = w.wecom.json_callback(payload, w.timestamp())
        assert (await w.post(query, body))[0] == 200
        await w.deliver()
        assert w.fake.reply_posts() == []
        [reply] = w.fake.webhook_posts(DUTY_KEY)  # on the group robot, as the URL was dropped
        assert reply.content.startswith("已受理舆情线索 #1")
        async with w.bot.runtime.db.read() as session:
            stored = list((await session.execute(select(OutboxMessage.reply_url))).scalars())
        assert stored and all(value is None for value in stored)
        metrics = await (await w.bot.client.get("/metrics")).text()
        assert 'dutybot_reply_urls_dropped_total{channel="wecom"} 1.0' in metrics


@pytest.mark.parametrize(("url", "expires"), [
    ("https://attacker.example/robot/sendBySession?session=x", None),
    ("http://127.0.0.1:1/robot/sendBySession?session=x", None),
    ("{base}/robot/send?access_token=x", None),
    ("{base}/robot/sendBySession", None),
    ("{base}/robot/sendBySession?session={session}", 10**20),
    ("{base}/robot/sendBySession?session={session}", -5),
    ("{base}/robot/sendBySession?session={session}", 1e20),
    ("{base}/robot/sendBySession?session={session}", "soon"),
    ("{base}/robot/sendBySession?session={session}", "past"),
])
async def test_a_dingtalk_session_webhook_that_is_not_dingtalks_or_not_current_is_never_stored(
    dingtalk: Bot, fake: FakeDingTalk, url: str, expires: Any
) -> None:
    message = fake.message("上报 西岸滨河路路灯不亮")
    session = message["sessionWebhook"].split("session=")[1]
    message["sessionWebhook"] = url.format(base=fake.base_url, session=session)
    if expires == "past":
        message["sessionWebhookExpiredTime"] = now_ms(dingtalk.clock) - 1
    elif expires is not None:
        message["sessionWebhookExpiredTime"] = expires
    response = await fake.call(dingtalk.client, message)
    assert response.status == 200, await response.text()
    await dingtalk.runtime.outbox.drain()
    assert [p.kind for p in fake.posts] == ["robot"]
    async with dingtalk.runtime.db.read() as session_:
        stored = list((await session_.execute(select(OutboxMessage.reply_url))).scalars())
    assert stored == [None]


# -- the bench signs each request with its own timestamp ------------------------------------------------------------


async def test_bench_requests_each_carry_their_own_signature(dingtalk: Bot, fake: FakeDingTalk) -> None:
    start = now_ms(dingtalk.clock)
    signatures = dingtalk_signatures(fake.app_secret, start, 6)
    template = cut(dingtalk_message(robot_base=fake.base_url, created_ms=start))
    spec = LoadSpec(path="/callback/dingtalk/dingtalk", headers={}, template=template, text=REPORT_TEXT,
                    run_tag="sig", signatures=signatures, threads=2)
    script = render_lua(spec)
    assert f"local SIGN_FIRST_MS = {start}" in script and "".join(signatures.signs) in script
    assert "local THREADS = 2" in script
    # Thread 2's first request and thread 1's second, as the Lua signs them, a second apart each.
    for thread, counter in ((1, 1), (2, 1), (1, 2), (2, 2)):
        headers = signatures.headers(signature_index(thread, counter, 2))
        assert verify_callback(headers["timestamp"], headers["sign"], fake.app_secret, now_ms=now_ms(dingtalk.clock),
                               max_skew_ms=300_000)
        msg = bench_message_id("sig", thread, counter, numeric=False)
        fake.sessions.add(f"s{msg}")
        body = template.assemble({"id": msg, "text": REPORT_TEXT.format(id=msg)})
        response = await dingtalk.client.post("/callback/dingtalk/dingtalk", data=body.encode(),
                                              headers={**headers, "Content-Type": "application/json"})
        assert response.status == 200, await response.text()
        dingtalk.clock.advance(timedelta(seconds=1))
    assert len({signatures.headers(i)["timestamp"] for i in range(4)}) == 4
    # Past its table the run starts over: those reused pairs are refused, never accepted silently.
    reused = signatures.headers(6)  # = entry 0, first used 4 s ago
    body = template.assemble({"id": "benchsigwrap", "text": REPORT_TEXT.format(id="wrap")})
    refused = await dingtalk.client.post("/callback/dingtalk/dingtalk", data=body.encode(),
                                         headers={**reused, "Content-Type": "application/json"})
    assert refused.status == 401
    assert json.loads(await refused.text())["error"]
