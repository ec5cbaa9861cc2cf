"""回应 and what follows it, scripted through the real HTTP entry point on SQLite and PostgreSQL:
the policy's response forms (004 第八条), 续报, the press conference for 重大突发事件
(000 §四(四)), copies to the coordinators (004 第十条), feedback at 办结 (001 第十一条) and
涉密 items (001 第十七条).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from domain.config import Config, CoordinatorCopies, ResponseFormRule
from domain.vocab import Grade, ItemStatus
from handlers.items import CLASSIFIED_DETAIL
from handlers.workflow import read_response
from store.models import Item, ItemEvent, OutboxMessage
from tests.conftest import Bot, start_bot

WATER = "上报 网友在微博反映城关镇东风小区停水三天 https://weibo.com/123/abc"
FIRE = "上报 城关镇人民路发生火灾，网传多人受伤"
STREET = "上报 城关镇老街商户反映占道经营整治"
LINK = "https://qinghe.gov.cn/n/1"
FORMS = ("网上发布", "专家解读", "新闻发布会", "媒体专访", "公开答复", "辟谣澄清")


async def item(bot: Bot, number: int) -> Item:
    async with bot.runtime.db.read() as session:
        return (await session.execute(select(Item).where(Item.number == number))).scalar_one()


async def responses(bot: Bot, number: int) -> list[ItemEvent]:
    async with bot.runtime.db.read() as session:
        result = await session.execute(
            select(ItemEvent).join(Item, Item.id == ItemEvent.item_id)
            .where(Item.number == number, ItemEvent.action == "responded").order_by(ItemEvent.id)
        )
        return list(result.scalars())


async def outbox(bot: Bot) -> list[OutboxMessage]:
    async with bot.runtime.db.read() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def copies(bot: Bot) -> list[str]:
    """What the bot posted in the coordinators' chat."""
    return [m["text"] for m in await bot.messages("coordinators") if m["from"] == "bot"]


async def graded(bot: Bot, report: str, grade: str) -> None:
    """liu_yang reports, the duty officer answers the grade question (1 重大, 2 较大, 3 一般)."""
    await bot.say("liu_yang", report)
    reply = await bot.say("zhao_min", grade)
    assert reply["text"].startswith("【舆情通报】"), reply["text"]


@pytest.fixture
async def strict_bot(config: Config, clock: ManualClock) -> AsyncIterator[Bot]:
    """A county with forms of its own and no copies of responses, closures or referrals."""
    policy = config.policy.model_copy(update={
        "response_forms": [
            ResponseFormRule(name="政务公开", aliases=["政务公开栏", "公开栏"]),
            ResponseFormRule(name="新闻发布会", aliases=["发布会"]),
        ],
        "copies": CoordinatorCopies(referred=False, responses=[], closures=[]),
    })
    custom = config.model_copy(update={"policy": policy})
    client = await start_bot(custom, clock)
    try:
        yield Bot(client, clock, custom)
    finally:
        await client.close()


# -- the forms --------------------------------------------------------------------------------------


