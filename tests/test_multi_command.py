"""Issue #14 point 2: several commands in one message — each run in order and answered, or,
where that is ambiguous, the first done and the rest sent back, never dropped without a word."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from domain.vocab import ItemStatus
from handlers.context import Context, Outcome
from handlers.parsing import normalize
from handlers.segments import Segment, split_commands
from store.models import Item, ItemEvent
from tests.conftest import Bot

REPORT = "上报 网友在微博反映城关镇东风小区停水三天 https://weibo.com/123/abc"
VERBS = dict.fromkeys(["上报", "定级", "转办", "签收", "进展", "回应", "办结", "不予回应", "查询", "待办", "值班"])


async def items(bot: Bot) -> list[Item]:
    async with bot.runtime.db.read() as session:
        return list((await session.execute(select(Item).order_by(Item.number))).scalars())


async def count(bot: Bot, model: type) -> int:
    async with bot.runtime.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def assigned(bot: Bot) -> None:
    """#1 reported, graded 重大 and assigned to 城关镇 (杨帆 may acknowledge)."""
    await bot.say("liu_yang", REPORT)
    await bot.say("zhao_min", "1")
    await bot.say("zhao_min", "转办 #1 城关镇")


# -- the rule, on text alone --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("签收 #10 办结 #10 已处理", [("签收 #10", True), ("办结 #10 已处理", True)]),
        ("签收#10办结#10已处理", [("签收#10", True), ("办结#10已处理", True)]),
        ("签收 #10，进展 #10 已联系。", [("签收 #10", True), ("进展 #10 已联系。", True)]),
        ("待办\n值班 明天", [("待办", False), ("值班 明天", False)]),
        ("进展 #3 已联系\n当事人表示理解\n签收 #4", [("进展 #3 已联系\n当事人表示理解", True), ("签收 #4", True)]),
        # a verb word inside free text never splits it
        ("上报 网友称已签收 #5 的快递丢失", [("上报 网友称已签收 #5 的快递丢失", False)]),
        ("上报 网友反映停水\n签收情况：未签收\n上报人：刘洋",
         [("上报 网友反映停水\n签收情况：未签收\n上报人：刘洋", False)]),
        ("进展 #3 与网友沟通，对方表示将回应 #3 的答复", [("进展 #3 与网友沟通，对方表示将回应 #3 的答复", True)]),
        ("随便聊聊", [("随便聊聊", False)]),
        # the grade shorthand on a line of its own is a command too
        ("签收 #3\n#3 重大", [("签收 #3", True), ("#3 重大", True)]),
        ("进展 #3 已联系\n#3 号楼居民反映", [("进展 #3 已联系\n#3 号楼居民反映", True)]),
        # a mistyped verb with an item number is a command of its own (it gets "您是不是要发送…")
        ("签手 #5\n办结 #5 已处理", [("签手 #5", True), ("办结 #5 已处理", True)]),
    ],
)
def test_where_commands_begin(typed: str, expected: list[tuple[str, bool]]) -> None:
    assert split_commands(normalize(typed), VERBS) == [Segment(text, certain) for text, certain in expected]


# -- through the chat ---------------------------------------------------------------------------------


async def test_two_commands_on_one_line_are_both_done_in_order(bot: Bot) -> None:
    await assigned(bot)
    replies = await bot.post("wecom_duty", "yang_fan", "签收 #1 进展 #1 已联系供水公司抢修")
    assert len(replies) == 2
    assert replies[0]["text"].startswith("#1 已签收（杨帆，11月23日 10:00），签收计时停止。")
    assert replies[1]["text"].startswith("#1 进展已记录")
    [stored] = await items(bot)
    assert stored.acknowledged_at is not None
    async with bot.runtime.db.read() as session:
        actions = list((await session.execute(
            select(ItemEvent.action).where(ItemEvent.actor == "yang_fan").order_by(ItemEvent.id))).scalars())
    assert actions == ["acknowledged", "progress"]


