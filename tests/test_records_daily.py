"""舆情日志 and 零报告 (issue #16 points 1 and 2) on SQLite and PostgreSQL.

The log's figures are checked against the shared fixture (tests/records_fixture.py: a dozen items
over two weeks, every time in its docstring); each expected value is worked out by hand in the
comments from that story. The log of day D covers D 08:30 → D+1 08:30 and is posted at D+1 08:30.
Then: 零报告 in chat, the 17:00 reminder, the schedule (once per chat and day with two replicas, 补发
after downtime), `日志` in chat, and the CLI in Markdown and DOCX (opened back with python-docx).
"""

from __future__ import annotations

import argparse
import asyncio
import io
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from docx import Document as open_docx
from sqlalchemy import select

from bot.cli import build_parser
from bot.cli_report_daily import cmd_report_daily
from bot.clock import ManualClock
from bot.documents.markdown import chat_replies, to_markdown
from bot.engine import build_engine, work_for
from domain.config import Config
from handlers.engine import run_cycles
from handlers.ops import classify as classifying
from handlers.ops.events import ItemClassified
from handlers.records.daily import LogContent, build_daily_log, log_content
from handlers.records.daily_facts import period_of
from handlers.records.daily_jobs import LOG_MODULE, REMINDER_MODULE, DailyLog, ZeroReminder
from handlers.records.document import Document, Paragraph, Table
from handlers.records.facts import ItemFacts
from store import engine_runs
from store.models import ItemEvent, OutboxMessage
from tests.conftest import EXAMPLE_CONFIG, SHANGHAI, Bot, start_bot
from tests.records_fixture import AUTHORISED_SUMMARY, COORDINATOR, RecordsWorld, local, records_world, running_since


@pytest.fixture
async def world(config: Config) -> AsyncIterator[RecordsWorld]:
    async with records_world(config) as built:
        yield built


async def content(world: RecordsWorld, day: int, chat: str | None, month: int = 9) -> LogContent:
    runtime = world.runtime
    period = period_of(date(2026, month, day), runtime.config.records.daily_log_time, SHANGHAI, world.clock.now())
    async with runtime.db.read() as session:
        return await log_content(session, runtime.config, runtime.directory.chats.get(chat or ""), period)


async def document(world: RecordsWorld, day: int, chat: str | None, month: int = 9) -> Document:
    runtime = world.runtime
    period = period_of(date(2026, month, day), runtime.config.records.daily_log_time, SHANGHAI, world.clock.now())
    async with runtime.db.read() as session:
        return await build_daily_log(session, runtime.config, runtime.directory,
                                     runtime.directory.chats.get(chat or ""), period)


def numbers(facts: Sequence[ItemFacts]) -> list[int]:
    return [f.number for f in facts]


def paragraphs(doc: Document) -> list[str]:
    return [block.text for block in doc.blocks if isinstance(block, Paragraph)]


def table(doc: Document, name: str) -> Table:
    return next(t for t in doc.tables() if t.name == name)


# -- the figures, against the fixture --------------------------------------------------------------------------