async def test_response_forms_accept_everyday_phrasings_004_art8(bot: Bot) -> None:
    await graded(bot, WATER, "2")
    said = {
        "召开新闻发布会 通报停水原因": "新闻发布会",
        "接受专访 介绍抢修进度": "媒体专访",
        f"发布权威信息 {LINK} 恢复供水时间": "网上发布",
        "发布情况通报：已恢复供水": "网上发布",
        "官方账号发布 停水说明": "网上发布",
        "公开答复 已在留言板答复": "公开答复",
        "接受媒体采访 说明原因": "媒体专访",
        "发布会已召开，通报抢修情况": "新闻发布会",  # glued to the content, unambiguous
        "网上发布https://qinghe.gov.cn/n/2": "网上发布",  # glued to the link
        "辟谣 网传污染不实": "辟谣澄清",
        "专家解读 水质检测合格": "专家解读",
    }
    for words in said:
        reply = await bot.say("yang_fan", f"回应 #1 {words}")
        assert "已记录" in reply["text"], (words, reply["text"])
    recorded = await responses(bot, 1)
    assert [e.after["form"] for e in recorded] == list(said.values())
    assert recorded[2].after["link"] == LINK and recorded[2].detail == "恢复供水时间"
    assert recorded[7].detail == "已召开，通报抢修情况"
    assert recorded[8].after["link"] == "https://qinghe.gov.cn/n/2" and recorded[8].detail == ""
    assert (await item(bot, 1)).response_form == "新闻发布会"  # the first response's
    unknown = await bot.say("yang_fan", "回应 #1 发朋友圈 已处理")
    assert unknown["text"].startswith("用法：回应 #编号 方式 [链接] 内容。方式为：" + "、".join(FORMS) + "。")
    assert len(await responses(bot, 1)) == len(said)


async def test_response_forms_are_the_countys_own_and_parsed_purely_004_art8(strict_bot: Bot) -> None:
    rules = strict_bot.config.policy.response_forms
    assert read_response(f"公开栏 {LINK} 已张贴", rules) == read_response(f"政务公开 {LINK} 已张贴", rules)
    parts = read_response(f"政务公开栏已张贴通告 {LINK}", rules)  # the longest phrase, glued; link last
    assert parts is not None and (parts.form, parts.link, parts.text) == ("政务公开", LINK, "已张贴通告")
    assert read_response("网上发布 已发布", rules) is None  # not a form of this county
    assert read_response("发布会", rules) is None  # a form, but nothing said
    clash = [
        ResponseFormRule(name="网上发布", aliases=["发布"]), ResponseFormRule(name="新闻发布会", aliases=["发布会"]),
    ]
    assert read_response("发布会议纪要", clash) is None  # 发布+会议纪要 or 发布会+议纪要: a space decides
    spaced = read_response("发布会 议定事项", clash)
    assert spaced is not None and spaced.form == "新闻发布会"
    await graded(strict_bot, WATER, "2")
    refused = await strict_bot.say("yang_fan", "回应 #1 网上发布 已发布")
    assert refused["text"].startswith("用法：回应 #编号 方式 [链接] 内容。方式为：政务公开、新闻发布会。")
    reply = await strict_bot.say("yang_fan", "回应 #1 公开栏 已张贴停水通告")
    assert reply["text"].startswith("#1 已记录回应：政务公开。回应计时停止。")
    assert (await item(strict_bot, 1)).response_form == "政务公开"


# -- several responses --------------------------------------------------------------------------------


async def test_second_response_is_recorded_as_continuing_release_004_art8(bot: Bot) -> None:
    await graded(bot, WATER, "2")
    bot.clock.advance(timedelta(minutes=30))
    first = await bot.say("yang_fan", f"回应 #1 网上发布 {LINK} 已发布停水情况说明")
    assert first["text"] == f"#1 已记录回应：网上发布 {LINK}。回应计时停止。\n办结请发送“办结 #1 办理结果”。"
    bot.clock.advance(timedelta(minutes=90))
    second = await bot.say("yang_fan", "回应 #1 发布会 通报抢修进展")
    assert second["text"] == "#1 已记录第2次回应（续报）：新闻发布会。"
    bot.clock.advance(timedelta(hours=2))
    third = await bot.say("han_mei", "回应 #1 公开答复 https://qinghe.gov.cn/n/3 已恢复供水")
    assert third["text"] == "#1 已记录第3次回应（续报）：公开答复 https://qinghe.gov.cn/n/3。"
    stored = await item(bot, 1)  # the item keeps the first response: it stopped the clock
    assert stored.responded_at == bot.clock.now() - timedelta(hours=3, minutes=30)
    assert (stored.response_form, stored.response_link, stored.response_text) == (
        "网上发布", LINK, "已发布停水情况说明",
    )
    assert stored.status == ItemStatus.RESPONDED
    recorded = await responses(bot, 1)
    assert [(e.after["seq"], e.after["kind"], e.after["form"]) for e in recorded] == [
        (1, "首次回应", "网上发布"), (2, "续报", "新闻发布会"), (3, "续报", "公开答复"),
    ]
    assert [e.after["link"] for e in recorded] == [LINK, None, "https://qinghe.gov.cn/n/3"]
    assert [e.actor for e in recorded] == ["yang_fan", "yang_fan", "han_mei"]
    details = (await bot.say("zhao_min", "查询 #1"))["text"].splitlines()
    listed = [line for line in details if line.startswith("回应") and "：" in line and "时限" not in line]
    assert listed == [
        f"回应1：11月23日 10:30 网上发布 {LINK}",
        "回应2（续报）：11月23日 12:00 新闻发布会",
        "回应3（续报）：11月23日 14:00 公开答复 https://qinghe.gov.cn/n/3",
    ]
    assert "回应时限：11月25日 10:00（已回应：网上发布）" in details


