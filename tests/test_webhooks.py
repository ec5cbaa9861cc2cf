"""Outgoing webhooks (issue #15, point 4), on SQLite and PostgreSQL: item.reported, item.graded,
item.overdue and item.closed reach a fake receiver that checks every request with the recipe the
README documents (bot/examples/webhook_receiver.py), through the real outbox — retries, replays,
final refusals, filters and 涉密 summaries included."""

from __future__ import annotations

import importlib.util
import json
import logging
import socket
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.channels.base import ChannelStartError
from bot.clock import ManualClock
from bot.deadlines import DeadlineSweep
from bot.webhook_send import TOLERANCE_SECONDS, Endpoint, WebhookSender, sign
from domain.config import Config, WebhookSubscriber, load_config, parse_config
from domain.directory import Directory
from domain.vocab import Scope
from handlers import items as common
from handlers.ops import publish
from handlers.ops.base import Actor, ActorKind, Work
from store import api_tokens
from store import outbox as outbox_store
from store.models import Item, OutboxMessage
from tests.conftest import EXAMPLE_CONFIG, ROOT, START, Bot, start_bot

RECIPE_PATH = ROOT / "bot" / "examples" / "webhook_receiver.py"
TOKEN = "tok-in-the-url-never-logged"
REPORT = "上报 网友在微博反映城关镇东风小区停水三天 https://weibo.com/123/abc"
SOURCE = "舆情监测系统"
FIRE = {
    "source_system": SOURCE, "external_id": "yq-0001", "url": "https://weibo.com/123/fire",
    "title": "城关镇人民路发生火灾", "summary": "网传多人受伤", "platform": "微博", "unit_hint": "城关镇",
}


def load_recipe() -> ModuleType:
    """The receiver's recipe, as the README quotes it."""
    spec = importlib.util.spec_from_file_location("webhook_receiver", RECIPE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RECIPE = load_recipe()


def example_webhooks() -> list[WebhookSubscriber]:
    """The subscribers config.example.toml shows, commented out (on, they would post from every
    deployment copied from it): the block after its 示例 line, uncommented."""
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").split("# 示例（去掉以下各行行首的“# ”即启用）：\n", 1)[1]
    block = [line.removeprefix("#").removeprefix(" ") for line in text.split("\n\n", 1)[0].splitlines()]
    return [WebhookSubscriber.model_validate(entry) for entry in tomllib.loads("\n".join(block))["webhooks"]]


def secret_of(subscriber: str) -> str:
    return f"whsec-{subscriber}-0123456789abcdef"


@dataclass
class Receiver:
    """One subscriber's system: verifies each request as documented, processes each event once.
    `fail`: statuses answered before looking at a request; `lose`: statuses answered after
    processing it (the answer is lost, so dutybot sends it again)."""

    subscriber: str
    clock: ManualClock
    fail: list[int] = field(default_factory=list)
    lose: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        assert request.query["token"] == TOKEN
        if self.fail:
            status = self.fail.pop(0)
        else:
            status = RECIPE.handle(secret_of(self.subscriber), request.headers, body, self.seen, self.events.append,
                                   now=self.clock.now().timestamp())
            if status == 200 and self.lose:
                status = self.lose.pop(0)
        self.requests.append((dict(request.headers), body, status))
        return web.Response(status=status)

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]