async def test_the_log_of_0922_for_the_county(world: RecordsWorld) -> None:
    """09-22 08:30 → 09-23 08:30, the coordinators' chat (the whole county).

    new: #3 (reported 09-22 10:00, 重大) — #1 and #2 were reported on 09-21.
    ended: #1 办结 09-22 10:00, #2 办结 09-22 16:00 (#3 is closed 09-23 16:00, after the end).
    overdue at 09-23 08:30: none — #3 was signed (10:50) and its 回应 is due 09-23 10:00.
    done late: #3 签收 due 10:30, signed 10:50: 20 minutes late.
    open at the end: #3 alone, next 回应 due 09-23 10:00, 1 h 30 min left at 08:30.
    roll calls missed: 09-22 10:05 in dingtalk_duty (赵敏); wecom_duty's was answered at 10:08.
    零报告 of 09-22: 教育局 had #3; 西岸街道 and 城关镇 sent theirs at 16:00; the other five did neither.
    """
    found = await content(world, 22, "coordinators")
    assert numbers(found.new) == [3]
    assert found.by_grade() == {"重大": 1, "较大": 0, "一般": 0, "未定级": 0}
    assert numbers(found.ended) == [1, 2]
    assert [(f.ending.kind, f.ending.at) for f in found.ended if f.ending] == [
        ("closed", local(9, 22, 10)), ("closed", local(9, 22, 16))]
    assert found.overdue == []
    assert [(s.number, clock, due, done) for s, clock, due, done in found.done_late] == [
        (3, "签收", local(9, 22, 10, 30), local(9, 22, 10, 50))]
    assert numbers(found.open) == [3]
    assert found.missed_calls == [(local(9, 22, 10, 5), "dingtalk_duty", ("zhao_min",))]
    assert found.zero.with_items == {"education": (3,)}
    assert sorted(found.zero.zero) == ["chengguan", "xian"]
    assert found.zero.zero["xian"].at == local(9, 22, 16) and found.zero.zero["xian"].actor == "you_jia"
    assert found.zero.missing(found.units) == ["gov_office", "propaganda", "health", "dongfeng", "tax"]

    doc = await document(world, 22, "coordinators")
    assert doc.title == "舆情日志（2026年9月22日）"
    assert doc.subtitle == "清河县舆情应对协调组｜统计时段：9月22日 08:30 至 9月23日 08:30"
    texts = paragraphs(doc)
    assert texts[0] == ("新增舆情1条（重大1条），办结2条，超时未办0条，超时后办理1项，在办1条；点名未应答1次；"
                        "零报告：应报8个单位，已报送舆情1个，已零报告2个，未报告5个。")
    assert table(doc, "新增舆情").rows == (
        ("#3", "重大", "网传某中学校车超载，家长聚集学校门口", "其他", "清河县教育局", "9月22日 10:00", "已签收"),)
    assert [row[0] for row in table(doc, "办结事项").rows] == ["#1", "#2"]
    assert table(doc, "在办事项").rows[0][-1] == "回应 9月23日 10:00（剩余1小时30分钟）"
    assert ("#3【重大】网传某中学校车超载，家长聚集学校门口｜清河县教育局｜"
            "签收时限 9月22日 10:30，9月22日 10:50 签收，超时20分钟") in texts
    assert "9月22日 10:05 清河县舆情值班群（钉钉）：值班员赵敏未按时应答点名" in texts
    assert texts[-3:] == [
        "已报送舆情（1个）：清河县教育局（#3）",
        "已零报告（2个）：清河县城关镇人民政府（杨帆 16:00）；清河县西岸街道办事处（尤佳 16:00）",
        "未报告（5个）：清河县人民政府办公室、中共清河县委宣传部、清河县卫生健康局、城关镇东风社区居民委员会、国家税务总局清河县税务局",
    ]
    assert doc.mentions() == ()  # nothing overdue: nobody to call


