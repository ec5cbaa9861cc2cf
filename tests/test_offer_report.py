"""Issue #14 point 3: a report is never lost to a missing verb. A message that carries a link or
reads like a report is offered as one ("回复“1”登记为线索"); the offer is a pending question in the
database, so it survives a restart; "1" registers it exactly as "上报 <text>" would."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.clock import ManualClock
from domain.config import Config
from store.models import Item, PendingQuestion
from tests.conftest import Bot, start_bot

OFFER = "这条消息像是一条舆情线索。回复“1”登记为线索（原文将作为摘要）。"
UNKNOWN = "未识别的指令。发送“帮助”查看可用指令。"
NO_QUESTION = "您当前没有待回复的定级询问（可能已定级或已过期）。如需定级或调整等级，请发送“定级 #编号 等级”。"
NEWS = "网友在抖音发帖称西岸滨河路夜间施工噪音扰民，多人跟帖"
LINKED = "请看这条 https://weibo.com/77/xyz"


async def items(bot: Bot) -> list[Item]:
    async with bot.runtime.db.read() as session:
        return list((await session.execute(select(Item).order_by(Item.number))).scalars())


async def questions(bot: Bot, kind: str) -> list[PendingQuestion]:
    async with bot.runtime.db.read() as session:
        rows = await session.execute(select(PendingQuestion).where(PendingQuestion.kind == kind))
        return list(rows.scalars())


async def test_a_report_without_the_verb_is_offered_and_1_registers_it_as_上报_would(bot: Bot) -> None:
    assert (await bot.say("liu_yang", NEWS))["text"] == OFFER
    [offer] = await questions(bot, "offer_report")
    assert offer.user_id == "liu_yang" and offer.payload["text"] == NEWS and offer.item_id is None
    assert offer.expires_at == bot.clock.now() + timedelta(minutes=30)
    accepted = await bot.say("liu_yang", "1")
    assert accepted["text"].startswith("已受理舆情线索 #1\n")
    assert await questions(bot, "offer_report") == []
    # The same text sent with the verb: the same item in every field but its number.
    direct = await bot.say("liu_yang", f"上报 {NEWS}")
    assert direct["text"] == accepted["text"].replace("#1", "#2")
    first, second = await items(bot)
    for field in ("summary", "source", "category", "lead_unit_id", "status", "reported_by", "grade_due_at", "link"):
        assert getattr(first, field) == getattr(second, field), field
    assert first.summary == NEWS


async def test_a_link_without_the_verb_is_offered(bot: Bot) -> None:
    assert (await bot.say("liu_yang", LINKED))["text"] == OFFER
    accepted = await bot.say("liu_yang", "登记")
    assert accepted["text"].startswith("已受理舆情线索 #1\n来源：微博")
    [stored] = await items(bot)
    assert stored.summary == LINKED and stored.link == "https://weibo.com/77/xyz"


async def test_the_offer_survives_a_restart(config: Config, clock: ManualClock) -> None:
    first = await start_bot(config, clock)
    try:
        assert (await Bot(first, clock, config).say("liu_yang", NEWS))["text"] == OFFER
    finally:
        await first.close()  # the process is gone; only the database remains
    clock.advance(timedelta(minutes=5))
    second = await start_bot(config, clock)
    try:
        bot = Bot(second, clock, config)
        assert (await bot.say("liu_yang", "1"))["text"].startswith("已受理舆情线索 #1\n")
        assert [i.summary for i in await items(bot)] == [NEWS]
    finally:
        await second.close()


async def test_declined_expired_and_other_peoples_answers(bot: Bot) -> None:
    await bot.say("liu_yang", NEWS)
    # Someone else's "1" is not an answer to this offer (nobody asked them anything).
    assert (await bot.say("zhao_min", "1"))["text"] == NO_QUESTION
    assert (await bot.say("liu_yang", "不用"))["text"] == "好的，该消息未登记。"
    assert (await bot.say("liu_yang", "1"))["text"] == NO_QUESTION
    await bot.say("liu_yang", NEWS)
    bot.clock.advance(timedelta(minutes=31))
    replies = await bot.post("wecom_duty", "liu_yang", "1")
    assert [r["text"] for r in replies] == ["登记询问已于 11月23日 10:30 过期，该消息未登记。如需登记，请发送：",
                                             f"上报 {NEWS}"]
    assert await items(bot) == []


async def test_anything_else_leaves_the_offer_open(bot: Bot) -> None:
    await bot.say("liu_yang", NEWS)
    assert (await bot.say("liu_yang", "随便聊聊"))["text"] == UNKNOWN
    assert (await bot.say("liu_yang", "1"))["text"].startswith("已受理舆情线索 #1\n")


async def test_chat_is_not_offered(bot: Bot) -> None:
    for text in ("今天食堂的饭不错", "抖音上那个视频你们看了吗？", "网友说的", "明天上午九点召开视频会议，请准时参加"):
        assert (await bot.say("liu_yang", text))["text"] == UNKNOWN, text
    # Since issue #16 these two are commands (零报告, 舆情日志): still never offered as a report.
    assert (await bot.say("liu_yang", "今日无舆情，暂无新增线索"))["text"].startswith("零报告由各单位联络员发送")
    assert (await bot.say("liu_yang", "舆情日志"))["text"].startswith("舆情日志（")
    assert await questions(bot, "offer_report") == []


async def test_the_most_recent_question_wins_and_the_reply_says_which(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 城关镇老街商户反映占道经营整治")  # zhao_min is asked to grade #1
    offered = await bot.say("zhao_min", NEWS)
    assert offered["text"] == OFFER + "\n（#1 仍待定级，请发送“定级 #1 等级”。）"
    accepted = await bot.say("zhao_min", "1")  # answers the offer, the latest question
    assert accepted["text"].startswith("已受理舆情线索 #2\n")
    assert accepted["text"].endswith("\n（#1 仍待定级，请发送“定级 #1 等级”。）")
    graded = await bot.say("zhao_min", "1")  # now the grade question of #2
    assert graded["text"].startswith("【舆情通报】#2 重大舆情")
    assert [i.grade for i in await items(bot)] == [None, "重大"]


async def test_a_grade_question_asked_later_replaces_the_offer(bot: Bot) -> None:
    assert (await bot.say("zhao_min", NEWS))["text"] == OFFER
    await bot.say("liu_yang", "上报 城关镇老街商户反映占道经营整治")  # zhao_min is asked to grade #1
    graded = await bot.say("zhao_min", "1")
    assert graded["text"].startswith("【舆情通报】#1 重大舆情")
    assert [i.summary for i in await items(bot)] == ["城关镇老街商户反映占道经营整治"]
    async with bot.runtime.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(PendingQuestion)
                                      .where(PendingQuestion.kind == "offer_report"))).scalar_one() == 0