class Receivers:
    """The fake systems, one path per subscriber, behind one local test server."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.by_id: dict[str, Receiver] = {}
        app = web.Application()
        app.router.add_post("/hooks/{subscriber}", self._route)
        self.server = TestServer(app)

    def __getitem__(self, subscriber: str) -> Receiver:
        return self.by_id.setdefault(subscriber, Receiver(subscriber, self.clock))

    async def _route(self, request: web.Request) -> web.Response:
        return await self[request.match_info["subscriber"]].handle(request)

    def environ(self, config: Config) -> dict[str, str]:
        """Every subscriber of the config turned on, pointing at its receiver."""
        environ = {}
        for sub in config.webhooks:
            environ[sub.url_env] = f"{self.server.make_url('/hooks/' + sub.id)}?token={TOKEN}"
            environ[sub.secret_env] = secret_of(sub.id)
        return environ


@pytest.fixture
async def receivers(clock: ManualClock) -> AsyncIterator[Receivers]:
    hooks = Receivers(clock)
    await hooks.server.start_server()
    try:
        yield hooks
    finally:
        await hooks.server.close()


@asynccontextmanager
async def running(config: Config, clock: ManualClock, environ: dict[str, str]) -> AsyncIterator[Bot]:
    client = await start_bot(config, clock, environ)
    try:
        yield Bot(client, clock, config)
    finally:
        await client.close()


@pytest.fixture
async def hooked(config: Config, clock: ManualClock, receivers: Receivers) -> AsyncIterator[Bot]:
    """The bot with the example config's two subscribers on: city_platform (every event) and
    chengguan_tasks (item.graded and item.closed of 城关镇's items)."""
    config = with_webhooks(config, *example_webhooks())
    async with running(config, clock, receivers.environ(config)) as bot:
        yield bot


async def deliver(bot: Bot) -> None:
    await bot.runtime.outbox.drain()
    while await bot.runtime.outbox.run_once():
        pass


async def webhook_rows(bot: Bot) -> list[OutboxMessage]:
    async with bot.runtime.db.read() as session:
        rows = (await session.execute(select(OutboxMessage).where(OutboxMessage.chat_id.like("webhook:%"))
                                      .order_by(OutboxMessage.id))).scalars()
        return list(rows)


async def token(bot: Bot, *scopes: Scope) -> dict[str, str]:
    async with bot.runtime.db.transaction() as session:
        _, plaintext = await api_tokens.create(session, SOURCE, scopes or (Scope.ITEMS_WRITE, Scope.ITEMS_READ),
                                               bot.clock.now(), "test")
    return {"Authorization": f"Bearer {plaintext}"}


def with_webhooks(config: Config, *subscribers: WebhookSubscriber) -> Config:
    return config.model_copy(update={"webhooks": list(subscribers)})


# -- the events of an item's life -----------------------------------------------------------------------


async def test_chat_report_grade_and_close_each_reach_the_subscribers_signed(bot_with_life: Bot,
                                                                               receivers: Receivers) -> None:
    city, town = receivers["city_platform"], receivers["chengguan_tasks"]
    assert city.types() == ["item.reported", "item.graded", "item.closed"]
    assert all(status == 200 for _, _, status in city.requests + town.requests)  # every signature verified
    reported, graded, closed = city.events
    assert set(reported) == {"id", "type", "created_at", "data"}
    assert reported["created_at"] == "2026-11-23T02:00:00Z"  # 10:00 in Shanghai, written in UTC
    assert reported["data"]["actor"] == {"id": "liu_yang", "name": "刘洋", "kind": "person"}
    item = reported["data"]["item"]
    assert item["number"] == 1 and item["status"] == "reported" and item["grade"] is None
    assert item["url"] == "https://weibo.com/123/abc" and item["lead_unit"]["id"] == "dongfeng"
    assert item["deadlines"]["grade"] == {"due_at": "2026-11-23T02:15:00Z", "remaining_seconds": 900,
                                          "stopped_at": None}
    assert graded["data"]["grade"] == "重大" and graded["data"]["previous_grade"] is None
    assert graded["data"]["item"]["status"] == "graded" and "pass_on" in graded["data"]["item"]["deadlines"]
    assert closed["data"]["verdict"] == "已恢复供水，群众满意" and closed["data"]["item"]["status"] == "closed"
    assert closed["data"]["actor"]["id"] == "li_hua"
    # The headers name the event; the delivery id is the event's id; the timestamp is the signing time.
    for headers, body, _ in city.requests:
        event = json.loads(body)
        assert headers["X-Dutybot-Event"] == event["type"] and headers["X-Dutybot-Delivery"] == event["id"]
        assert headers["X-Dutybot-Signature"].startswith("v1=") and headers["X-Dutybot-Timestamp"].isdigit()
        assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert len({event["id"] for event in city.events}) == 3
    # 城关镇's system wants grades and closings of its items (东风社区 is under 城关镇): the same events, same ids.
    assert town.types() == ["item.graded", "item.closed"]
    assert [e["id"] for e in town.events] == [graded["id"], closed["id"]]


async def test_the_events_item_is_the_apis_item(bot_with_life: Bot, receivers: Receivers) -> None:
    bot = bot_with_life
    response = await bot.client.get("/api/v1/items", headers=await token(bot, Scope.ITEMS_READ))
    assert response.status == 200
    [listed] = (await response.json())["items"]
    closed = receivers["city_platform"].events[-1]
    assert closed["data"]["item"] == listed  # one item model for whoever reads both


@pytest.fixture
async def bot_with_life(hooked: Bot) -> Bot:
    """An item reported, graded, assigned, acknowledged, answered and closed in chat."""
    bot = hooked
    await bot.say("liu_yang", REPORT)
    await bot.say("zhao_min", "1")
    await bot.say("zhao_min", "转办 #1 城关镇、卫健局")
    bot.clock.advance(timedelta(minutes=20))
    await bot.say("yang_fan", "签收 #1")
    await bot.say("yang_fan", "回应 #1 网上发布 https://qinghe.gov.cn/n/1 已发布停水情况说明")
    closed = await bot.say("li_hua", "办结 #1 已恢复供水，群众满意")
    assert closed["text"].startswith("#1 已办结")
    await deliver(bot)
    return bot


async def test_an_item_reported_by_the_api_posts_the_same_events(hooked: Bot, receivers: Receivers) -> None:
    bot = hooked
    response = await bot.client.post("/api/v1/items", json=FIRE, headers=await token(bot))
    assert response.status == 201
    body = await response.json()
    await deliver(bot)
    [reported] = receivers["city_platform"].events
    assert reported["type"] == "item.reported"
    assert reported["data"]["actor"] == {"id": SOURCE, "name": SOURCE, "kind": ActorKind.API.value}
    assert reported["data"]["item"]["lead_unit"] == {"id": "chengguan", "name": "清河县城关镇人民政府"}
    assert receivers["chengguan_tasks"].events == []  # it wants no item.reported
    await bot.say("zhao_min", "定级 #1 较大", chat=body["chat"])
    await deliver(bot)
    assert receivers["city_platform"].types() == ["item.reported", "item.graded"]
    assert receivers["chengguan_tasks"].types() == ["item.graded"]
    again = await bot.client.post("/api/v1/items", json=FIRE, headers=await token(bot))
    assert again.status == 200  # the same record: no new item, no new event
    await deliver(bot)
    assert receivers["city_platform"].types() == ["item.reported", "item.graded"]


async def test_the_sweep_posts_item_overdue_once_per_deadline(hooked: Bot, receivers: Receivers) -> None:
    bot = hooked
    await bot.say("liu_yang", REPORT)
    bot.clock.advance(timedelta(minutes=5))
    await bot.say("zhao_min", "1")  # 重大: pass-on due 10:30
    bot.clock.advance(timedelta(minutes=26))  # 10:31
    other = DeadlineSweep(db=bot.runtime.db, clock=bot.clock, config=bot.runtime.config,
                          directory=bot.runtime.directory, duty=bot.runtime.duty)
    for sweep in (bot.runtime.deadlines, other, bot.runtime.deadlines):
        await sweep.run_once()
        await deliver(bot)
    overdue = [e for e in receivers["city_platform"].events if e["type"] == "item.overdue"]
    assert len(overdue) == 1
    assert overdue[0]["data"]["clock"] == "pass_on" and overdue[0]["data"]["due_at"] == "2026-11-23T02:30:00Z"
    assert overdue[0]["data"]["item"]["deadlines"]["pass_on"]["remaining_seconds"] == -60
    bot.clock.advance(timedelta(minutes=30))  # 11:01: the first repeat in chat, no second event
    await bot.runtime.deadlines.run_once()
    await deliver(bot)
    assert [e["type"] for e in receivers["city_platform"].events].count("item.overdue") == 1
    assert "item.overdue" not in receivers["chengguan_tasks"].types()


# -- delivery: retries, replays, refusals ------------------------------------------------------------------


async def test_a_receiver_failing_twice_gets_the_event_once_with_one_id(hooked: Bot, receivers: Receivers) -> None:
    bot, city = hooked, receivers["city_platform"]
    city.fail = [500, 503]
    await bot.say("liu_yang", REPORT)
    await deliver(bot)
    for _ in range(2):
        bot.clock.advance(timedelta(minutes=11))  # past the outbox's backoff (at most 10 minutes)
        await deliver(bot)
    assert [status for _, _, status in city.requests] == [500, 503, 200]
    assert len({headers["X-Dutybot-Delivery"] for headers, _, _ in city.requests}) == 1
    assert len({body for _, body, _ in city.requests}) == 1  # the same body, signed afresh each time
    assert len({headers["X-Dutybot-Timestamp"] for headers, _, _ in city.requests}) == 3
    assert city.types() == ["item.reported"]
    [row] = await webhook_rows(bot)
    assert row.status == outbox_store.SENT and row.attempts == 3 and row.key == "webhook:city_platform:item1:reported"
    bot.clock.advance(timedelta(hours=1))
    await deliver(bot)
    assert len(city.requests) == 3


async def test_a_replay_never_duplicates(hooked: Bot, receivers: Receivers) -> None:
    bot, city = hooked, receivers["city_platform"]
    city.lose = [500]  # the first delivery is processed, its answer lost: sent again, processed once
    for _ in range(2):  # the same chat message twice (a platform's retry)
        response = await bot.client.post("/local/messages", headers={"Idempotency-Key": "msg-1"},
                                         json={"chat": "wecom_duty", "sender": "liu_yang", "text": REPORT})
        assert response.status == 200
    bot.clock.advance(timedelta(minutes=11))
    await deliver(bot)
    async with bot.runtime.db.transaction() as session:  # the operation's event published once more
        item = (await session.execute(select(Item))).scalar_one()
        again = Work(session, bot.runtime.config, bot.runtime.directory, bot.runtime.duty, bot.clock.now())
        await publish.reported(again, Actor("liu_yang", "刘洋"), [item])
    await deliver(bot)
    assert [status for _, _, status in city.requests] == [500, 200]
    assert len({headers["X-Dutybot-Delivery"] for headers, _, _ in city.requests}) == 1
    assert city.types() == ["item.reported"]
    assert len(await webhook_rows(bot)) == 1


async def test_a_final_refusal_is_not_retried_and_the_admins_are_told(
    hooked: Bot, receivers: Receivers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot, city = hooked, receivers["city_platform"]
    city.fail = [410]
    await bot.say("liu_yang", REPORT)
    await deliver(bot)
    bot.clock.advance(timedelta(hours=1))
    await deliver(bot)
    assert [status for _, _, status in city.requests] == [410]
    [row] = await webhook_rows(bot)
    assert row.status == outbox_store.FAILED and row.last_error == "HTTP 410" and row.attempts == 1
    [alert] = [m for m in await bot.messages("ops") if m["from"] == "bot"]
    assert alert["text"].startswith(
        "【系统告警】对外推送“city_platform”的接收方拒收事件（HTTP 410），该事件不再重发：item.reported")
    assert "DUTYBOT_HOOK_CITY_URL" in alert["text"] and alert["mentions"] == ["xu_ming"]
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    assert "webhook city_platform refused event" in logged
    assert TOKEN not in logged and secret_of("city_platform") not in logged


async def test_a_receiver_out_of_reach_is_retried_and_its_url_never_logged(
    config: Config, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as probe:  # a local port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sub = WebhookSubscriber(id="gone", url_env="HOOK_GONE_URL", secret_env="HOOK_GONE_SECRET")
    environ = {"HOOK_GONE_URL": f"http://127.0.0.1:{port}/hooks?token={TOKEN}", "HOOK_GONE_SECRET": secret_of("gone")}
    async with running(with_webhooks(config, sub), clock, environ) as bot:
        await bot.say("liu_yang", REPORT)
        await deliver(bot)
        [row] = await webhook_rows(bot)
    assert row.status == outbox_store.PENDING and row.last_error == "连接失败：ClientConnectorError"
    assert row.due_at > clock.now()  # back in line after the backoff
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records if r.name != "aiohttp.access")
    assert TOKEN not in logged and secret_of("gone") not in logged


async def test_robot_rate_limits_do_not_hold_back_webhooks(hooked: Bot, receivers: Receivers) -> None:
    bot = hooked
    items = [{**FIRE, "external_id": f"yq-{n}", "url": f"https://weibo.com/1/{n}"} for n in range(25)]
    response = await bot.client.post("/api/v1/items:batch", json={"items": items}, headers=await token(bot))
    assert response.status == 200 and (await response.json())["created"] == 25
    await deliver(bot)  # the clock stands still: a robot would have posted 20
    assert receivers["city_platform"].types() == ["item.reported"] * 25
    assert sorted(e["data"]["item"]["number"] for e in receivers["city_platform"].events) == list(range(1, 26))


async def test_past_its_own_budget_an_event_waits_its_turn_and_is_never_folded(
    config: Config, clock: ManualClock, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WebhookSender, "rate_limit", 2)  # 14 events wait for it: more than digest_after (10)
    config = with_webhooks(config, example_webhooks()[0])
    async with running(config, clock, receivers.environ(config)) as bot:
        items = [{**FIRE, "external_id": f"yq-{n}", "url": f"https://weibo.com/1/{n}"} for n in range(14)]
        response = await bot.client.post("/api/v1/items:batch", json={"items": items}, headers=await token(bot))
        assert (await response.json())["created"] == 14
        await deliver(bot)
        assert len(receivers["city_platform"].events) == 2
        for _ in range(6):
            clock.advance(timedelta(seconds=61))
            await deliver(bot)
        rows = await webhook_rows(bot)
    city = receivers["city_platform"]
    assert sorted(e["data"]["item"]["number"] for e in city.events) == list(range(1, 15))
    assert all(status == 200 for _, _, status in city.requests)
    assert {row.status for row in rows} == {outbox_store.SENT} and len(rows) == 14


# -- who gets what -------------------------------------------------------------------------------------------


async def test_a_subscriber_gets_only_the_events_and_units_it_asked_for(hooked: Bot, receivers: Receivers) -> None:
    bot = hooked
    await bot.say("liu_yang", "上报 县卫健局疫苗接种点排长队 https://weibo.com/1/vaccine")
    await bot.say("liu_yang", REPORT)
    await bot.say("zhao_min", "定级 #1 一般")
    await bot.say("zhao_min", "定级 #2 较大")
    await deliver(bot)
    city, town = receivers["city_platform"], receivers["chengguan_tasks"]
    assert [(e["type"], e["data"]["item"]["number"]) for e in city.events] == [
        ("item.reported", 1), ("item.reported", 2), ("item.graded", 1), ("item.graded", 2)]
    assert [(e["type"], e["data"]["item"]["number"]) for e in town.events] == [("item.graded", 2)]
    assert city.events[0]["data"]["item"]["lead_unit"]["id"] == "health"


async def test_classified_items_carry_only_the_summary_unless_cleared(
    config: Config, clock: ManualClock, receivers: Receivers
) -> None:
    open_sub = WebhookSubscriber(id="city_platform", url_env="HOOK_CITY_URL", secret_env="HOOK_CITY_SECRET")
    cleared = WebhookSubscriber(id="secure_archive", url_env="HOOK_ARCHIVE_URL", secret_env="HOOK_ARCHIVE_SECRET",
                                events=["item.reported"], classified=True)
    config = with_webhooks(config, open_sub, cleared)
    async with running(config, clock, receivers.environ(config)) as bot:
        await bot.say("liu_yang", "上报 【涉密】城关镇某敏感事项 https://weibo.com/secret")
        await deliver(bot)
    [(_, plain, _)] = receivers["city_platform"].requests
    [shown] = receivers["city_platform"].events
    assert shown["data"]["item"]["summary"] == common.CLASSIFIED_SUMMARY and shown["data"]["item"]["url"] is None
    assert shown["data"]["item"]["classified"] is True
    assert "weibo.com/secret" not in plain.decode() and "敏感事项" not in plain.decode()
    [full] = receivers["secure_archive"].events
    assert "城关镇某敏感事项" in full["data"]["item"]["summary"] and full["data"]["item"]["url"] == "https://weibo.com/secret"
    assert full["id"] == shown["id"]  # one event, two views


# -- the documented recipe -----------------------------------------------------------------------------------


def test_the_documented_verification_recipe() -> None:
    secret, body, now = "whsec-example-0123456789", b'{"id":"e1","type":"item.graded"}', 1_795_000_000
    signature = f"v1={sign(secret, now, body)}"
    assert RECIPE.verify(secret, body, str(now), signature, now=now)
    edge = now - TOLERANCE_SECONDS  # five minutes old: still taken
    assert RECIPE.verify(secret, body, str(edge), f"v1={sign(secret, edge, body)}", now=now)
    assert not RECIPE.verify(secret, body + b" ", str(now), signature, now=now)  # the body changed
    assert not RECIPE.verify("another-secret-0123456789", body, str(now), signature, now=now)
    assert not RECIPE.verify(secret, body, str(now + 1), signature, now=now)  # the timestamp is signed too
    stale = now - TOLERANCE_SECONDS - 1
    assert not RECIPE.verify(secret, body, str(stale), f"v1={sign(secret, stale, body)}", now=now)
    assert not RECIPE.verify(secret, body, "", signature, now=now)
    assert not RECIPE.verify(secret, body, str(now), "v1=" + "0" * 64, now=now)
    assert not RECIPE.verify(secret, body, str(now), "v1=签名", now=now)  # not ASCII: refused, no TypeError
    seen: set[str] = set()
    processed: list[dict[str, Any]] = []
    headers = {"X-Dutybot-Timestamp": str(now), "X-Dutybot-Signature": signature}
    assert [RECIPE.handle(secret, headers, body, seen, processed.append, now=now) for _ in range(2)] == [200, 200]
    assert processed == [{"id": "e1", "type": "item.graded"}]  # a retry is answered, not processed again
    assert RECIPE.handle(secret, {}, body, seen, processed.append, now=now) == 401
    # The README quotes the recipe verbatim, once its section is in.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    if "对外事件推送（Webhook）" in readme:
        assert RECIPE_PATH.read_text(encoding="utf-8").split('"""\n', 1)[1].strip() in readme


def test_the_sender_signs_what_the_recipe_checks() -> None:
    body = b'{"id":"5a1","type":"item.closed","created_at":"2026-11-23T02:00:00Z","data":{}}'
    sub = WebhookSubscriber(id="x", url_env="X_URL", secret_env="X_SECRET")
    clock = ManualClock(START)
    sender = WebhookSender(Endpoint(sub, "https://example.invalid/x?token=t", secret_of("x")),
                           http=lambda: pytest.fail("no request here"), clock=clock,
                           directory=Directory(load_config(EXAMPLE_CONFIG)))
    headers = sender.headers(body, int(clock.now().timestamp()))
    assert headers["X-Dutybot-Event"] == "item.closed" and headers["X-Dutybot-Delivery"] == "5a1"
    assert RECIPE.handle(secret_of("x"), headers, body, set(), lambda _: None, now=clock.now().timestamp()) == 200
    assert sender.endpoint.where == "https://example.invalid/x"  # what a log line may show


# -- configuration -------------------------------------------------------------------------------------------


def test_check_config_names_bad_subscribers_by_id() -> None:
    data = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
    data["webhooks"] = [
        {"id": "same_env", "url_env": "HOOK_A", "secret_env": "HOOK_A"},
        {"id": "bad_event", "url_env": "HOOK_B_URL", "secret_env": "HOOK_B_SECRET", "events": ["item.deleted"]},
        {"id": "bad_unit", "url_env": "HOOK_C_URL", "secret_env": "HOOK_C_SECRET", "units": ["mars"]},
        {"id": "twice", "url_env": "HOOK_D_URL", "secret_env": "HOOK_D_SECRET"},
        {"id": "twice", "url_env": "HOOK_E_URL", "secret_env": "HOOK_E_SECRET", "url": "https://x"},
    ]
    config, problems = parse_config(data)
    assert config is None
    shown = {str(problem) for problem in problems}
    assert "webhooks[same_env]：url_env 与 secret_env 不能是同一个环境变量（地址和签名密钥须分别设置）" in shown
    assert any(s.startswith("webhooks[bad_event].events[第1项]：只能是 item.reported、item.graded") for s in shown)
    assert "webhooks[bad_unit].units[第1项]：未知的单位“mars”" in shown
    assert "webhooks[第5项].id：编号“twice”与前面的对外推送重复" in shown
    assert "webhooks[第5项].url：未知的配置项（请对照 config.example.toml 检查拼写）" in shown


def test_the_example_subscribers_are_valid_and_commented_out() -> None:
    assert load_config(EXAMPLE_CONFIG).webhooks == []
    hooks = example_webhooks()
    assert [(s.id, s.url_env, s.secret_env, s.events, s.units, s.classified) for s in hooks] == [
        ("city_platform", "DUTYBOT_HOOK_CITY_URL", "DUTYBOT_HOOK_CITY_SECRET",
         ["item.reported", "item.graded", "item.overdue", "item.closed"], None, False),
        ("chengguan_tasks", "DUTYBOT_HOOK_CHENGGUAN_URL", "DUTYBOT_HOOK_CHENGGUAN_SECRET",
         ["item.graded", "item.closed"], ["chengguan"], False),
    ]
    data = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["webhooks"] = [hook.model_dump(exclude_none=True) for hook in hooks]
    config, problems = parse_config(data)  # the cross-references hold too (the unit filter)
    assert config is not None and [p for p in problems if not p.warning] == []


@pytest.mark.parametrize(("environ", "message"), [
    ({"DUTYBOT_HOOK_CITY_URL": f"https://hooks.example.cn/in?token={TOKEN}"},
     "对外推送 city_platform 缺少签名密钥：已设置地址 DUTYBOT_HOOK_CITY_URL，未设置 DUTYBOT_HOOK_CITY_SECRET。"),
    ({"DUTYBOT_HOOK_CITY_SECRET": secret_of("city_platform")},
     "对外推送 city_platform 缺少地址：已设置签名密钥 DUTYBOT_HOOK_CITY_SECRET，未设置 DUTYBOT_HOOK_CITY_URL。"),
    ({"DUTYBOT_HOOK_CITY_URL": f"ftp://hooks.example.cn/?token={TOKEN}", "DUTYBOT_HOOK_CITY_SECRET": "x" * 32},
     "对外推送 city_platform 的地址（环境变量 DUTYBOT_HOOK_CITY_URL）不是完整的 http 或 https 地址。"),
    ({"DUTYBOT_HOOK_CITY_URL": "https://hooks.example.cn/in", "DUTYBOT_HOOK_CITY_SECRET": "short"},
     "对外推送 city_platform 的签名密钥（环境变量 DUTYBOT_HOOK_CITY_SECRET）过短"),
], ids=["url_without_secret", "secret_without_url", "not_http", "short_secret"])
def test_a_half_configured_subscriber_refuses_to_start(environ: dict[str, str], message: str) -> None:
    config = with_webhooks(load_config(EXAMPLE_CONFIG), *example_webhooks())
    with pytest.raises(ChannelStartError) as raised:
        create_app(config, clock=ManualClock(START), scheduler=False, environ=environ)
    assert str(raised.value).startswith(message)
    assert TOKEN not in str(raised.value) and "hooks.example.cn" not in str(raised.value)


async def test_a_subscriber_that_is_off_is_said_at_start_and_gets_nothing(
    config: Config, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running(with_webhooks(config, *example_webhooks()), clock, {}) as bot:
        await bot.say("liu_yang", REPORT)
        await bot.say("zhao_min", "1")
        await deliver(bot)
        assert await webhook_rows(bot) == []
        assert bot.runtime.config.webhooks == []
    said = [r.getMessage() for r in caplog.records if r.name == "bot.app"]
    assert ("对外推送 city_platform 未启用：环境变量 DUTYBOT_HOOK_CITY_URL、DUTYBOT_HOOK_CITY_SECRET 均未设置。"
            in said)
    assert any(line.startswith("对外推送 chengguan_tasks 未启用") for line in said)


def test_a_logged_address_has_no_credentials_nor_query() -> None:
    sub = WebhookSubscriber(id="x", url_env="X_URL", secret_env="X_SECRET")
    endpoint = Endpoint(sub, f"https://user:pw@hooks.example.cn:8443/in/x?token={TOKEN}#frag", "s" * 32)
    assert endpoint.where == "https://hooks.example.cn:8443/in/x"


async def test_no_response_and_merge_end_an_item_as_item_closed(hooked: Bot, receivers: Receivers) -> None:
    """An item is finished three ways (办结, 不予回应, 合并): each tells subscribed systems item.closed,
    the item's status saying which, a merged item naming the one it went into."""
    bot = hooked
    for text in ("上报 城关镇人民路积水严重 https://weibo.com/1/a", "上报 城关镇人民路积水 https://weibo.com/1/b"):
        await bot.say("liu_yang", text)
    await bot.say("zhao_min", "定级 #1 一般")
    await bot.say("zhao_min", "定级 #2 一般")
    await bot.say("li_hua", "不予回应 #1 经核实为个人诉求，已电话答复")
    await bot.say("li_hua", "合并 #2 #1")
    await deliver(bot)
    closed = [event for event in receivers["city_platform"].events if event["type"] == "item.closed"]
    assert [(e["data"]["item"]["number"], e["data"]["item"]["status"], e["data"]["merged_into"]) for e in closed] == [
        (1, "no_response", None), (2, "merged", 1)]
    assert closed[0]["data"]["verdict"] == "经核实为个人诉求，已电话答复"
    assert [e["data"]["actor"]["id"] for e in closed] == ["li_hua", "li_hua"]