async def test_simultaneous_responses_are_numbered_once_each_004_art8(bot: Bot) -> None:
    await graded(bot, WATER, "2")
    said = await asyncio.gather(*(
        bot.post("wecom_duty", who, f"回应 #1 网上发布 第{i}条说明") for i, who in enumerate(("yang_fan", "han_mei"))
    ))
    texts = sorted(replies[0]["text"] for replies in said)
    assert texts[0].startswith("#1 已记录回应：网上发布。") and texts[1] == "#1 已记录第2次回应（续报）：网上发布。"
    recorded = await responses(bot, 1)
    assert [(e.after["seq"], e.after["kind"]) for e in recorded] == [(1, "首次回应"), (2, "续报")]
    assert (await item(bot, 1)).response_text == recorded[0].detail


async def test_major_emergency_expects_a_press_conference_000_s4_4(bot: Bot) -> None:
    await graded(bot, FIRE, "1")
    assert (await item(bot, 1)).category == "突发事件"
    online = await bot.say("yang_fan", "回应 #1 网上发布 已发布火情通报")
    reminder = "提示：#1 属重大突发事件，按规定应召开新闻发布会，目前尚未记录。召开后请发送“回应 #1 新闻发布会 内容”。"
    assert online["text"].endswith("\n" + reminder)
    interview = await bot.say("yang_fan", "回应 #1 接受媒体采访 介绍救援情况")
    assert interview["text"] == "#1 已记录第2次回应（续报）：媒体专访。\n" + reminder
    conference = await bot.say("han_mei", "回应 #1 召开新闻发布会 通报伤亡和救援情况")
    assert conference["text"] == "#1 已记录第3次回应（续报）：新闻发布会。"
    after = await bot.say("yang_fan", "回应 #1 网上发布 发布善后安排")
    assert "提示" not in after["text"]  # one has been recorded
    # A coordinator sees the reminder with the copy of the response.
    posted = await copies(bot)
    assert any(text.startswith("【回应】#1 重大｜首次回应：网上发布") and reminder in text for text in posted)
    # Neither a 重大 item of another kind nor a 较大 emergency is held to it.
    await graded(bot, STREET, "1")
    assert "提示" not in (await bot.say("yang_fan", "回应 #2 网上发布 已发布整治通告"))["text"]
    await graded(bot, "上报 城关镇人民路一仓库发生火灾，无人员伤亡", "2")
    assert "提示" not in (await bot.say("yang_fan", "回应 #3 网上发布 已发布火情通报"))["text"]


# -- copies to the coordinators ----------------------------------------------------------------------


