"""涉密 means nothing leaks (001 第十七条), on SQLite and PostgreSQL.

The walk takes a classified item through every command and the reminders, then reads every
message the bot posted in every chat (and every queued outbox row): none may carry the link, the
details, the progress, the response, the result or a reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.roster_jobs import run_roster_jobs
from handlers.report import split_classified
from store.models import ItemEvent, OutboxMessage
from tests.conftest import SHANGHAI, Bot
from tests.roster_support import load_roster
from tests.test_deadlines import tick
from tests.test_regulations import stored

SECRETS = (
    "甲乙丙机密", "weibo.com/secret123", "丁戊进展", "gov.cn/reply-secret", "己庚回应", "庚辛续报",
    "辛壬结果", "癸调整理由", "子丑退回", "寅卯补充",
)


async def everything_the_bot_posted(bot: Bot) -> list[str]:
    texts = []
    for chat in bot.config.chats:
        texts += [m["text"] for m in await bot.messages(chat.id) if m["from"] == "bot"]
    async with bot.runtime.db.read() as session:
        texts += list((await session.execute(select(OutboxMessage.text))).scalars())
    return texts


def leaks(texts: list[str]) -> list[tuple[str, str]]:
    return [(secret, text) for text in texts for secret in SECRETS if secret in text]


@pytest.mark.parametrize(
    "text",
    [
        "【涉密】城关镇某事项", "[涉密] 城关镇某事项", "（涉密）城关镇某事项", "(涉密)城关镇某事项",
        "涉密：城关镇某事项", "涉密 城关镇某事项", "城关镇某事项【涉密】", "城关镇某事项 [涉密]",
        "城关镇某事项（涉密）", "城关镇某事项(涉密)", "城关镇某事项，涉密",
    ],
)
def test_classified_mark_in_any_usual_form_001_art17(text: str) -> None:
    assert split_classified(text) == (True, "城关镇某事项")


def test_words_that_only_contain_the_mark_are_not_classified_001_art17() -> None:
    assert split_classified("涉密人员管理规定被误读") == (False, "涉密人员管理规定被误读")


async def test_classified_item_leaks_nothing_through_any_command_001_art17(bot: Bot) -> None:
    await load_roster(bot)  # so that the handover lists the open items too
    await bot.say("liu_yang", "上报 城关镇某敏感事项甲乙丙机密 https://weibo.com/secret123 【涉密】")
    assert (await stored(bot)).classified is True
    await bot.say("zhao_min", "1")
    await bot.say("zhao_min", "转办 #1 城关镇、县卫健局")
    await bot.say("feng_xue", "签收 #1")
    await bot.say("yang_fan", "签收 #1")
    await bot.say("yang_fan", "进展 #1 丁戊进展已核实")
    for chat in ("wecom_duty", "coordinators"):
        await bot.say("zhao_min", "待办", chat=chat)
        await bot.say("zhao_min", "查询 #1", chat=chat)
    bot.clock.set(datetime(2026, 11, 23, 17, 31, tzinfo=SHANGHAI))  # the night shift's handover
    await run_roster_jobs(bot.runtime)
    bot.clock.advance(timedelta(hours=13))  # the response clock's reminders
    await tick(bot)
    await bot.say("yang_fan", "回应 #1 网上发布 https://gov.cn/reply-secret 己庚回应内容")
    await bot.say("yang_fan", "回应 #1 新闻发布会 庚辛续报内容")
    await bot.say("wang_jun", "定级 #1 较大 理由：癸调整理由")
    await bot.say("wang_jun", "转办 #1 西岸街道 理由：癸调整理由")
    await bot.say("zhao_min", "移交 #1 公安")
    await bot.say("liu_yang", "上报 补充 https://weibo.com/secret123 寅卯补充")  # the same link again
    await bot.say("you_jia", "办结 #1 辛壬结果已反馈")
    await bot.say("zhao_min", "查询 #1")
    await bot.say("liu_yang", "上报 （涉密）城关镇另一事项 https://weibo.com/secret123x")
    await bot.say("zhao_min", "2")
    await bot.say("yang_fan", "退回 #2 子丑退回理由")
    bot.clock.advance(timedelta(days=3))
    await tick(bot)
    posted = await everything_the_bot_posted(bot)
    assert len(posted) > 20
    assert any(text.startswith("【交接班】") and "#1【" in text for text in posted)
    assert leaks(posted) == []
    # The record keeps what was said: the audit trail is not a group.
    async with bot.runtime.db.read() as session:
        details = list((await session.execute(select(ItemEvent.detail))).scalars())
    assert any("丁戊进展" in d for d in details)


async def test_coordinators_mark_and_unmark_afterwards_audited_001_art17(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 城关镇某事项甲乙丙机密 https://weibo.com/secret123")
    refused = await bot.say("zhao_min", "涉密 #1")
    assert refused["text"].startswith("抱歉，您无权对 #1 执行“涉密标记”。可执行此操作的是：协调人员或管理员")
    marked = await bot.say("wang_jun", "涉密 #1 城关镇某安全事项")
    assert marked["text"].startswith("#1 已标记为涉密。此后群内仅显示授权摘要：城关镇某安全事项")
    notice = await bot.say("zhao_min", "1")
    assert "城关镇某安全事项" in notice["text"] and leaks([notice["text"]]) == []
    query = await bot.say("zhao_min", "查询 #1")
    assert "（涉密）" in query["text"] and leaks([query["text"]]) == []
    again = await bot.say("xu_ming", "涉密 #1")
    assert again["text"].startswith("#1 已是涉密线索")
    lifted = await bot.say("xu_ming", "解除涉密 #1 经审核可公开")
    assert lifted["text"] == "#1 已解除涉密，群内恢复显示线索详情。"
    assert "weibo.com/secret123" in (await bot.say("zhao_min", "查询 #1"))["text"]
    async with bot.runtime.db.read() as session:
        rows = (await session.execute(
            select(ItemEvent.action, ItemEvent.actor).where(ItemEvent.action.in_(["classified", "declassified"]))
            .order_by(ItemEvent.id)
        )).all()
    assert [tuple(r) for r in rows] == [("classified", "wang_jun"), ("declassified", "xu_ming")]
