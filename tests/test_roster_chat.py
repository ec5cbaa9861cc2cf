"""Roster conversations through the real HTTP entry point, on SQLite and PostgreSQL: 值班, 我的值班,
换班 with 同意/拒绝 (across a restart, and expiring), 代班, 请假, 排班, and the roster replacing the
configured duty people everywhere."""

from __future__ import annotations

import time as time_module
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from domain.config import Config
from store.models import ItemEvent, RosterLeave, RosterOverride
from tests.conftest import SHANGHAI, Bot, start_bot
from tests.roster_support import EXAMPLE_TEXT, load_roster

DAY_SHIFT_1125 = "白班 08:30—17:30｜带班领导 周涛 13800000005｜值班员 赵敏 13800000003"
# The example roster with a third officer (刘洋), so that someone may cover within the limits of duty and rest.
THREE_OFFICERS = EXAMPLE_TEXT.replace("值班员,赵敏、孙丽,每天", "值班员,赵敏、孙丽、刘洋,每天").replace(
    "值班员,孙丽、赵敏,每班", "值班员,孙丽、刘洋、赵敏,每班")


async def events(bot: Bot, action: str) -> list[ItemEvent]:
    async with bot.runtime.db.read() as session:
        result = await session.execute(select(ItemEvent).where(ItemEvent.action == action).order_by(ItemEvent.id))
        return list(result.scalars())


async def bot_texts(bot: Bot, chat: str) -> list[str]:
    return [m["text"] for m in await bot.messages(chat) if m["from"] == "bot"]


# -- lookups ---------------------------------------------------------------------------------------------


async def test_without_a_roster_the_configured_people_answer(bot: Bot) -> None:
    reply = await bot.say("liu_yang", "值班")
    assert reply["text"].startswith("本群尚未启用排班表")
    assert "带班领导：李华 13800000002" in reply["text"] and "值班员：赵敏 13800000003" in reply["text"]


async def test_duty_now_names_the_people_with_phones_and_until_when(bot: Bot) -> None:
    await load_roster(bot)
    reply = await bot.say("liu_yang", "值班")
    assert reply["text"].splitlines() == [
        "当前值班（11月23日 白班 08:30—17:30）：",
        "带班领导：周涛 13800000005",
        "值班员：赵敏 13800000003",
        "本班至 11月23日 17:30。",
        "下一班：11月23日 夜班 孙丽/周涛（值班员/带班领导）",
    ]


async def test_the_roster_replaces_the_configured_duty_people_everywhere(bot: Bot) -> None:
    await load_roster(bot)
    bot.clock.set(datetime(2026, 11, 23, 20, 0, tzinfo=SHANGHAI))
    reply = await bot.say("liu_yang", "上报 西岸滨河路路灯不亮")
    assert reply["mentions"] == ["sun_li"]  # the configured officer is 赵敏; tonight the roster says 孙丽
    graded = await bot.say("sun_li", "3")  # 孙丽 was asked for the grade as the person on duty
    assert graded["text"].startswith("【舆情通报】#1 一般舆情") and "sun_li" in graded["mentions"]
    other = await bot.say("liu_yang", "值班", chat="chengguan_duty")  # a chat without a roster keeps its config
    assert other["text"].startswith("本群尚未启用排班表")