async def test_responses_and_closures_of_graded_items_are_copied_to_coordinators_004_art10(bot: Bot) -> None:
    await graded(bot, WATER, "2")  # 较大: in copies.responses and copies.closures
    await bot.say("yang_fan", f"回应 #1 网上发布 {LINK} 已发布停水情况说明")
    await bot.say("yang_fan", "回应 #1 新闻发布会 通报抢修进展")
    await bot.say("li_hua", "办结 #1 已恢复供水，群众满意")
    await graded(bot, STREET, "3")  # 一般: its response and closure are not copied, a referral is
    await bot.say("yang_fan", "回应 #2 公开答复 已答复商户")
    await bot.say("zhao_min", "移交 #2 网信")
    await bot.say("li_hua", "办结 #2 整治完成")
    await graded(bot, FIRE, "1")
    await bot.say("han_mei", "不予回应 #3 经核实为旧闻")
    # Grade notices follow each grade's copy_to_coordinators (handlers/grading.py), not these switches.
    posted = [text for text in await copies(bot) if not text.startswith("【舆情通报】")]
    assert [text.split("\n")[0] for text in posted] == [
        f"【回应】#1 较大｜首次回应：网上发布 {LINK}",
        "【回应】#1 较大｜第2次回应（续报）：新闻发布会",
        "【办结】#1 较大｜李华 11月23日 10:00",
        "【移交】#2 一般｜已移交网信部门（赵敏 11月23日 10:00）",
        "【不予回应】#3 重大｜经 韩梅 决定（11月23日 10:00）",
    ]
    assert posted[0] == (f"【回应】#1 较大｜首次回应：网上发布 {LINK}\n内容：已发布停水情况说明\n"
                         "操作：杨帆 11月23日 10:00\n摘要：网友在微博反映城关镇东风小区停水三天 https://weibo.com/123/abc")
    assert "结果：已恢复供水，群众满意" in posted[2] and "理由：经核实为旧闻" in posted[4]
    keys = [row.key for row in await outbox(bot) if row.chat_id == "coordinators" and ":grade:" not in row.key]
    assert keys[0].startswith("notice:item1:responded:") and keys[0].endswith(":coordinators")
    assert [k.split(":")[2] for k in keys] == ["responded", "responded", "closed", "referred", "no_response"]


async def test_copies_follow_the_policy_004_art10(strict_bot: Bot) -> None:
    await graded(strict_bot, WATER, "1")
    assert (await strict_bot.say("yang_fan", "回应 #1 发布会 通报抢修进展"))["text"].startswith("#1 已记录回应")
    assert (await strict_bot.say("li_hua", "办结 #1 已恢复供水"))["text"].startswith("#1 已办结")
    assert (await strict_bot.say("zhao_min", "移交 #1 公安"))["text"] == "#1 已办结，不能再移交。"
    await graded(strict_bot, STREET, "1")
    assert (await strict_bot.say("zhao_min", "移交 #2 公安"))["text"].startswith("#2 已移交公安机关")
    # Only the grade notices (copy_to_coordinators of 重大) reach the coordinators.
    heads = [text.split("\n")[0] for text in await copies(strict_bot)]
    assert heads == ["【舆情通报】#1 重大舆情", "【舆情通报】#2 重大舆情"]


# -- feedback at 办结 ---------------------------------------------------------------------------------


async def test_closure_feeds_back_to_reporter_and_leader_001_art11(bot: Bot) -> None:
    await graded(bot, WATER, "2")
    await bot.say("yang_fan", f"回应 #1 网上发布 {LINK} 已发布停水情况说明")
    closed = await bot.say("li_hua", "办结 #1 已恢复供水，群众满意")
    assert closed["text"] == (
        "#1 已办结（11月23日 10:00）。结果：已恢复供水，群众满意\n办理结果已反馈上报人及牵头单位分管领导。\n@刘洋 @韩梅"
    )
    assert closed["mentions"] == ["liu_yang", "han_mei"]  # the reporter; 城关镇's 分管领导 (东风社区 has none)
    log = [m for m in await bot.messages("wecom_duty") if m["from"] == "bot"]
    assert log[-1]["text"] == closed["text"] and log[-1]["mentions"] == ["liu_yang", "han_mei"]
    stored = await item(bot, 1)
    assert stored.status == ItemStatus.CLOSED and stored.verdict == "已恢复供水，群众满意"
    # The leader who reported an item herself is @-mentioned once.
    await bot.say("han_mei", "上报 城关镇老街商户反映占道经营整治")
    await bot.say("zhao_min", "定级 #2 一般")
    await bot.say("yang_fan", "回应 #2 公开答复 已答复商户")
    again = await bot.say("zhao_min", "办结 #2 整治完成")
    assert again["mentions"] == ["han_mei"]


