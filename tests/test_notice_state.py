"""Notices that match the item's state, and the words a duty officer reads (issue #14, points 4 and 5)."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Bot
from tests.test_deadlines import bot_posts, last_seq, tick

FIRE = "上报 城关镇人民路发生火灾，网传多人受伤"  # lead unit: 城关镇 (yang_fan signs for it)
LONG_TAIL = "，居民生活受到严重影响" * 30  # 330 characters of summary after the opening words


async def test_regrade_after_signing_does_not_ask_for_signing_again(bot: Bot) -> None:
    await bot.say("liu_yang", FIRE)
    await bot.say("zhao_min", "较大")
    signed = await bot.say("yang_fan", "签收 #1")
    assert signed["text"].startswith("#1 已签收（杨帆，11月23日 10:00），签收计时停止。")
    regraded = await bot.say("zhao_min", "定级 #1 重大")
    text = regraded["text"]
    assert text.startswith("【舆情通报】#1 等级调整：较大 → 重大")
    assert "签收时限：11月23日 10:30（上报后30分钟内，已签收）" in text
    assert "回应时限：11月24日 10:00（上报后24小时内）" in text
    assert "该线索已签收，请按调整后的时限继续处置。" in text
    assert "发送“签收 #1”" not in text
    # …and no reminder to sign follows: the clock stopped at 签收.
    seq = await last_seq(bot)
    bot.clock.advance(timedelta(hours=2))
    await tick(bot)
    assert [m["text"] for m in await bot_posts(bot, after=seq) if "签收" in m["text"].splitlines()[0]] == []


async def test_first_notice_names_the_deadlines_from_the_report(bot: Bot) -> None:
    await bot.say("liu_yang", FIRE)
    notice = await bot.say("zhao_min", "1")
    assert "签收时限：11月23日 10:30（上报后30分钟内）\n" in notice["text"]
    assert "回应时限：11月24日 10:00（上报后24小时内）\n" in notice["text"]
    assert "请相关负责同志及时签收处置：发送“签收 #1”。" in notice["text"]


async def test_reminders_spell_out_units_and_number_the_chase_from_one(bot: Bot) -> None:
    await bot.say("liu_yang", FIRE)
    await bot.say("zhao_min", "1")  # 10:00: 签收 due 10:30
    seq = await last_seq(bot)
    for minutes in (15, 9, 6, 30):  # 10:15 half-way, 10:24 at 80 %, 10:30 the deadline, 11:00 the first repeat
        bot.clock.advance(timedelta(minutes=minutes))
        await tick(bot)
    heads = [m["text"].splitlines()[0] for m in await bot_posts(bot, after=seq)]
    assert heads == [
        "【提醒】#1 重大｜签收时限 11月23日 10:30（剩余15分钟）",
        "【提醒】#1 重大｜签收时限 11月23日 10:30（剩余6分钟）",
        "【超时催办】第1次 #1 重大｜签收已到时限（时限 11月23日 10:30）",
        "【超时催办】第2次 #1 重大｜签收已超时30分钟（时限 11月23日 10:30）",
    ]


async def test_long_summary_is_shortened_in_notices_and_whole_in_the_query(bot: Bot) -> None:
    summary = "网友在微博反映城关镇东风小区停水三天" + LONG_TAIL
    await bot.say("liu_yang", f"上报 {summary} https://weibo.com/123/abc")
    notice = await bot.say("zhao_min", "1")
    line = next(x for x in notice["text"].splitlines() if x.startswith("摘要："))
    assert line == "摘要：" + summary[:199] + "…（全文请发送“查询 #1”）"
    seq = await last_seq(bot)
    bot.clock.advance(timedelta(minutes=15))
    await tick(bot)
    [reminder] = await bot_posts(bot, after=seq)
    assert reminder["text"].splitlines()[1] == "摘要：" + summary[:59] + "…"
    query = await bot.say("zhao_min", "查询 #1")
    assert f"摘要：{summary}\n" in query["text"]


async def test_query_shows_the_latest_entries_and_offers_the_whole_record(bot: Bot) -> None:
    await bot.say("liu_yang", FIRE)
    await bot.say("zhao_min", "1")
    await bot.say("yang_fan", "签收 #1")
    refused = await bot.say("liu_yang", "办结 #1 已处理")  # not the lead unit's: refused, changes nothing
    assert refused["text"].startswith("抱歉")
    for k in range(1, 13):
        bot.clock.advance(timedelta(minutes=1))
        await bot.say("yang_fan", f"进展 #1 第{k}次进展")
        if k == 8:  # 12 entries still fit a phone screen: all shown, nothing counted
            record = (await bot.say("zhao_min", "查询 #1"))["text"].split("处置记录：\n", 1)[1].splitlines()
            assert len(record) == 12 and record[0] == "· 11月23日 10:00 刘洋 上报"
    short = (await bot.say("zhao_min", "查询 #1"))["text"].split("处置记录：\n", 1)[1].splitlines()
    # report, grade, notice, 签收 and 12 progress notes: 16 entries, the last 10 shown
    assert short[0] == "……此前还有6条记录，发送“查询 #1 全部”查看全部。"
    assert short[1:] == [f"· 11月23日 {10 + (k // 60)}:{k % 60:02d} 杨帆 进展 第{k}次进展" for k in range(3, 13)]
    whole = (await bot.say("zhao_min", "查询 #1 全部"))["text"].split("处置记录：\n", 1)[1].splitlines()
    assert len(whole) == 16 and whole[0] == "· 11月23日 10:00 刘洋 上报"
    assert not any("拒绝" in line for line in whole)  # a refusal is in the audit export, not the record
    assert whole[-10:] == short[1:]
    assert (await bot.say("zhao_min", "查询 #1 什么"))["text"] == "用法：查询 #编号 [全部]，例如：查询 #12"


async def test_todo_is_titled_for_this_chat(bot: Bot) -> None:
    assert (await bot.say("zhao_min", "待办"))["text"] == "本群当前没有待办事项（清河县人民政府办公室）。"
    await bot.say("liu_yang", FIRE)
    todo = await bot.say("zhao_min", "待办")
    assert todo["text"].splitlines() == [
        "本群待办（清河县人民政府办公室）：1项，按紧急程度排列",
        "#1【未定级】待定级｜定级剩余15分钟｜城关镇人民路发生火灾，网传多人受伤",
    ]


async def test_a_response_without_its_content_says_what_is_missing(bot: Bot) -> None:
    await bot.say("liu_yang", FIRE)
    await bot.say("zhao_min", "1")
    assert (await bot.say("yang_fan", "回应 #1"))["text"] == (
        "请写明回应方式和内容，例如：回应 #1 网上发布 https://… 已发布情况通报。"
        "方式为：网上发布、专家解读、新闻发布会、媒体专访、公开答复、辟谣澄清。")
    assert (await bot.say("yang_fan", "回应 #1 网上发布"))["text"] == (
        "请在“网上发布”后写明回应内容或链接，例如：回应 #1 网上发布 https://… 已发布情况通报。")