async def test_duty_for_a_date_and_for_the_week(bot: Bot) -> None:
    await load_roster(bot)
    tomorrow = await bot.say("liu_yang", "值班 明天")
    assert tomorrow["text"].splitlines() == [
        "11月24日（周二，工作日）值班安排：",
        "白班 08:30—17:30｜带班领导 周涛 13800000005｜值班员 孙丽 13800000006",
        "夜班 17:30—次日08:30｜带班领导 周涛 13800000005｜值班员 赵敏 13800000003",
    ]
    for text in ("值班 11-25", "值班 11月25日", "值班　１１月２５日"):
        reply = await bot.say("liu_yang", text)
        assert reply["text"].splitlines()[:2] == ["11月25日（周三，工作日）值班安排：", DAY_SHIFT_1125], text
    week = await bot.say("liu_yang", "值班 本周")
    lines = week["text"].splitlines()
    assert lines[0] == "本周值班（11月23日—11月29日，值班员/带班领导）："
    assert lines[1] == "11-23 周一 白班 赵敏/周涛｜夜班 孙丽/周涛"
    assert lines[6] == "11-28 周六 白班 孙丽/周涛｜夜班 赵敏/周涛"
    assert len(lines) == 8
    bad = await bot.say("liu_yang", "值班 2月30日")
    assert bad["text"] == "没有“2月30日”这一天，请检查日期。"  # echoed as the user wrote it
    for text, written in (("值班 11-31", "11-31"), ("排班 11月31日夜班 值班员 @赵敏", "11月31日"),
                          ("请假 11-25 至 2月30日", "2月30日")):
        assert (await bot.say("xu_ming", text))["text"] == f"没有“{written}”这一天，请检查日期。", text
    usage = await bot.say("liu_yang", "值班 某天")
    assert usage["text"].startswith("用法：值班")


async def test_a_holiday_and_an_unpublished_year(bot: Bot) -> None:
    await load_roster(bot)
    national = await bot.say("liu_yang", "值班 2026-10-01")  # before the import: resolved from the rotations
    assert national["text"].splitlines()[0] == "10月1日（周四，法定节假日（国庆节））值班安排："
    # One officer a shift on a holiday too: two officers doing 24 hours each would leave nobody rested.
    assert "白班 08:30—17:30｜带班领导 周涛 13800000005｜值班员 孙丽 13800000006" in national["text"]
    adjusted = await bot.say("liu_yang", "值班 2026-01-04")
    assert adjusted["text"].splitlines()[0] == "1月4日（周日，工作日（调休））值班安排："
    unknown = await bot.say("liu_yang", "值班 2027-01-01")
    lines = unknown["text"].splitlines()
    assert lines[0] == "1月1日（周五，工作日）值班安排："  # no bracketed tag on the day
    assert lines[-1] == "注：2027年节假日安排尚未公布，1月1日暂按星期排定，公布后可能调整。"
    assert "待确认" not in unknown["text"]
    bot.clock.set(datetime(2026, 12, 28, 10, 0, tzinfo=SHANGHAI))
    week = (await bot.say("liu_yang", "值班 下周"))["text"].splitlines()
    assert week[1] == "01-04 周一 白班 赵敏/周涛｜夜班 孙丽/周涛"  # no tag on each day …
    assert week[-1] == "注：2027年节假日安排尚未公布，1月4日至1月10日暂按星期排定，公布后可能调整。"  # … one sentence
    assert sum("尚未公布" in line for line in week) == 1


async def test_my_duty_lists_the_next_shifts(bot: Bot) -> None:
    await load_roster(bot)
    reply = await bot.say("sun_li", "我的值班")
    lines = reply["text"].splitlines()
    assert lines[0] == "孙丽的近期值班（60天内）："
    assert lines[1] == "11月23日 周一 夜班 17:30—次日08:30 值班员"
    assert lines[2] == "11月24日 周二 白班 08:30—17:30 值班员"
    assert len(lines) == 11  # at most ten
    nobody = await bot.say("liu_yang", "我的值班")
    assert nobody["text"] == "您在60天内没有值班安排。"