async def test_overdue_items_name_their_leader_and_a_regrade_counts_from_the_regrade(world: RecordsWorld) -> None:
    """09-28 08:30 → 09-29 08:30, the county.

    new: #9 (09-28 09:00), 重大 at the end (graded 一般 09:05, regraded 重大 10:00).
    ended: none (#9 is closed 09-29 10:00).
    overdue at 09-29 08:30: #8 (税务局, never signed): 签收 due 09-27 16:00 → 1 day 16 h 30 min late;
      回应 due 09-28 16:00 → 16 h 30 min late; its 分管领导 施伟 is @-mentioned.
    done late: #9's 签收 deadline (09:30 for 重大) was past at the regrade, so it runs from 10:00;
      signed 10:20: 20 minutes late. Its 回应 09-29 08:00 is before 09:00: on time.
    open at the end: #8 and #9 (responded, not closed: no running clock).
    零报告 of 09-28: 教育局 had #9; 城关镇 and 西岸街道 sent theirs.
    """
    found = await content(world, 28, None)
    assert numbers(found.new) == [9]
    assert found.by_grade()["重大"] == 1
    assert found.ended == []
    assert [(s.number, clocks) for s, clocks in found.overdue] == [
        (8, [("签收", local(9, 27, 16)), ("回应", local(9, 28, 16))])]
    assert [(s.number, clock, due, done) for s, clock, due, done in found.done_late] == [
        (9, "签收", local(9, 28, 10), local(9, 28, 10, 20))]
    assert numbers(found.open) == [8, 9]
    assert found.missed_calls == []
    assert found.zero.with_items == {"education": (9,)}
    assert sorted(found.zero.zero) == ["chengguan", "xian"]

    doc = await document(world, 28, None)
    assert doc.subtitle == "全县｜统计时段：9月28日 08:30 至 9月29日 08:30"
    assert ("#8【一般】网友称在县税务局办理业务排队三小时｜牵头单位：国家税务总局清河县税务局｜"
            "签收时限 9月27日 16:00，已超时1天16小时30分钟；"
            "回应时限 9月28日 16:00，已超时16小时30分钟｜请分管领导施伟督办") in paragraphs(doc)
    assert doc.mentions() == ("shi_wei",)
    assert [row[-1] for row in table(doc, "在办事项").rows] == ["签收 9月27日 16:00（已超时1天16小时30分钟）", "待办结"]


async def test_merges_holidays_and_roll_calls_missed_in_both_chats(world: RecordsWorld) -> None:
    """09-24: #5 and #6 new (较大, 一般); #4 办结 10:00 and #6 合并 into #5 at 15:30 end; #5 open.
    零报告 of 09-24: 城关镇 had #5 (transferred to it that day) and #6; 税务局 had #5 (its lead at the
    report); 西岸街道 sent its 零报告. 09-29: two roll calls missed (dingtalk_duty and wecom_duty, 孙丽).
    10-01 (国庆节): #11 answered on time (09:00, due 20:00); nothing new, nothing done late; #8 is still
    overdue (never signed); open at 10-02 08:30: #8 and #11 (closed 10-02 10:00); 西岸街道's 零报告."""
    found = await content(world, 24, None)
    assert numbers(found.new) == [5, 6]
    assert found.by_grade() == {"重大": 0, "较大": 1, "一般": 1, "未定级": 0}
    assert [(f.number, f.ending.kind, f.ending.merged_into) for f in found.ended if f.ending] == [
        (4, "closed", None), (6, "merged", 5)]
    assert numbers(found.open) == [5]
    assert found.zero.with_items == {"chengguan": (5, 6), "tax": (5,)}
    assert list(found.zero.zero) == ["xian"]
    doc = await document(world, 24, None)
    assert [row[4] for row in table(doc, "办结事项").rows] == ["办结", "并入#5"]

    calls = await content(world, 29, None)
    assert calls.missed_calls == [(local(9, 29, 10, 5), "wecom_duty", ("sun_li",)),
                                  (local(9, 29, 10, 5), "dingtalk_duty", ("sun_li",))]
    holiday = await content(world, 1, None, month=10)
    assert (holiday.new, holiday.ended, holiday.done_late) == ([], [], [])
    assert [s.number for s, _ in holiday.overdue] == [8]
    assert numbers(holiday.open) == [8, 11]
    assert list(holiday.zero.zero) == ["xian"] and holiday.zero.with_items == {}


