"""The intake API (issue #15, point 3): POST /api/v1/items, GET /api/v1/items[/{n}], through the real
HTTP server on SQLite and PostgreSQL. An item reported by the API is announced in the duty chat
of its unit exactly as 上报 is answered there, and is graded and closed in chat like any other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from domain.config import Config
from domain.vocab import Scope
from store import api_tokens
from store.models import Item, ItemEvent
from tests.conftest import Bot, start_bot

SOURCE = "舆情监测系统"
FIRE = {
    "source_system": SOURCE, "external_id": "yq-20261123-0001", "url": "https://weibo.com/123/fire",
    "title": "城关镇人民路发生火灾", "summary": "网传多人受伤，现场浓烟", "platform": "微博",
    "suggested_grade": "重大", "unit_hint": "城关镇",
}


async def token(bot: Bot, *scopes: Scope, source: str = SOURCE) -> dict[str, str]:
    async with bot.runtime.db.transaction() as session:
        _, plaintext = await api_tokens.create(session, source, scopes or (Scope.ITEMS_WRITE, Scope.ITEMS_READ),
                                               bot.clock.now(), "test")
    return {"Authorization": f"Bearer {plaintext}"}


async def post(bot: Bot, headers: dict[str, str], body: Any, path: str = "/api/v1/items") -> tuple[int, Any]:
    response = await bot.client.post(path, json=body, headers=headers)
    return response.status, await response.json()


async def count(bot: Bot, model: type) -> int:
    async with bot.runtime.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def bot_posts(bot: Bot, chat: str) -> list[str]:
    return [m["text"] for m in await bot.messages(chat) if m["from"] == "bot"]


async def deliver(bot: Bot) -> None:
    await bot.runtime.outbox.drain()  # the delivery the API kicked, then anything left
    while await bot.runtime.outbox.run_once():
        pass


async def test_a_new_item_is_201_with_location_and_announced_in_the_units_chat(bot: Bot) -> None:
    headers = await token(bot)
    response = await bot.client.post("/api/v1/items", json=FIRE, headers=headers)
    assert response.status == 201, await response.text()
    body = await response.json()
    assert response.headers["Location"] == "/api/v1/items/1"
    assert body["number"] == 1 and body["duplicate"] is False
    assert body["status"] == "reported" and body["status_label"] == "待定级" and body["grade"] is None
    assert body["summary"] == "城关镇人民路发生火灾：网传多人受伤，现场浓烟"
    assert body["url"] == "https://weibo.com/123/fire" and body["source"] == "微博"
    assert body["lead_unit"] == {"id": "chengguan", "name": "清河县城关镇人民政府"}
    assert body["reported_by"] == SOURCE
    assert body["deadlines"]["grade"]["remaining_seconds"] == 15 * 60
    await deliver(bot)
    chat = body["chat"]
    [announced] = await bot_posts(bot, chat)
    assert announced.startswith("已受理舆情线索 #1\n来源：微博｜类别：")
    assert ("建议牵头单位：清河县城关镇人民政府\n"
            "请于 11月23日 10:15 前定级，直接回复：1 重大｜2 较大｜3 一般") in announced
    assert "摘要：城关镇人民路发生火灾：网传多人受伤，现场浓烟 https://weibo.com/123/fire" in announced
    assert "上报：舆情监测系统（接口），建议等级：重大" in announced
    async with bot.runtime.db.read() as session:
        reported = (await session.execute(select(ItemEvent).where(ItemEvent.action == "reported"))).scalar_one()
    assert reported.actor == SOURCE and reported.after["suggested_grade"] == "重大"


async def test_the_api_item_is_graded_and_closed_in_chat_like_a_chat_report(bot: Bot) -> None:
    headers = await token(bot)
    status, body = await post(bot, headers, {**FIRE, "unit_hint": None})
    assert status == 201
    await deliver(bot)
    chat = body["chat"]
    officer = "zhao_min"
    graded = await bot.say(officer, "1", chat=chat)  # the grade question was put by the API's report
    assert graded["text"].startswith("【舆情通报】#1 重大舆情")
    assert "签收时限：11月23日 10:30（上报后30分钟内）" in graded["text"]
    status, after = await post(bot, headers, FIRE)  # the same record again: the item, graded now
    assert status == 200 and after["duplicate"] is True and after["grade"] == "重大"


async def test_the_same_record_twice_is_one_item(bot: Bot) -> None:
    headers = await token(bot)
    first, body = await post(bot, headers, FIRE)
    again, repeat = await post(bot, headers, FIRE)
    assert (first, again) == (201, 200)
    assert repeat["number"] == body["number"] and repeat["duplicate"] is True
    # Another record of the same link (another external id) is the same item too (the chat's rule).
    other, same_link = await post(bot, headers, {**FIRE, "external_id": "yq-2", "url": "https://weibo.com/123/fire?from=app"})
    assert other == 200 and same_link["number"] == 1
    assert await count(bot, Item) == 1


async def test_a_repeat_answers_with_the_items_units_as_they_are_now(bot: Bot) -> None:
    """A new item's units come from what was just written; a repeat's are read: the item may have
    been transferred since (here to two units in chat), and the answer says so, single or batch."""
    headers = await token(bot)
    status, body = await post(bot, headers, FIRE)
    assert status == 201 and [u["id"] for u in body["units"]] == ["chengguan"]
    await bot.say("zhao_min", "定级 #1 重大", chat=body["chat"])
    await bot.say("zhao_min", "转办 #1 卫健局、城关镇", chat=body["chat"])
    status, repeat = await post(bot, headers, FIRE)
    assert status == 200 and repeat["lead_unit"]["name"] == "清河县卫生健康局"
    now = [u["id"] for u in repeat["units"]]
    assert len(now) == 2 and now[1] == "chengguan"
    fresh = {**FIRE, "external_id": "yq-new", "url": "https://weibo.com/123/other"}
    status, batch = await post(bot, headers, {"items": [FIRE, fresh]}, path="/api/v1/items:batch")
    assert status == 200
    old_one, new_one = (r["item"] for r in batch["results"])
    assert [u["id"] for u in old_one["units"]] == now
    assert [u["id"] for u in new_one["units"]] == ["chengguan"]


async def test_sixteen_concurrent_identical_requests_make_one_item(bot: Bot) -> None:
    headers = await token(bot)
    results = await asyncio.gather(*(post(bot, headers, FIRE) for _ in range(16)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 15 + [201]
    assert {body["number"] for _, body in results} == {1}
    assert await count(bot, Item) == 1


async def test_without_external_id_the_link_makes_it_idempotent(bot: Bot) -> None:
    headers = await token(bot)
    body = {k: v for k, v in FIRE.items() if k != "external_id"}
    results = await asyncio.gather(*(post(bot, headers, body) for _ in range(8)))
    assert sorted(s for s, _ in results) == [200] * 7 + [201]
    assert await count(bot, Item) == 1


@pytest.mark.parametrize(("headers", "message"), [
    ({}, "未提供有效的接口令牌"), ({"Authorization": "Basic abc"}, "未提供有效的接口令牌"),
    ({"Authorization": "Bearer dtb_wrong"}, "接口令牌无效或已吊销。"),
])
async def test_no_valid_token_is_401(bot: Bot, headers: dict[str, str], message: str) -> None:
    status, body = await post(bot, headers, FIRE)
    assert status == 401 and body["error"]["code"] == "unauthorized" and body["error"]["message"].startswith(message)
    assert await count(bot, Item) == 0


async def test_a_revoked_token_is_401_and_a_missing_scope_403(bot: Bot) -> None:
    reader = await token(bot, Scope.ITEMS_READ)
    status, body = await post(bot, reader, FIRE)
    assert status == 403 and body["error"] == {"code": "forbidden", "message": "该令牌没有“items:write”权限。",
                                                "field": None}
    writer = await token(bot, Scope.ITEMS_WRITE)
    response = await bot.client.get("/api/v1/items", headers=writer)
    assert response.status == 403
    async with bot.runtime.db.transaction() as session:
        [row] = [t for t in await api_tokens.list_all(session) if Scope.ITEMS_WRITE.value in t.scopes]
        await api_tokens.revoke(session, row.id, bot.clock.now(), "test")
    status, body = await post(bot, writer, FIRE)
    assert status == 401


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"summary": "", "title": ""}, None, "标题和摘要不能都为空"),
    ({"url": "ftp://x"}, "url", "须为完整的 http 或 https 链接"),
    ({"suggested_grade": "特别重大"}, "suggested_grade", "只能是 重大、较大、一般"),
    ({"colour": "red"}, "colour", "不认识的字段"),
    ({"source_system": "12345"}, "source_system", "与令牌的来源系统“舆情监测系统”不一致。"),
    ({"unit_hint": "火星"}, "unit_hint", "未找到单位“火星”"),
    ({"published_at": "2026-11-23T10:00:00"}, "published_at", "须带时区"),
    ({"classified": "maybe"}, "classified", "必须是 true 或 false"),
])
async def test_invalid_fields_are_422_naming_the_field(bot: Bot, change: dict[str, Any], field: str | None,
                                                      message: str) -> None:
    status, body = await post(bot, await token(bot), {**FIRE, **change})
    assert status == 422, body
    assert body["error"]["code"] == "invalid" and body["error"]["field"] == field
    assert message in body["error"]["message"]
    assert await count(bot, Item) == 0


async def test_bad_json_too_large_and_wrong_type(bot: Bot) -> None:
    headers = await token(bot)
    response = await bot.client.post("/api/v1/items", data=b"{not json", headers={
        **headers, "Content-Type": "application/json"})
    assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_json"
    response = await bot.client.post("/api/v1/items", data=b"x=1", headers={**headers, "Content-Type": "text/plain"})
    assert response.status == 415
    huge = {**FIRE, "summary": "长" * 10, "title": "x" * 3_000_000}
    status, body = await post(bot, headers, huge)
    assert status == 413 and body["error"]["code"] == "payload_too_large"


@asynccontextmanager
async def bot_with(config: Config, clock: ManualClock, **api: int) -> AsyncIterator[Bot]:
    changed = config.model_copy(update={"api": config.api.model_copy(update=api)})
    client = await start_bot(changed, clock)
    try:
        yield Bot(client, clock, changed)
    finally:
        await client.close()


async def test_rate_limit_is_429_with_retry_after(config: Config, clock: ManualClock) -> None:
    async with bot_with(config, clock, rate_limit_per_minute=3) as bot:
        await rate_limited(bot)


async def rate_limited(bot: Bot) -> None:
    headers = await token(bot, Scope.ITEMS_READ)
    codes = [(await bot.client.get("/api/v1/items", headers=headers)).status for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = await bot.client.get("/api/v1/items", headers=headers)
    assert response.status == 429 and 1 <= int(response.headers["Retry-After"]) <= 60
    assert (await response.json())["error"]["code"] == "rate_limited"


async def test_get_one_item_with_its_timeline_and_classified_rules(bot: Bot) -> None:
    headers = await token(bot)
    await post(bot, headers, {**FIRE, "classified": True})
    response = await bot.client.get("/api/v1/items/1", headers=headers)
    body = await response.json()
    assert response.status == 200
    assert body["classified"] is True and body["url"] is None
    assert body["summary"] == "（涉密线索，详情请按规定渠道查阅）"
    assert body["timeline"][0]["action"] == "reported" and body["timeline"][0]["action_label"] == "上报"
    assert all(e["detail"] is None for e in body["timeline"] if e["action"] == "reported")
    cleared = await token(bot, Scope.ITEMS_READ, Scope.CLASSIFIED_READ)
    full = await (await bot.client.get("/api/v1/items/1", headers=cleared)).json()
    assert full["summary"].startswith("城关镇人民路发生火灾") and full["url"] == "https://weibo.com/123/fire"
    missing = await bot.client.get("/api/v1/items/99", headers=headers)
    assert missing.status == 404 and (await missing.json())["error"]["message"] == "未找到编号为 99 的线索。"


async def test_list_pages_newest_first_without_skipping_or_repeating_under_inserts(
    config: Config, clock: ManualClock
) -> None:
    async with bot_with(config, clock, page_size=3) as bot:
        await pages(bot)


async def pages(bot: Bot) -> None:
    headers = await token(bot)
    for k in range(7):
        await post(bot, headers, {**FIRE, "external_id": f"e{k}", "url": f"https://weibo.com/1/{k}"})
    seen: list[int] = []
    cursor = None
    inserted = 0
    while True:
        params = {"cursor": cursor} if cursor else {}
        page = await (await bot.client.get("/api/v1/items", headers=headers, params=params)).json()
        seen += [i["number"] for i in page["items"]]
        if inserted < 2:  # new items arrive while the client pages
            await post(bot, headers, {**FIRE, "external_id": f"new{inserted}", "url": f"https://weibo.com/2/{inserted}"})
            inserted += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    graded = await (await bot.client.get("/api/v1/items", headers=headers, params={"status": "reported",
                                                                                      "grade": "重大"})).json()
    assert graded["items"] == []
    bad = await bot.client.get("/api/v1/items", headers=headers, params={"cursor": "zzz"})
    assert bad.status == 422 and (await bad.json())["error"]["field"] == "cursor"


async def test_deadlines_count_down_with_the_clock(bot: Bot) -> None:
    headers = await token(bot)
    await post(bot, headers, FIRE)
    bot.clock.advance(timedelta(minutes=20))
    body = await (await bot.client.get("/api/v1/items/1", headers=headers)).json()
    assert body["deadlines"]["grade"]["remaining_seconds"] == -5 * 60


async def test_a_batch_gives_each_item_its_own_result(bot: Bot) -> None:
    headers = await token(bot)
    items = [
        FIRE,
        {**FIRE, "external_id": "yq-2", "url": "https://weibo.com/9/other", "title": "西岸街道路灯不亮",
         "unit_hint": None},
        {**FIRE, "url": "not a link", "external_id": "yq-3"},
        FIRE,  # the first again, in the same batch
        {**FIRE, "external_id": "yq-5", "source_system": "12345"},
    ]
    status, body = await post(bot, headers, {"items": items}, path="/api/v1/items:batch")
    assert status == 200
    assert [r["status"] for r in body["results"]] == [201, 201, 422, 200, 422]
    assert (body["created"], body["duplicates"], body["failed"]) == (2, 1, 2)
    assert body["results"][2]["error"]["field"] == "items[2].url"
    assert body["results"][4]["error"]["field"] == "items[4].source_system"
    assert body["results"][3]["item"]["number"] == body["results"][0]["item"]["number"] == 1
    assert await count(bot, Item) == 2
    await deliver(bot)


async def test_a_batch_over_the_limit_or_empty_is_refused_whole(config: Config, clock: ManualClock) -> None:
    async with bot_with(config, clock, batch_max_items=2) as bot:
        headers = await token(bot)
        status, body = await post(bot, headers, {"items": [FIRE] * 3}, path="/api/v1/items:batch")
        assert status == 413 and body["error"]["message"] == "一次至多提交 2 条。"
        status, body = await post(bot, headers, {"items": []}, path="/api/v1/items:batch")
        assert status == 422 and body["error"]["field"] == "items"
        assert await count(bot, Item) == 0


async def test_an_api_item_is_handled_in_chat_with_the_same_answers_as_a_chat_report(bot: Bot) -> None:
    """#1 comes from the API, #2 is reported in the same chat by hand with the same text; each step
    of their handling in chat answers the same words to the same people (the number aside)."""
    headers = await token(bot)
    status, body = await post(bot, headers, {**FIRE, "external_id": None, "url": None, "platform": None})
    assert status == 201 and body["chat"] == "chengguan_duty"
    chat = "chengguan_duty"
    await bot.say("yang_fan", f"上报 {body['summary']}", chat=chat)
    steps = ["定级 #{n} 重大", "转办 #{n} 城关镇、卫健局", "签收 #{n}", "进展 #{n} 已联系供水公司抢修",
             "回应 #{n} 网上发布 https://qinghe.gov.cn/n/1 已发布情况说明", "办结 #{n} 已处理完毕", "查询 #{n}"]
    senders = ["zhao_min", "zhao_min", "yang_fan", "feng_xue", "yang_fan", "li_hua", "zhao_min"]
    for step, sender in zip(steps, senders, strict=True):
        first = await bot.say(sender, step.format(n=1), chat=chat)
        second = await bot.say(sender, step.format(n=2), chat=chat)
        if step.startswith("查询"):  # the records differ only in who reported and what was sent
            head = first["text"].split("处置记录")[0].replace("#1", "#2").replace("上报：舆情监测系统", "上报：杨帆")
            assert head == second["text"].split("处置记录")[0]
            continue
        if step.startswith("办结"):
            # The result goes back to the reporter: a person is @-mentioned, a source system is not
            # (it learns of it from the item itself, GET /api/v1/items/{n}).
            second = {"text": second["text"].replace("上报人及", "").replace("@杨帆 ", ""),
                      "mentions": [p for p in second["mentions"] if p != "yang_fan"]}
        assert first["text"].replace("#1", "#2") == second["text"], step
        assert first["mentions"] == second["mentions"], step