# -- 涉密 ---------------------------------------------------------------------------------------------


async def test_classified_response_and_result_never_posted_001_art17(bot: Bot, config: Config) -> None:
    secrets = [
        "weibo.com/secret", "某敏感事项", "核查进展甲", "https://qinghe.gov.cn/secret-1", "回应口径乙",
        "https://qinghe.gov.cn/secret-2", "续报口径丙", "处置结果丁", "不予回应理由戊", "另一敏感事项",
    ]
    await graded(bot, "上报 【涉密】城关镇某敏感事项 https://weibo.com/secret", "1")
    said = [
        await bot.say("yang_fan", "进展 #1 核查进展甲"),
        await bot.say("yang_fan", "回应 #1 网上发布 https://qinghe.gov.cn/secret-1 回应口径乙"),
        await bot.say("yang_fan", "回应 #1 新闻发布会 https://qinghe.gov.cn/secret-2 续报口径丙"),
        await bot.say("zhao_min", "移交 #1 网信"),
    ]
    await graded(bot, "上报 【涉密】城关镇另一敏感事项", "2")
    said.append(await bot.say("zhao_min", "合并 #2 #1"))
    details = await bot.say("zhao_min", "查询 #1")
    said += [details, await bot.say("li_hua", "办结 #1 处置结果丁")]
    await graded(bot, "上报 【涉密】城关镇又一事项", "2")
    said.append(await bot.say("han_mei", "不予回应 #3 不予回应理由戊"))
    assert said[1]["text"] == "#1 已记录回应：网上发布。回应计时停止。\n办结请发送“办结 #1 办理结果”。"
    assert said[2]["text"] == "#1 已记录第2次回应（续报）：新闻发布会。"
    assert said[6]["text"].startswith(f"#1 已办结（11月23日 10:00）。结果：{CLASSIFIED_DETAIL}")
    assert said[7]["text"] == f"#3 经 韩梅 决定不予回应，已结束计时。理由：{CLASSIFIED_DETAIL}"
    lines = details["text"].splitlines()
    assert "回应1：11月23日 10:00 网上发布" in lines and "回应2（续报）：11月23日 10:00 新闻发布会" in lines
    posted = [m["text"] for chat in config.chats for m in await bot.messages(chat.id) if m["from"] == "bot"]
    posted += [row.text for row in await outbox(bot)]
    heads = [text.split("\n")[0] for text in await copies(bot)]
    assert "【回应】#1 重大｜首次回应：网上发布" in heads and "【办结】#1 重大｜李华 11月23日 10:00" in heads
    assert "【不予回应】#3 较大｜经 韩梅 决定（11月23日 10:00）" in heads and len(posted) > 15
    for secret in secrets:
        assert not [text for text in posted if secret in text], secret
    # The record itself keeps everything (001 第十七条 limits what is posted, not what is kept).
    stored = await item(bot, 1)
    assert (stored.response_link, stored.response_text, stored.verdict) == (
        "https://qinghe.gov.cn/secret-1", "回应口径乙", "处置结果丁",
    )
    assert [e.detail for e in await responses(bot, 1)] == ["回应口径乙", "续报口径丙"]
    assert stored.grade == Grade.MAJOR and stored.classified