async def test_each_chat_sees_its_units_and_the_county_sees_all(world: RecordsWorld) -> None:
    """城关镇's chat, 09-24: the items of 城关镇 and 东风社区 — #5 (led by 城关镇 at the end) and
    #6; #4 was closed that day but under 西岸街道 (transferred on 09-23), so it is not 城关镇's.
    The 零报告 lines cover 城关镇 and 东风社区 only. The DingTalk duty chat (县政府办, where no item
    was reported) has no items, but its own missed roll call of 09-22."""
    town = await content(world, 24, "chengguan_duty")
    assert (numbers(town.new), numbers(town.ended), numbers(town.open)) == ([5, 6], [6], [5])
    assert town.units == ["chengguan", "dongfeng"]
    assert town.zero.missing(town.units) == ["dongfeng"]
    dingtalk = await content(world, 22, "dingtalk_duty")
    assert (dingtalk.new, dingtalk.ended, dingtalk.open) == ([], [], [])
    assert dingtalk.missed_calls == [(local(9, 22, 10, 5), "dingtalk_duty", ("zhao_min",))]
    assert (await content(world, 22, "wecom_duty")).missed_calls == []  # answered there at 10:08


async def test_a_classified_item_shows_only_its_authorised_summary(world: RecordsWorld) -> None:
    """#7 (涉密, 卫健局) is reported 09-25 10:00 and closed 09-27 12:00: in the logs of 09-25 (new),
    09-26 (open) and 09-27 (ended) it appears as "#7（涉密）" with the authorised summary only."""
    for day in (25, 26, 27):
        doc = await document(world, day, None)
        text = to_markdown(doc)
        assert "#7（涉密）" in text and AUTHORISED_SUMMARY in text
        assert "医疗纠纷" not in text and "患者家属" not in text


async def test_an_item_classified_since_is_hidden_in_the_logs_of_earlier_days(world: RecordsWorld) -> None:
    """#1 is marked 涉密 at 10-05 00:01, long after its days: the log of 09-21, made now, shows only
    its authorised summary, although at the period's end the item was not yet classified."""
    marked = await world.on("general_on_time", local(10, 5, 0, 1), lambda work, item: classifying.classify(
        work, COORDINATOR, world.duty_chat, item, "某道路设施相关舆情（涉密）"))
    assert isinstance(marked, ItemClassified)
    text = to_markdown(await document(world, 21, None))
    assert "| #1（涉密） | 一般 | 某道路设施相关舆情（涉密） |" in text and "路灯" not in text


# -- 零报告 in chat ------------------------------------------------------------------------------------------


async def zero_rows(bot: Bot) -> list[ItemEvent]:
    async with bot.runtime.db.read() as session:
        result = await session.execute(
            select(ItemEvent).where(ItemEvent.action == "zero_report").order_by(ItemEvent.id))
        return list(result.scalars())


async def test_zero_report_in_chat(bot: Bot) -> None:
    """杨帆 is 联络员 of 城关镇 and 东风社区: `零报告` covers both, once a day; 刘洋 has no unit role;
    a unit with an item today has nothing to report as 零报告; 施伟 (税务局's leader) may send it."""
    reply = await bot.say("yang_fan", "零报告", chat="chengguan_duty")
    assert reply["text"] == "已登记零报告：清河县城关镇人民政府、城关镇东风社区居民委员会，11月23日无舆情。"
    rows = await zero_rows(bot)
    assert [(r.actor, r.chat_id, r.item_id, r.after) for r in rows] == [
        ("yang_fan", "chengguan_duty", None, {"unit": "chengguan", "day": "2026-11-23"}),
        ("yang_fan", "chengguan_duty", None, {"unit": "dongfeng", "day": "2026-11-23"})]
    assert rows[0].detail == "清河县城关镇人民政府（chengguan）2026-11-23 零报告：今日无舆情"

    bot.clock.advance(timedelta(minutes=5))
    again = await bot.say("yang_fan", "今日无舆情，特此报告。", chat="chengguan_duty")
    assert again["text"].splitlines() == ["清河县城关镇人民政府今日已零报告（杨帆 10:00），无需重复报送。",
                                          "城关镇东风社区居民委员会今日已零报告（杨帆 10:00），无需重复报送。"]
    assert len(await zero_rows(bot)) == 2

    refused = await bot.say("liu_yang", "零报告")
    assert refused["text"].startswith("零报告由各单位联络员发送")
    assert (await bot.say("yang_fan", "零报告 卫健局"))["text"].startswith("您不是清河县卫生健康局的联络员或负责人")
    assert (await bot.say("yang_fan", "零报告 城官镇"))["text"].startswith("未找到单位“城官镇”")

    await bot.say("liu_yang", "上报 网友在微博反映县医院急诊排队三小时无人管")
    item_day = await bot.say("feng_xue", "零报告")
    assert item_day["text"] == "清河县卫生健康局今日已有舆情 #1，不作零报告。"
    assert (await bot.say("shi_wei", "零报告：本单位今日无舆情"))["text"] == \
        "已登记零报告：国家税务总局清河县税务局，11月23日无舆情。"
    assert [r.after["unit"] for r in await zero_rows(bot)] == ["chengguan", "dongfeng", "tax"]


