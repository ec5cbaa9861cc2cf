"""Conversations scripted through the real HTTP entry point, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from domain.config import Config
from domain.vocab import ItemStatus
from store.models import ChatMessage, Item, ItemEvent, OutboxMessage, PendingQuestion
from tests.conftest import Bot

REPORT = "上报 网友在微博反映城关镇东风小区停水三天 https://weibo.com/123/abc"
MAJOR = ["shen_hao", "han_mei", "yang_fan", "zhao_min", "li_hua"]


async def count(bot: Bot, model: type) -> int:
    async with bot.runtime.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def item(bot: Bot, number: int) -> Item:
    async with bot.runtime.db.read() as session:
        return (await session.execute(select(Item).where(Item.number == number))).scalar_one()


async def events(bot: Bot, action: str) -> list[ItemEvent]:
    async with bot.runtime.db.read() as session:
        result = await session.execute(select(ItemEvent).where(ItemEvent.action == action).order_by(ItemEvent.id))
        return list(result.scalars())


async def reported(bot: Bot, sender: str = "liu_yang", text: str = REPORT) -> dict[str, object]:
    return await bot.say(sender, text)


# -- report and grade -----------------------------------------------------------------------------


async def test_report_asks_for_grade_with_source_and_unit(bot: Bot) -> None:
    reply = await reported(bot)
    assert reply["text"].startswith("已受理舆情线索 #1")
    assert "来源：微博" in reply["text"]
    assert "建议牵头单位：城关镇东风社区居民委员会" in reply["text"] or "城关镇" in reply["text"]
    assert "11月23日 10:15 前定级" in reply["text"]
    assert reply["mentions"] == ["zhao_min"]  # the configured duty officer of the chat
    stored = await item(bot, 1)
    assert stored.source == "微博" and stored.link == "https://weibo.com/123/abc"
    assert stored.status == ItemStatus.REPORTED and stored.grade is None
    assert stored.lead_unit_id in ("dongfeng", "chengguan")


async def test_major_notice_mentions_everyone_in_policy_and_copies_coordinators(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 城关镇人民路发生火灾，网传多人受伤")
    reply = await bot.say("zhao_min", "1")
    assert reply["text"].startswith("【舆情通报】#1 重大舆情")
    assert reply["mentions"] == MAJOR
    assert "签收时限：11月23日 10:30（上报后30分钟内）" in reply["text"]
    assert "回应时限：11月24日 10:00（上报后24小时内）" in reply["text"]
    assert "@沈浩 @韩梅 @杨帆 @赵敏 @李华" in reply["text"]
    copies = [m for m in await bot.messages("coordinators") if m["from"] == "bot"]
    assert len(copies) == 1 and copies[0]["text"].startswith("【舆情通报】#1 重大舆情")
    graded = await item(bot, 1)
    assert graded.grade == "重大" and graded.graded_by == "zhao_min" and graded.status == ItemStatus.GRADED


async def test_significant_adds_leader_on_duty_but_not_principal(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 城关镇老街商户反映占道经营整治")
    reply = await bot.say("zhao_min", "较大")
    assert reply["mentions"] == ["han_mei", "yang_fan", "zhao_min", "li_hua"]
    assert "签收时限：11月23日 12:00（上报后2小时内）" in reply["text"]
    assert "回应时限：11月25日 10:00（上报后48小时内）" in reply["text"]
    # 较大 grade notices are copied to the coordinators too (004 第八条, 第十条; test_regulations.py)
    copies = [m for m in await bot.messages("coordinators") if m["from"] == "bot"]
    assert [c["text"].splitlines()[0] for c in copies] == ["【舆情通报】#1 较大舆情"]


async def test_general_mentions_leader_liaison_and_duty_officer(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 西岸滨河路路灯不亮")
    reply = await bot.say("zhao_min", "定级 #1 一般")
    assert reply["mentions"] == ["qin_lei", "you_jia", "zhao_min"]
    assert "签收时限：11月24日 10:00（上报后24小时内）" in reply["text"]


async def test_regrade_recomputes_from_report_time_and_is_audited(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 城关镇老街商户反映占道经营整治")
    await bot.say("zhao_min", "定级 #1 较大")
    bot.clock.advance(timedelta(hours=1))
    reply = await bot.say("li_hua", "定级 1号 重大")
    assert reply["text"].startswith("【舆情通报】#1 等级调整：较大 → 重大")
    assert "签收时限：11月23日 10:30" in reply["text"]  # from the report time, already past
    assert reply["mentions"] == MAJOR
    [event] = await events(bot, "regraded")
    assert event.before["grade"] == "较大" and event.after["grade"] == "重大"
    assert event.actor == "li_hua"
    same = await bot.say("li_hua", "定级 #1 重大")
    assert "无需调整" in same["text"]


async def test_number_and_grade_without_the_verb_is_a_grade_command(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 城关镇老街商户反映占道经营整治")
    reply = await bot.say("zhao_min", "＃１　较大")  # full-width, not the person the question went to
    assert reply["text"].startswith("【舆情通报】#1 较大")
    reply = await bot.say("li_hua", "1号重大")
    assert reply["text"].startswith("【舆情通报】#1 等级调整：较大 → 重大")
    refused = await bot.say("liu_yang", "#1 一般")  # the same permission as 定级
    assert refused["text"].startswith("抱歉，您无权对 #1 执行“定级”")
    # no number mark: not read as grading
    assert (await bot.say("li_hua", "1 2"))["text"].startswith("未识别的指令")
    # a grade of another scale (特大 = 特别重大): not graded, the list of grades (issue #14 p3)
    assert (await bot.say("li_hua", "#1 特大"))["text"] == (
        "等级只有三级：重大、较大、一般（也可写 1、2、3）。请发送“定级 #1 重大/较大/一般”。"
    )
    assert [e.after["grade"] for e in await events(bot, "regraded")] == ["重大"]


async def test_grade_question_expires_with_a_clear_answer(bot: Bot) -> None:
    await reported(bot)
    bot.clock.advance(timedelta(minutes=16))
    reply = await bot.say("zhao_min", "2")
    assert reply["text"] == "#1 的定级询问已于 11月23日 10:15 过期。请发送“定级 #1 重大/较大/一般”完成定级。"
    assert (await item(bot, 1)).grade is None
    # The question is answered once: a second "2" is no longer taken as an answer.
    again = await bot.say("zhao_min", "2")
    assert again["text"].startswith("您当前没有待回复的定级询问")


async def test_only_people_asked_may_answer_with_a_bare_number(bot: Bot) -> None:
    await reported(bot)
    # education's leader was not asked and may not grade this item: the polite refusal (004 第六条)
    reply = await bot.say("wei_na", "1")
    assert reply["text"].startswith("抱歉，您无权对 #1 执行“定级”")
    assert (await item(bot, 1)).grade is None
    assert await count(bot, PendingQuestion) > 0
    refused = await bot.say("liu_yang", "3")  # the reporter, a plain monitor, may not grade either
    assert refused["text"].startswith("抱歉，您无权对 #1 执行“定级”")
    assert (await item(bot, 1)).grade is None
    await bot.say("zhao_min", "3")  # the officer on duty was asked
    assert (await item(bot, 1)).grade == "一般"
    assert await count(bot, PendingQuestion) == 0  # everyone's copy of the question is closed


async def test_implicit_reports(bot: Bot) -> None:
    first = await bot.say("liu_yang", "@舆情值班助手 请看这条 https://mp.weixin.qq.com/s/abc")
    assert first["text"].startswith("已受理舆情线索 #1") and "微信公众号" in first["text"]
    second = await bot.say("liu_yang", "舆情：抖音上有人称教育局招生违规 https://www.douyin.com/video/1")
    assert second["text"].startswith("已受理舆情线索 #2") and "抖音" in second["text"]
    assert (await item(bot, 2)).lead_unit_id == "education"


async def test_full_width_input_is_understood(bot: Bot) -> None:
    await reported(bot)
    reply = await bot.say("zhao_min", "定级　＃１　较大")
    assert reply["text"].startswith("【舆情通报】#1 较大舆情")


async def test_classified_report_keeps_details_out_of_the_group(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 【涉密】城关镇某敏感事项 https://weibo.com/secret")
    reply = await bot.say("zhao_min", "1")
    assert "https://weibo.com/secret" not in reply["text"]
    assert "涉密线索" in reply["text"]
    assert (await item(bot, 1)).classified is True


# -- the workflow ---------------------------------------------------------------------------------


async def test_full_lifecycle(bot: Bot) -> None:
    await reported(bot)
    await bot.say("zhao_min", "1")
    assigned = await bot.say("zhao_min", "转办 #1 城关镇、卫健局")
    assert "城关镇人民政府（牵头）" in assigned["text"] and "卫生健康局（配合）" in assigned["text"]
    assert assigned["mentions"] == ["han_mei", "yang_fan", "zheng_qiang", "feng_xue"]
    bot.clock.advance(timedelta(minutes=20))
    ack = await bot.say("yang_fan", "签收 #1")
    assert ack["text"].startswith("#1 已签收（杨帆，11月23日 10:20），签收计时停止。")
    again = await bot.say("han_mei", "签收 #1")
    assert "已由 杨帆 于 11月23日 10:20 签收" in again["text"]
    note = await bot.say("feng_xue", "进展 #1 已联系供水公司抢修")
    assert note["text"].startswith("#1 进展已记录")
    answered = await bot.say("yang_fan", "回应 #1 网上发布 https://qinghe.gov.cn/n/1 已发布停水情况说明")
    assert "已记录回应：网上发布 https://qinghe.gov.cn/n/1" in answered["text"]
    closed = await bot.say("li_hua", "办结 #1 已恢复供水，群众满意")
    assert closed["text"].startswith("#1 已办结")
    stored = await item(bot, 1)
    assert stored.status == ItemStatus.CLOSED and stored.verdict == "已恢复供水，群众满意"
    assert stored.response_form == "网上发布" and stored.response_link == "https://qinghe.gov.cn/n/1"
    timeline = await bot.say("zhao_min", "查询 #1")
    for word in ("上报", "定级 重大", "转办", "签收", "进展 已联系供水公司抢修", "回应", "办结"):
        assert word in timeline["text"], word
    late = await bot.say("yang_fan", "签收 #1")
    assert late["text"] == "#1 已办结，不能再签收。"


async def test_close_needs_a_response_first(bot: Bot) -> None:
    await reported(bot)
    reply = await bot.say("zhao_min", "办结 #1 处理完毕")
    assert "尚未回应" in reply["text"]
    assert (await item(bot, 1)).status == ItemStatus.REPORTED


async def test_no_response_needs_a_leader(bot: Bot) -> None:
    await reported(bot)
    await bot.say("zhao_min", "转办 #1 城关镇")
    refused = await bot.say("yang_fan", "不予回应 #1 个人诉求，已电话答复")  # a liaison, not a leader
    assert refused["text"].startswith("抱歉，您无权对 #1 执行“不予回应”")
    done = await bot.say("han_mei", "不予回应 #1 个人诉求，已电话答复")
    assert "经 韩梅 决定不予回应" in done["text"]
    assert (await item(bot, 1)).status == ItemStatus.NO_RESPONSE


async def test_merge_and_refer(bot: Bot) -> None:
    await reported(bot)
    await reported(bot, text="上报 又有网友反映东风小区停水 https://weibo.com/456")
    merged = await bot.say("zhao_min", "合并 #2 #1")
    assert merged["text"] == "#2 已并入 #1，后续请在 #1 办理。"
    assert (await item(bot, 2)).merged_into == 1
    assert "不能把 #1 合并到它自己" in (await bot.say("zhao_min", "合并 #1 #1"))["text"]
    referred = await bot.say("zhao_min", "移交 #1 公安")
    assert referred["text"] == "#1 已移交公安机关。承办单位仍须按时回应。"
    twice = await bot.say("zhao_min", "移交 #1 公安")
    assert "无需重复移交" in twice["text"]
    assert (await item(bot, 1)).referred_to == ["公安"]


async def test_reassigning_the_lead_restarts_acknowledgement(bot: Bot) -> None:
    await reported(bot)
    await bot.say("zhao_min", "1")
    await bot.say("zhao_min", "转办 #1 城关镇")
    await bot.say("yang_fan", "签收 #1")
    # After 签收 the lead is changed by a coordinator, with a reason (000 §三; test_assignment.py).
    await bot.say("wang_jun", "转办 #1 西岸街道 理由：经核实属西岸街道辖区")
    stored = await item(bot, 1)
    assert stored.acknowledged_at is None and stored.status == ItemStatus.ASSIGNED
    assert stored.lead_unit_id == "xian"


async def test_todo_lists_most_urgent_first(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 城关镇老街商户反映占道经营整治")  # #1, graded 一般: 24 h
    await bot.say("zhao_min", "3")
    await bot.say("liu_yang", "上报 人民路积水严重")  # #2, ungraded: grade due in 15 min
    bot.clock.advance(timedelta(minutes=5))
    reply = await bot.say("zhao_min", "待办", chat="chengguan_duty")
    lines = reply["text"].splitlines()
    assert lines[0] == "本群待办（清河县城关镇人民政府）：2项，按紧急程度排列"
    assert lines[1].startswith("#2【未定级】待定级｜定级剩余10分钟")
    assert lines[2].startswith("#1【一般】已定级｜签收剩余23小时55分钟")
    empty = await bot.say("zhao_min", "待办", chat="dingtalk_duty")
    assert "当前没有待办事项" in empty["text"] or "#" in empty["text"]


# -- permissions and bad input --------------------------------------------------------------------


async def test_refusal_is_polite_and_writes_only_an_audit_entry(bot: Bot) -> None:
    await reported(bot)
    reply = await bot.say("liu_yang", "定级 #1 重大")
    assert reply["text"].startswith("抱歉，您无权对 #1 执行“定级”")
    assert (await item(bot, 1)).grade is None
    [refusal] = await events(bot, "refused")
    assert refusal.actor == "liu_yang" and refusal.detail.startswith("定级")
    for command in ("转办 #1 城关镇", "办结 #1 好了", "合并 #1 #1", "移交 #1 网信"):
        text = (await bot.say("liu_yang", command))["text"]
        assert text.startswith("抱歉，您无权") or "不能把" in text, command


async def test_bad_input_gets_clear_answers_and_writes_nothing(bot: Bot) -> None:
    await reported(bot)
    items_before, events_before = await count(bot, Item), await count(bot, ItemEvent)
    cases = {
        "随便聊聊": "未识别的指令。发送“帮助”查看可用指令。",
        "查询 #99": "未找到 #99，请用“待办”查看当前事项，或核对编号。",
        "定级 #1 特大": "等级只有三级：重大、较大、一般（也可写 1、2、3）。请发送“定级 #1 重大/较大/一般”。",
        "定级 #1 随便": "“随便”不是有效等级，请用 重大、较大 或 一般（也可写 1、2、3）。",
        "定级 重大": "用法：定级 #编号 等级",
        "转办 #1 城官镇": "未找到单位“城官镇”。您是不是要找：清河县城关镇人民政府？",
        "回应 #1 发朋友圈 已处理": "用法：回应 #编号 方式",
        "上报": "请在“上报”后写明线索内容",
    }
    for text, expected in cases.items():
        reply = await bot.say("zhao_min", text)
        assert reply["text"].startswith(expected), (text, reply["text"])
    too_long = await bot.say("zhao_min", "上报 " + "很" * 4001)
    assert too_long["text"].startswith("消息过长（4004字）")
    assert await count(bot, Item) == items_before
    assert await count(bot, ItemEvent) == events_before


async def test_unknown_sender_gets_one_polite_answer(bot: Bot) -> None:
    reply = await bot.say("stranger", REPORT)
    assert "尚未登记" in reply["text"] and "许明" in reply["text"]
    assert await count(bot, Item) == 0


async def test_help_lists_every_command(bot: Bot) -> None:
    text = (await bot.say("liu_yang", "帮助"))["text"]
    for verb in ("上报", "定级", "转办", "签收", "进展", "回应", "办结", "不予回应", "合并", "移交", "查询", "待办"):
        assert verb in text


async def test_http_errors_are_400_in_chinese_and_write_nothing(bot: Bot) -> None:
    bodies: list[tuple[str, str]] = [
        ("not json", "请求体不是有效的 JSON 对象。"),
        ('["a"]', "请求体不是有效的 JSON 对象。"),
        ('{"chat": "wecom_duty", "sender": "zhao_min"}', "缺少字段或类型不对：text（应为字符串）。"),
        ('{"chat": "nope", "sender": "zhao_min", "text": "帮助"}', "未知的群聊“nope”，可用的群聊见 /local/directory。"),
        ('{"chat": "wecom_duty", "sender": "zhao_min", "text": "  "}', "消息内容不能为空。"),
    ]
    for body, error in bodies:
        response = await bot.client.post("/local/messages", data=body, headers={"Content-Type": "application/json"})
        assert response.status == 400
        assert (await response.json()) == {"error": error}
    assert await count(bot, ChatMessage) == 0
    response = await bot.client.get("/local/messages", params={"chat": "nope"})
    assert response.status == 400
    response = await bot.client.get("/local/messages", params={"chat": "wecom_duty", "after": "x"})
    assert response.status == 400
    big = await bot.client.post("/local/messages", data=b"x" * (70 * 1024),
                                headers={"Content-Type": "application/json"})
    assert big.status == 413


# -- the local channel's other endpoints ------------------------------------------------------------


async def test_message_log_has_everything_said_in_order(bot: Bot) -> None:
    await reported(bot)
    await bot.say("zhao_min", "1")
    log = await bot.messages("wecom_duty")
    assert [m["from"] for m in log] == ["liu_yang", "bot", "zhao_min", "bot"]
    assert log[3]["mentions"] == MAJOR
    assert log[0]["at"].startswith("2026-11-23T10:00:00") and log[0]["at"].endswith("+08:00")
    tail = await bot.messages("wecom_duty", after=log[1]["seq"])
    assert [m["seq"] for m in tail] == [log[2]["seq"], log[3]["seq"]]


async def test_directory_shape(bot: Bot, config: Config) -> None:
    body = await (await bot.client.get("/local/directory")).json()
    assert {u["id"] for u in body["units"]} == {u.id for u in config.units}
    assert {"id", "name", "parent"} <= set(body["units"][0])
    chat = next(c for c in body["chats"] if c["id"] == "wecom_duty")
    assert chat["platform"] == "wecom" and chat["unit"] == "gov_office" and chat["name"]
    li_hua = next(p for p in body["people"] if p["id"] == "li_hua")
    assert {"role": "分管领导", "unit": "gov_office"} in li_hua["roles"]
    assert {"role": "带班领导", "unit": None} in li_hua["roles"]


async def test_simulator_page_is_served(bot: Bot) -> None:
    response = await bot.client.get("/sim")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = await response.text()
    assert "/local/messages" in page and "/local/directory" in page


async def test_concurrent_reports_get_distinct_numbers(bot: Bot) -> None:
    replies = await asyncio.gather(*(bot.post("wecom_duty", "liu_yang", f"上报 测试线索{i}") for i in range(20)))
    numbers = sorted(int(r[0]["text"].split("#")[1].split("\n")[0]) for r in replies)
    assert numbers == list(range(1, 21))
    assert await count(bot, Item) == 20


async def test_outbox_copy_is_delivered_once(bot: Bot) -> None:
    await reported(bot)
    await bot.say("zhao_min", "1")
    assert await bot.runtime.outbox.run_once() == 0  # already delivered by the message's own flush
    async with bot.runtime.db.read() as session:
        rows = list((await session.execute(select(OutboxMessage))).scalars())
    assert len(rows) == 1 and rows[0].status == "sent" and rows[0].chat_id == "coordinators"


async def test_implicit_report_needs_a_separator_after_the_mark(bot: Bot) -> None:
    # "舆情日志" is the daily log's command (issue #16), not a report "舆情 …".
    assert (await bot.say("liu_yang", "舆情日志"))["text"].startswith("舆情日志（2026年11月23日）")
    assert (await bot.say("liu_yang", "舆情 西岸工业园异味扰民"))["text"].startswith("已受理舆情线索 #1")
    assert (await item(bot, 1)).summary == "西岸工业园异味扰民"


async def test_second_report_says_which_item_still_waits(bot: Bot) -> None:
    await reported(bot, sender="zhao_min")  # the officer on duty reports: he is asked for the grade
    second = await reported(bot, sender="zhao_min", text="上报 西岸滨河路路灯不亮")
    assert second["text"].endswith("\n（#1 仍待定级，请发送“定级 #1 等级”。）")


async def test_community_item_reaches_the_towns_leaders(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 东风小区电梯停运一周")
    assert (await item(bot, 1)).lead_unit_id == "dongfeng"
    reply = await bot.say("zhao_min", "1")
    # 东风社区 has a liaison only; its principal and leader in charge are the town's (属地管理).
    assert reply["mentions"] == MAJOR
    assert "东风小区电梯停运一周" in reply["text"]
    assert reply["text"].count("https://") == 0


async def test_notice_shows_the_link_once(bot: Bot) -> None:
    await reported(bot)
    reply = await bot.say("zhao_min", "1")
    assert reply["text"].count("https://weibo.com/123/abc") == 1


async def test_query_shows_the_link_once_on_the_source_line(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 城关镇人民路积水严重 https://weibo.com/1")
    details = (await bot.say("zhao_min", "查询 #1"))["text"].splitlines()
    assert "摘要：城关镇人民路积水严重" in details
    assert "来源：微博 https://weibo.com/1" in details
    assert sum("https://weibo.com/1" in line for line in details) == 1


async def test_an_answer_without_a_question_says_so(bot: Bot) -> None:
    assert (await bot.say("zhao_min", "在"))["text"] == "本群当前没有需要您应答的点名。"
    assert (await bot.say("zhao_min", "重大"))["text"].startswith("您当前没有待回复的定级询问")
    assert (await bot.say("zhao_min", "随便"))["text"].startswith("未识别的指令")