async def test_each_command_is_answered_even_when_one_is_refused(bot: Bot) -> None:
    await assigned(bot)
    replies = await bot.post("wecom_duty", "yang_fan", "签收 #1 办结 #1 已处理")
    assert len(replies) == 2
    assert replies[0]["text"].startswith("#1 已签收（杨帆，11月23日 10:00），签收计时停止。")
    assert replies[1]["text"].startswith("#1 尚未回应。")  # 办结 needs a response first
    [stored] = await items(bot)
    assert stored.acknowledged_at is not None and stored.status != ItemStatus.CLOSED


async def test_one_command_a_line(bot: Bot) -> None:
    replies = await bot.post("wecom_duty", "liu_yang", "上报 西岸滨河路路灯不亮\n上报 城关镇老街商户反映占道经营")
    assert [r["text"].splitlines()[0] for r in replies] == ["已受理舆情线索 #1", "已受理舆情线索 #2"]
    assert [i.summary for i in await items(bot)] == ["西岸滨河路路灯不亮", "城关镇老街商户反映占道经营"]


async def test_a_grade_on_the_next_line(bot: Bot) -> None:
    await bot.say("liu_yang", REPORT)
    replies = await bot.post("wecom_duty", "zhao_min", "转办 #1 城关镇\n#1 较大")
    assert len(replies) == 2
    assert replies[0]["text"].startswith("【转办】#1 已转 清河县城关镇人民政府。")
    assert replies[1]["text"].startswith("【舆情通报】#1 较大舆情")
    [stored] = await items(bot)
    assert stored.grade == "较大" and stored.lead_unit_id == "chengguan"


async def test_a_report_text_over_several_lines_is_not_split(bot: Bot) -> None:
    text = "上报 网友称快递签收后丢失，回应 慢\n签收情况：未签收\n原帖 https://weibo.com/9"
    reply = await bot.say("liu_yang", text)
    assert reply["text"].startswith("已受理舆情线索 #1")
    [stored] = await items(bot)
    assert stored.summary == "网友称快递签收后丢失，回应 慢\n签收情况：未签收\n原帖 https://weibo.com/9"


async def test_an_ambiguous_line_is_sent_back_not_done(bot: Bot) -> None:
    replies = await bot.post("wecom_duty", "liu_yang", "上报 城关镇人民路积水严重\n回应 暂无\n待办")
    assert len(replies) == 2
    assert replies[0]["text"].startswith("已受理舆情线索 #1")
    assert replies[1]["text"] == "只办理了第一条指令；其余内容未执行，如需办理请分条发送：\n回应 暂无\n待办"
    [stored] = await items(bot)
    assert stored.summary == "城关镇人民路积水严重"


async def test_after_two_commands_the_notice_says_two(bot: Bot) -> None:
    await assigned(bot)
    text = "签收 #1\n进展 #1 已联系供水公司\n办结 已恢复"
    replies = await bot.post("wecom_duty", "yang_fan", text)
    assert len(replies) == 3
    assert replies[2]["text"] == "只办理了前两条指令；其余内容未执行，如需办理请分条发送：\n办结 已恢复"


async def test_a_mistyped_command_among_others(bot: Bot) -> None:
    await assigned(bot)
    replies = await bot.post("wecom_duty", "yang_fan", "签手 #1\n进展 #1 已联系供水公司")
    assert [r["text"] for r in replies[:2]] == ["您是不是要发送“签收 #1”？", "签收 #1"]
    assert replies[2]["text"].startswith("#1 进展已记录")
    [stored] = await items(bot)
    assert stored.acknowledged_at is None  # a guess is never acted on


async def test_all_commands_of_a_message_commit_together_or_not_at_all(bot: Bot, monkeypatch: Any) -> None:
    by_verb = bot.runtime.handler.dispatcher._by_verb

    async def broken(ctx: Context, command: object) -> Outcome:
        raise RuntimeError("the second command fails")

    monkeypatch.setitem(by_verb, "进展", replace(by_verb["进展"], handle=broken))
    reply = await bot.say("liu_yang", "上报 西岸滨河路路灯不亮\n进展 #1 已联系")
    assert reply["text"] == "抱歉，处理您的消息时出现系统错误，本条指令未生效。请稍后重试，如仍失败请联系管理员。"
    assert await count(bot, Item) == 0 and await count(bot, ItemEvent) == 0