# -- the 17:00 reminder ------------------------------------------------------------------------------------------


async def queued(bot: Bot, prefix: str) -> list[OutboxMessage]:
    async with bot.runtime.db.read() as session:
        result = await session.execute(select(OutboxMessage).where(OutboxMessage.key.startswith(prefix))
                                       .order_by(OutboxMessage.key))
        return list(result.scalars())


async def test_the_1700_reminder_names_the_units_without_item_or_zero_report(bot: Bot) -> None:
    """Monday 11-23: 城关镇 and 东风社区 send 零报告 (杨帆), 卫健局 has #1. At 17:00 the other five
    are reminded in their duty chats: 县政府办 in its own (wecom_duty, the first chat of its unit),
    the rest — no chat of their own — in the coordinators' chat, each liaison @-mentioned."""
    await bot.say("yang_fan", "零报告", chat="chengguan_duty")
    await bot.say("liu_yang", "上报 网友在微博反映县医院急诊排队三小时无人管")
    module, make = ZeroReminder(), work_for(bot.runtime)
    bot.clock.set(datetime(2026, 11, 23, 16, 59, tzinfo=SHANGHAI))
    await run_cycles(bot.runtime.db, module, make)
    assert await queued(bot, "zero-remind:") == []
    bot.clock.set(datetime(2026, 11, 23, 17, 0, tzinfo=SHANGHAI))
    for _ in range(3):
        await run_cycles(bot.runtime.db, module, make)
    rows = await queued(bot, "zero-remind:")
    assert [r.key for r in rows] == ["zero-remind:coordinators:2026-11-23", "zero-remind:wecom_duty:2026-11-23"]
    coordinators, duty = rows
    assert duty.text.splitlines() == [
        "【零报告提醒】11月23日：截至17:00，以下单位今日既未报送舆情，也未零报告：",
        "清河县人民政府办公室（联络员：赵敏）",
        "请联络员核实：有舆情请发送“上报 内容”；确无舆情请发送“零报告”。"]
    assert duty.mentions == ["zhao_min"]
    assert coordinators.text.splitlines()[1:-1] == [
        "中共清河县委宣传部（联络员：孙丽）", "清河县教育局（联络员：蒋波）", "清河县西岸街道办事处（联络员：尤佳）",
        "国家税务总局清河县税务局（联络员：张静）"]
    assert coordinators.mentions == ["sun_li", "jiang_bo", "you_jia", "zhang_jing"]


async def test_a_missed_reminder_is_sent_late_that_day_only(bot: Bot) -> None:
    """Down over 17:00, started at 20:00: the reminder goes once, marked 补发, to the three chats of
    the eight silent units (城关镇 and 东风社区: chengguan_duty). Down until after midnight: the day
    is over, and the reminder about it is not sent."""
    module, make = ZeroReminder(), work_for(bot.runtime)
    await running_since(bot.runtime.db, [REMINDER_MODULE], bot.clock.now())  # running before it went down
    bot.clock.set(datetime(2026, 11, 23, 20, 0, tzinfo=SHANGHAI))
    await run_cycles(bot.runtime.db, module, make)
    await run_cycles(bot.runtime.db, module, make)
    rows = await queued(bot, "zero-remind:")
    assert [r.chat_id for r in rows] == ["chengguan_duty", "coordinators", "wecom_duty"]
    assert all(r.text.startswith("【零报告提醒】11月23日（补发）：") for r in rows)
    bot.clock.set(datetime(2026, 11, 25, 0, 30, tzinfo=SHANGHAI))  # 11-24's 17:00 passed unseen
    await run_cycles(bot.runtime.db, module, make)
    assert len(await queued(bot, "zero-remind:")) == 3
    async with bot.runtime.db.read() as session:
        assert [(r.due_at, r.late) for r in await engine_runs.runs(session, REMINDER_MODULE)] == [
            (datetime(2026, 11, 23, 17, 0, tzinfo=SHANGHAI), True)]