async def test_lookups_in_a_server_running_in_another_timezone(
    config: Config, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for zone in ("UTC", "America/New_York"):
        monkeypatch.setenv("TZ", zone)
        time_module.tzset()
        try:
            client = await start_bot(config, clock)
            bot = Bot(client, clock, config)
            try:
                if zone == "UTC":
                    await load_roster(bot)
                reply = await bot.say("liu_yang", "值班")
                assert reply["text"].startswith("当前值班（11月23日 白班 08:30—17:30）："), zone
                assert "本班至 11月23日 17:30。" in reply["text"]
            finally:
                await client.close()
        finally:
            monkeypatch.undo()
            time_module.tzset()


# -- 换班 -------------------------------------------------------------------------------------------------


async def test_swap_asked_and_agreed(bot: Bot) -> None:
    await load_roster(bot)
    asked = await bot.say("zhao_min", "换班 @孙丽 11-25白班")
    assert asked["mentions"] == ["sun_li"]
    assert asked["text"].splitlines()[:2] == ["已向孙丽发出换班申请：", "11月25日 白班 08:30—17:30 值班员：赵敏 → 孙丽"]
    assert "请孙丽回复“同意”或“拒绝”（11月24日 10:00前有效）" in asked["text"]
    agreed = await bot.say("sun_li", "同意")
    assert agreed["text"].splitlines()[:2] == ["【换班】赵敏 与 孙丽 换班已确认：",
                                                "11月25日 白班 08:30—17:30 值班员：赵敏 → 孙丽"]
    assert agreed["mentions"] == ["zhao_min", "sun_li"]
    day = await bot.say("liu_yang", "值班 11-25")
    assert "白班 08:30—17:30｜带班领导 周涛 13800000005｜值班员 孙丽 13800000006" in day["text"]
    [event] = await events(bot, "roster_swap")
    assert event.actor == "sun_li" and event.before["parts"][0]["person"] == "zhao_min"
    assert event.after["parts"][0]["person"] == "sun_li"
    again = await bot.say("sun_li", "同意")
    assert again["text"] == "您当前没有待答复的换班申请。"


async def test_swap_both_ways(bot: Bot) -> None:
    await load_roster(bot)
    await bot.say("zhao_min", "换班 @孙丽 11-25白班 换 11-24白班")
    reply = await bot.say("sun_li", "同意。")
    assert reply["text"].splitlines()[1:3] == ["11月25日 白班 08:30—17:30 值班员：赵敏 → 孙丽",
                                               "11月24日 白班 08:30—17:30 值班员：孙丽 → 赵敏"]
    tomorrow = await bot.say("liu_yang", "值班 明天")
    assert "白班 08:30—17:30｜带班领导 周涛 13800000005｜值班员 赵敏 13800000003" in tomorrow["text"]


async def test_swap_declined_and_wrong_requests(bot: Bot) -> None:
    await load_roster(bot)
    not_mine = await bot.say("zhao_min", "换班 @孙丽 11-24白班")
    assert not_mine["text"].startswith("您在11月24日白班没有值班安排")
    unknown = await bot.say("zhao_min", "换班 @张三 11-25白班")
    assert unknown["text"].startswith("未找到人员“张三”")
    leader = await bot.say("zhou_tao", "换班 @孙丽 11-25白班")
    assert leader["text"].startswith("孙丽不是带班领导")
    usage = await bot.say("zhao_min", "换班 11-25白班")
    assert usage["text"].startswith("用法：换班")
    only = await bot.say("zhao_min", "换班 @孙丽 11-24")  # without a shift name: 赵敏's one shift that day
    assert "11月24日 夜班 17:30—次日08:30 值班员：赵敏 → 孙丽" in only["text"]
    await bot.say("zhao_min", "换班 @孙丽 11-25白班")
    wrong = await bot.say("liu_yang", "同意")
    assert wrong["text"] == "您当前没有待答复的换班申请。"
    declined = await bot.say("sun_li", "拒绝")
    assert declined["text"].startswith("孙丽 拒绝了 赵敏 的换班申请") and declined["mentions"] == ["zhao_min"]
    assert len(await events(bot, "roster_swap_declined")) == 1
    assert "值班员 赵敏" in (await bot.say("liu_yang", "值班 11-25"))["text"]


async def test_swap_question_survives_a_restart_and_expires(config: Config, clock: ManualClock) -> None:
    first = await start_bot(config, clock)
    bot = Bot(first, clock, config)
    await load_roster(bot)
    await bot.say("zhao_min", "换班 @孙丽 11-25白班")
    await first.close()
    second = await start_bot(config, clock)
    try:
        bot = Bot(second, clock, config)
        clock.advance(timedelta(hours=1))
        agreed = await bot.say("sun_li", "同意")
        assert agreed["text"].startswith("【换班】赵敏 与 孙丽 换班已确认")
        await bot.say("zhao_min", "换班 @孙丽 11-27白班")
        clock.advance(timedelta(hours=25))
        expired = await bot.say("sun_li", "同意")
        assert expired["text"].startswith("该换班申请已于 11月24日 11:00 过期，排班不变。")
        assert "如仍需换班，请 赵敏 重新发起。" in expired["text"]
        assert "值班员 赵敏" in (await bot.say("liu_yang", "值班 11-27"))["text"]
    finally:
        await second.close()


# -- 代班, 请假, 排班 ------------------------------------------------------------------------------------------


async def test_cover_takes_a_shift_and_mentions_both(bot: Bot) -> None:
    await load_roster(bot)
    reply = await bot.say("sun_li", "代班 11-25白班")
    assert reply["text"] == "【代班】孙丽 代 赵敏 值班：\n11月25日 白班 08:30—17:30 值班员：赵敏 → 孙丽\n@孙丽 @赵敏"
    assert reply["mentions"] == ["sun_li", "zhao_min"]
    async with bot.runtime.db.read() as session:
        [override] = (await session.execute(select(RosterOverride))).scalars().all()
    assert (override.person_id, override.replaces, override.kind) == ("sun_li", "zhao_min", "cover")
    mine = await bot.say("sun_li", "代班 11-25白班")
    assert mine["text"] == "您已在11月25日白班值班。"
    outsider = await bot.say("liu_yang", "代班 11-25白班")
    assert outsider["text"].startswith("刘洋不是值班员或带班领导")
    assert len(await events(bot, "roster_cover")) == 1


async def test_running_shift_is_covered_from_now(bot: Bot) -> None:
    await load_roster(bot)
    reply = await bot.say("sun_li", "代班 今天白班")
    assert "11月23日 白班 10:00—17:30 值班员：赵敏 → 孙丽" in reply["text"]
    now = await bot.say("liu_yang", "值班")
    assert "值班员：孙丽 13800000006（10:00起）" in now["text"]


async def test_leave_says_who_covers_each_shift_or_that_nobody_can(bot: Bot) -> None:
    """Two officers, 24 hours on and 24 off: nobody else may cover within the limits; the admins hear."""
    await load_roster(bot)
    reply = await bot.say("zhao_min", "请假 11-25 至 11-26 外出培训")
    assert reply["text"].splitlines() == [
        "【请假】赵敏 请假：11月25日 00:00 至 11月27日 00:00（外出培训）。",
        "期间班次安排：",
        "11月24日 夜班：无人可顶替，已报管理员",  # a whole-day leave covers the night reaching into it
        "11月25日 白班：无人可顶替，已报管理员",
        "11月26日 夜班：无人可顶替，已报管理员",
        "@赵敏",
    ]
    assert reply["mentions"] == ["zhao_min"]
    notices = await bot_texts(bot, "ops")
    assert any(t.startswith("【排班缺口】清河县舆情值班群（企业微信）因赵敏请假出现缺口") for t in notices)
    assert any(t.startswith("【排班缺口】清河县舆情值班群（钉钉）因赵敏请假出现缺口") for t in notices)
    day = await bot.say("liu_yang", "值班 11-25")
    assert "白班 08:30—17:30｜带班领导 周涛 13800000005｜值班员 （空缺）" in day["text"]  # the reply told the truth
    async with bot.runtime.db.read() as session:
        assert len((await session.execute(select(RosterLeave))).scalars().all()) == 1
    assert len(await events(bot, "roster_leave")) == 1
    others = await bot.say("zhao_min", "请假 @孙丽 11-28")
    assert others["text"].startswith("抱歉，只有管理员或协调人员可以为他人登记请假")
    past = await bot.say("zhao_min", "请假 11-20")
    assert past["text"] == "请假的结束时间应晚于开始时间，且不早于现在。"
    none = await bot.say("sun_li", "请假 11-23 10:30 至 11-23 11:00")
    assert none["text"].splitlines() == ["【请假】孙丽 请假：11月23日 10:30 至 11月23日 11:00。",
                                         "期间没有孙丽的班次，排班不变。", "@孙丽"]


async def test_leave_names_a_substitute_within_the_limits_of_duty_and_rest(bot: Bot) -> None:
    await load_roster(bot, THREE_OFFICERS)
    reply = await bot.say("sun_li", "请假 11-28")
    # 孙丽's night of the 27th (reaching into the 28th) and her day shift of the 28th. 赵敏, on the day
    # shift of the 27th, could take the night (24 hours) but then not the 28th's day shift too.
    assert reply["text"].splitlines() == [
        "【请假】孙丽 请假：11月28日 00:00 至 11月29日 00:00。",
        "期间班次安排：",
        "11月27日 夜班：刘洋顶替",
        "11月28日 白班：赵敏顶替",
        "@孙丽 @刘洋 @赵敏",
    ]
    assert reply["mentions"] == ["sun_li", "liu_yang", "zhao_min"]
    week = (await bot.say("liu_yang", "值班 本周"))["text"].splitlines()
    assert week[5:7] == ["11-27 周五 白班 赵敏/周涛｜夜班 刘洋/周涛", "11-28 周六 白班 赵敏/周涛｜夜班 刘洋/周涛"]
    assert await bot_texts(bot, "ops") == []  # nothing left uncovered


async def test_cancel_leave_brings_the_shifts_back(bot: Bot) -> None:
    await load_roster(bot, THREE_OFFICERS)
    await bot.say("zhao_min", "请假 11-25 至 11-26 外出培训")
    assigned = await bot.say("xu_ming", "排班 11-26夜班 值班员 @赵敏")
    assert assigned["text"] == ("赵敏 11月25日至11月26日 请假（外出培训），不能排班。"
                                "如需取消请假，请赵敏发送“销假 11月25日”，或由管理员发送“销假 @赵敏 11月25日”。")
    cancelled = await bot.say("zhao_min", "销假 11-26")
    assert cancelled["text"].splitlines() == [
        "【销假】赵敏 销假：11月25日至11月26日（外出培训）。", "恢复的班次：", "11月26日 夜班 值班员：赵敏",
        "@赵敏 @孙丽"]
    assert cancelled["mentions"] == ["zhao_min", "sun_li"]  # 孙丽 no longer covers
    assert "夜班 17:30—次日08:30｜带班领导 周涛 13800000005｜值班员 赵敏" in (
        await bot.say("liu_yang", "值班 11-26"))["text"]
    assert (await bot.say("zhao_min", "销假"))["text"] == "赵敏没有尚未结束的请假。"
    assert (await bot.say("zhao_min", "销假 @孙丽"))["text"].startswith("抱歉，只有管理员或协调人员可以为他人销假")
    assert len(await events(bot, "roster_leave_cancelled")) == 1


async def test_nobody_is_put_on_duty_during_their_leave(bot: Bot) -> None:
    await load_roster(bot)
    await bot.say("sun_li", "请假 11-25 身体不适")
    refusal = ("孙丽 11月25日 请假（身体不适），不能{action}。如需取消请假，请孙丽发送“销假 11月25日”，"
               "或由管理员发送“销假 @孙丽 11月25日”。")
    assert (await bot.say("zhao_min", "换班 @孙丽 11-25白班"))["text"] == refusal.format(action="换班")
    assert (await bot.say("sun_li", "代班 11-25白班"))["text"] == refusal.format(action="代班")
    assert (await bot.say("xu_ming", "排班 11-25白班 值班员 @孙丽"))["text"] == refusal.format(action="排班")
    assert (await bot.say("xu_ming", "排班 @孙丽 替 @赵敏 11-25白班"))["text"] == refusal.format(action="排班")
    # A leave registered between the question and the answer: the swap is refused, not confirmed.
    await bot.say("zhao_min", "换班 @孙丽 11-27白班")
    await bot.say("sun_li", "请假 11-27")
    agreed = await bot.say("sun_li", "同意")
    assert agreed["text"].startswith("孙丽 11月27日 请假，不能换班。")
    assert "值班员 赵敏" in (await bot.say("liu_yang", "值班 11-27"))["text"]
    assert await events(bot, "roster_swap") == []


async def test_admin_sets_the_roster_and_others_may_not(bot: Bot) -> None:
    await load_roster(bot)
    refused = await bot.say("zhao_min", "排班 11-25夜班 值班员 @赵敏")
    assert refused["text"] == "抱歉，只有管理员或协调人员可以调整排班。"
    assigned = await bot.say("xu_ming", "排班 11-25夜班 值班员 @赵敏")
    assert assigned["text"].startswith("【排班】11月25日 夜班 值班员：赵敏（原：孙丽）")
    assert set(assigned["mentions"]) == {"zhao_min", "sun_li"}
    assert "夜班 17:30—次日08:30｜带班领导 周涛 13800000005｜值班员 赵敏" in (
        await bot.say("liu_yang", "值班 11-25"))["text"]
    overridden = await bot.say("wang_jun", "排班 @李华 替 @周涛 11-25白班")  # a coordinator
    assert overridden["text"].startswith("【排班】李华 替 周涛 值班：\n11月25日 白班 08:30—17:30 带班领导：周涛 → 李华")
    ranged = await bot.say("xu_ming", "排班 @孙丽 替 @赵敏 11-25 20:00 至 11-25 22:00")
    assert "11月25日 夜班 20:00—22:00 值班员：赵敏 → 孙丽" in ranged["text"]
    day = await bot.say("liu_yang", "值班 11-25")
    assert ("值班员 赵敏 13800000003（至20:00）、孙丽 13800000006（20:00—22:00）、赵敏 13800000003（22:00起）"
            in day["text"])
    assert [e.action for e in await events(bot, "roster_assign")] == ["roster_assign"]
    assert len(await events(bot, "roster_override")) == 2
    assert len(await events(bot, "refused")) == 1


async def test_help_lists_the_roster_commands(bot: Bot) -> None:
    text = (await bot.say("liu_yang", "帮助"))["text"]
    for verb in ("值班", "我的值班", "换班", "代班", "请假", "排班"):
        assert f"\n{verb} " in text, verb


async def test_lookup_cache_sees_own_changes_at_once_and_other_replicas_within_a_second(
    config: Config, clock: ManualClock,
) -> None:
    """The @-mentions of a report come from the cached lookup (值班 itself reads the table)."""
    clock.set(datetime(2026, 11, 23, 20, 0, tzinfo=SHANGHAI))
    first, second = await start_bot(config, clock), await start_bot(config, clock)
    try:
        a, b = Bot(first, clock, config), Bot(second, clock, config)
        ticks = [0.0]
        b.runtime.duty._monotonic = lambda: ticks[0]  # type: ignore[attr-defined]

        async def officer(replica: Bot) -> list[str]:
            return list((await replica.say("liu_yang", "上报 西岸滨河路路灯不亮"))["mentions"])

        assert await officer(a) == await officer(b) == ["zhao_min"]  # configured
        await load_roster(a)  # committed through replica a's engine
        assert await officer(a) == ["sun_li"]  # tonight's officer, at once
        assert await officer(b) == ["zhao_min"]  # the other replica: within its second
        ticks[0] += 1.0
        assert await officer(b) == ["sun_li"]
        await a.say("zhao_min", "代班 今天夜班")
        assert await officer(a) == ["zhao_min"]
        ticks[0] += 1.0
        assert await officer(b) == ["zhao_min"]
    finally:
        await first.close()
        await second.close()
