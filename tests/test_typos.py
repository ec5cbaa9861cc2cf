"""Issue #14 point 3 (and 5, part): typos get help — letter case ignored, grade-like words get the
list of grades, a command one character off gets "您是不是要发送…" — and ordinary chat gets no
false "did you mean"."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.runtime import build_dispatcher
from handlers.help import HELP
from handlers.parsing import grade_like, normalize
from handlers.typos import one_edit_apart
from store.models import Item, ItemEvent
from tests.conftest import Bot

UNKNOWN = "未识别的指令。发送“帮助”查看可用指令。"
GRADE_LIST = "等级只有三级：重大、较大、一般（也可回复 1、2、3）。"
DISPATCHER = build_dispatcher()


async def count(bot: Bot, model: type) -> int:
    async with bot.runtime.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


# -- rules on text alone --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [("签手", "签收", True), ("上报报", "上报", True), ("不予回", "不予回应", True), ("收签", "签收", True),
     ("hlep", "help", True), ("签收", "签收", False), ("上午好", "上报", False), ("回复", "退回", False)],
)
def test_one_edit_apart(a: str, b: str, close: bool) -> None:
    assert one_edit_apart(a, b) is close


@pytest.mark.parametrize(
    ("typed", "corrected"),
    [
        ("签手 #5", "签收 #5"),
        ("签手#5", "签收 #5"),
        ("查寻 #3", "查询 #3"),
        ("查寻5号", "查询 5号"),
        ("收签 #4", "签收 #4"),
        ("办洁 #3 已恢复供水", "办结 #3 已恢复供水"),
        ("进度 #3 已联系当事人", "进展 #3 已联系当事人"),
        ("回复 #3 网上发布 已发布情况通报", "回应 #3 网上发布 已发布情况通报"),
        ("定吉 #3 重大", "定级 #3 重大"),
        ("转半 #3 城关镇", "转办 #3 城关镇"),
        ("上保 网友在微博反映城关镇停水三天", "上报 网友在微博反映城关镇停水三天"),
        ("帮主", "帮助"),
        ("hlep", "help"),
        ("我的值斑", "我的值班"),
    ],
)
def test_close_misses_are_corrected(typed: str, corrected: str) -> None:
    suggestion = DISPATCHER.suggest(normalize(typed))
    assert suggestion is not None and suggestion.text == corrected and not suggestion.bare


@pytest.mark.parametrize(("typed", "verb"), [("上保", "上报"), ("查寻", "查询"), ("签手", "签收"), ("办洁", "办结")])
def test_a_mistyped_verb_alone_gets_the_command_and_its_usage(typed: str, verb: str) -> None:
    suggestion = DISPATCHER.suggest(normalize(typed))
    assert suggestion is not None and suggestion.text == verb and suggestion.bare
    assert suggestion.usage.startswith(("用法：", "请在“上报”后写明线索内容"))


@pytest.mark.parametrize(
    "typed",
    [
        "上午开会", "上午 开会", "上午", "上班", "下班", "下班了", "加班", "请示", "请问 明天谁值班",
        "请问 #3 怎么处理",
        "回复 好的", "回复", "交接", "签字", "好的收到", "收到", "随便聊聊", "查查", "代办", "值斑 明天",
        "签 收#5", "签收情况怎么样", "hello",
    ],
)
def test_ordinary_chat_gets_no_suggestion(typed: str) -> None:
    assert DISPATCHER.suggest(normalize(typed)) is None


@pytest.mark.parametrize(
    ("word", "strict", "loose"),
    [("特别重大", True, True), ("特大", True, True), ("特别重大舆情", True, True), ("四级", True, True),
     ("4级", True, True), ("Ⅳ级", True, True), ("红色预警", True, True), ("4", False, True), ("四", False, True),
     ("严重", False, True), ("重大", False, False), ("1", False, False), ("一级", False, False),
     ("随便", False, False), ("好的", False, False)],
)
def test_grade_like_words(word: str, strict: bool, loose: bool) -> None:
    assert grade_like(normalize(word)) is strict
    assert grade_like(normalize(word), loose=True) is loose


# -- through the chat -------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["HELP", "Help", "hElP"])
async def test_commands_ignore_letter_case(bot: Bot, typed: str) -> None:
    assert (await bot.say("liu_yang", typed))["text"] == HELP


async def test_a_mistyped_command_gets_the_corrected_text_to_copy(bot: Bot) -> None:
    replies = await bot.post("wecom_duty", "zhao_min", "签手 #5")
    assert [r["text"] for r in replies] == ["您是不是要发送“签收 #5”？", "签收 #5"]
    replies = await bot.post("wecom_duty", "zhao_min", "查寻 #3")
    assert [r["text"] for r in replies] == ["您是不是要发送“查询 #3”？", "查询 #3"]
    replies = await bot.post("wecom_duty", "liu_yang", "上保 网友在微博反映城关镇停水三天")
    assert [r["text"] for r in replies] == ["您是不是要发送“上报 网友在微博反映城关镇停水三天”？",
                                             "上报 网友在微博反映城关镇停水三天"]
    assert await count(bot, Item) == 0 and await count(bot, ItemEvent) == 0  # a guess is never acted on


async def test_a_long_correction_is_shortened_in_the_question_only(bot: Bot) -> None:
    text = "上保 网友在抖音发布视频称城关镇东风小区连续三天停水，物业和自来水公司互相推诿 https://www.douyin.com/video/7"
    replies = await bot.post("wecom_duty", "liu_yang", text)
    corrected = "上报" + text[2:]
    assert [r["text"] for r in replies] == [f"您是不是要发送“{corrected[:30]}…”？", corrected]


async def test_ordinary_chat_still_gets_the_plain_answer(bot: Bot) -> None:
    for text in ("上午开会", "下班", "请示", "回复 好的", "代办"):
        assert (await bot.say("zhao_min", text))["text"] == UNKNOWN, text


async def test_a_grade_of_another_scale_gets_the_list_of_grades(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 城关镇老街商户反映占道经营整治")
    for answer in ("4", "特别重大", "四级", "Ⅳ级"):  # zhao_min was asked for the grade
        assert (await bot.say("zhao_min", answer))["text"] == GRADE_LIST, answer
    graded = await bot.say("zhao_min", "2")  # the question is still open
    assert graded["text"].startswith("【舆情通报】#1 较大舆情")


async def test_a_grade_of_another_scale_after_the_number(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 城关镇老街商户反映占道经营整治")
    expected = "等级只有三级：重大、较大、一般（也可写 1、2、3）。请发送“定级 #1 重大/较大/一般”。"
    for text in ("#1 特别重大", "1号 4", "定级 #1 特别重大", "定级 #1 四级 理由：影响大"):
        assert (await bot.say("li_hua", text))["text"] == expected, text
    async with bot.runtime.db.read() as session:
        assert (await session.execute(select(Item.grade))).scalar_one() is None


async def test_a_grade_word_without_a_question(bot: Bot) -> None:
    reply = await bot.say("zhao_min", "特别重大")
    assert reply["text"] == ("等级只有三级：重大、较大、一般。您当前没有待回复的定级询问（可能已定级或已过期）。"
                             "如需定级或调整等级，请发送“定级 #编号 等级”。")
    assert (await bot.say("zhao_min", "4"))["text"] == UNKNOWN  # a bare digit asked by nobody is not a grade


async def test_a_bare_mistyped_verb_is_answered_with_the_usage(bot: Bot) -> None:
    assert (await bot.say("liu_yang", "上保"))["text"] == (
        "您是不是要发送“上报 …”？\n请在“上报”后写明线索内容，可附链接。例如：上报 网友在微博反映城关镇某小区停水 https://weibo.com/123")
    assert (await bot.say("liu_yang", "查寻"))["text"] == (
        "您是不是要发送“查询 …”？\n用法：查询 #编号 [全部]，例如：查询 #12")
    assert (await bot.say("liu_yang", "请示"))["text"] == UNKNOWN