# -- the schedule ----------------------------------------------------------------------------------------------


LOG_CHATS = ["chengguan_duty", "coordinators", "dingtalk_duty", "wecom_duty"]  # every chat but ops


async def logs_posted(bot: Bot) -> dict[str, list[str]]:
    """The daily-log rows by chat and day (part 0: its first message)."""
    found: dict[str, list[str]] = {}
    for row in await queued(bot, "daily-log:"):
        _, chat, _day, part = row.key.split(":")
        if part == "0":
            found.setdefault(chat, []).append(row.text.splitlines()[0])
    return found


async def test_the_log_is_posted_once_per_chat_and_day_whatever_the_replicas(world: RecordsWorld) -> None:
    """At 10-05 08:30 every duty chat gets the log of 10-04, once, though two replicas run the
    module again and again; the admins' chat (ops) gets none."""
    other = await start_bot(world.config, world.clock)
    try:
        replica = Bot(other, world.clock, world.config)
        world.clock.set(local(10, 5, 8, 30))
        first, second = DailyLog(chat_replies), DailyLog(chat_replies)
        for _ in range(3):
            await asyncio.gather(run_cycles(world.runtime.db, first, work_for(world.runtime)),
                                 run_cycles(replica.runtime.db, second, work_for(replica.runtime)))
        posted = await logs_posted(world.bot)
        assert sorted(posted) == LOG_CHATS
        assert all(len(titles) == 1 and titles[0].startswith("舆情日志（2026年10月4日）") for titles in posted.values())
        assert not any("补发" in titles[0] for titles in posted.values())
        rows = await queued(world.bot, "daily-log:coordinators:2026-10-04:")
        # #12 was answered 3 h late on 10-04 (due 11:00, 14:00): the county's log says so.
        assert any("#12【较大】" in row.text and "超时3小时" in row.text for row in rows)
    finally:
        await other.close()
    assert {LOG_MODULE, REMINDER_MODULE} <= set(build_engine(world.runtime).slots)


async def test_a_log_missed_while_down_is_posted_once_on_start_marked_late(world: RecordsWorld) -> None:
    await running_since(world.runtime.db, [LOG_MODULE], local(10, 5, 8, 0))  # running before it went down
    world.clock.set(local(10, 5, 11, 0))  # the bot was down from before 08:30 until 11:00
    module = DailyLog(chat_replies)
    for _ in range(2):
        await run_cycles(world.runtime.db, module, work_for(world.runtime))
    posted = await logs_posted(world.bot)
    assert sorted(posted) == LOG_CHATS
    assert all(titles == [titles[0]] and "（补发）" in titles[0] for titles in posted.values())
    async with world.runtime.db.read() as session:
        assert [(r.due_at, r.late) for r in await engine_runs.runs(session, LOG_MODULE)] == [
            (local(10, 5, 8, 30), True)]


# -- on demand -----------------------------------------------------------------------------------------------


async def test_the_log_on_demand_in_chat(world: RecordsWorld) -> None:
    """At 10-05 00:00 the current duty day is 10-04 (before 08:30), up to now; `日志 昨天` is
    10-04 too (the calendar's yesterday), `日志 9-22` that day's whole log."""
    now = await world.bot.post("coordinators", "wang_jun", "日志")
    assert now[0]["text"].splitlines()[:2] == [
        "舆情日志（2026年10月4日）" + ("（1/2）" if len(now) == 2 else ""),
        "清河县舆情应对协调组｜统计时段：10月4日 08:30 至 10月5日 00:00（截至查询时）"]
    yesterday = await world.bot.post("coordinators", "wang_jun", "日志 昨天")
    assert [r["text"] for r in yesterday] == [r["text"] for r in now]
    earlier = await world.bot.post("coordinators", "wang_jun", "日志 ９－２２")
    assert earlier[0]["text"].splitlines()[1] == "清河县舆情应对协调组｜统计时段：9月22日 08:30 至 9月23日 08:30"
    assert "新增舆情1条（重大1条）" in "\n".join(r["text"] for r in earlier)
    no_day = await world.bot.say("wang_jun", "日志 2-30", chat="coordinators")
    assert no_day["text"] == "没有“2-30”这一天，请核对日期。"
    assert (await world.bot.say("wang_jun", "日志 今天", chat="coordinators"))["text"].startswith(
        "10月5日的日志自10月5日08:30起统计，尚未开始")
    assert (await world.bot.say("wang_jun", "日志 随便", chat="coordinators"))["text"].startswith("用法：日志")


def cli_args(world: RecordsWorld, *extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["report", "daily", "--config", str(EXAMPLE_CONFIG),
                                      "--database", world.config.database.url, *extra])


async def test_cli_markdown_and_docx(world: RecordsWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clock = ManualClock(local(10, 5, 9, 0))
    await asyncio.to_thread(cmd_report_daily, cli_args(world, "--date", "2026-09-28"), clock)
    text = capsys.readouterr().out
    assert text.startswith("# 舆情日志（2026年9月28日）\n")
    assert "全县｜统计时段：9月28日 08:30 至 9月29日 08:30" in text
    assert "| #8 | 一般 | 网友称在县税务局办理业务排队三小时 |" in text

    md = tmp_path / "日志.md"
    await asyncio.to_thread(cmd_report_daily, cli_args(world, "--chat", "chengguan_duty", "-o", str(md)), clock)
    subtitle = md.read_text(encoding="utf-8").splitlines()[2]
    assert subtitle == "城关镇舆情工作群｜统计时段：10月4日 08:30 至 10月5日 08:30"

    out = tmp_path / "日志.docx"
    await asyncio.to_thread(cmd_report_daily, cli_args(world, "--date", "2026-09-22", "-o", str(out)), clock)
    docx = open_docx(io.BytesIO(out.read_bytes()))
    lines = [p.text for p in docx.paragraphs if p.text]
    assert lines[0] == "舆情日志（2026年9月22日）"
    assert "一、总体情况" in lines and "七、零报告" in lines
    assert any(line.startswith("新增舆情1条（重大1条），办结2条") for line in lines)
    new = docx.tables[0]
    assert [c.text for c in new.rows[0].cells] == ["编号", "等级", "摘要", "来源", "牵头单位", "上报时间", "状态"]
    assert [c.text for c in new.rows[1].cells][:2] == ["#3", "重大"]


async def test_a_new_installation_makes_up_for_nothing_before_its_first_cycle(bot: Bot) -> None:
    """Started for the first time at 11:00: yesterday's log (due today 08:30) is not posted as 补发 —
    the bot was never down over it; the next morning's is posted on time."""
    module, make = DailyLog(chat_replies), work_for(bot.runtime)
    bot.clock.set(datetime(2026, 11, 23, 11, 0, tzinfo=SHANGHAI))
    await run_cycles(bot.runtime.db, module, make)
    assert await logs_posted(bot) == {}
    bot.clock.set(datetime(2026, 11, 24, 8, 30, tzinfo=SHANGHAI))
    await run_cycles(bot.runtime.db, module, make)
    posted = await logs_posted(bot)
    assert posted and all("（补发）" not in titles[0] for titles in posted.values())
