"""Roster conversations through the real HTTP entry point, on SQLite and PostgreSQL: 值班, 我的值班,
换班 with 同意/拒绝 (across a restart, and expiring), 代班, 请假, 排班, and the roster replacing the
configured duty people everywhere."""

from __future__ import annotations

import time as time_module
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import Config
from store.models import ItemEvent, RosterLeave, RosterOverride
from tests.conftest import SHANGHAI, Bot, start_bot
from tests.roster_support import load_roster

DAY_SHIFT_1125 = "白班 08:30—17:30｜带班领导 周涛 13800000005｜值班员 赵敏 13800000003"


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
    assert lines[6] == "11-28 周六 全天 赵敏/周涛"
    assert len(lines) == 8
    bad = await bot.say("liu_yang", "值班 2月30日")
    assert bad["text"].startswith("日期“2-30”不存在")
    usage = await bot.say("liu_yang", "值班 某天")
    assert usage["text"].startswith("用法：值班")


async def test_a_holiday_and_an_unpublished_year(bot: Bot) -> None:
    await load_roster(bot)
    national = await bot.say("liu_yang", "值班 2026-10-01")  # before the import: resolved from the rotations
    assert national["text"].splitlines()[0] == "10月1日（周四，法定节假日（国庆节））值班安排："
    assert "值班员 孙丽 13800000006、赵敏 13800000003" in national["text"]  # two officers on a holiday
    adjusted = await bot.say("liu_yang", "值班 2026-01-04")
    assert adjusted["text"].splitlines()[0] == "1月4日（周日，工作日（调休））值班安排："
    unknown = await bot.say("liu_yang", "值班 2027-01-01")
    assert "工作日（待确认）" in unknown["text"] and "尚未公布" in unknown["text"]


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


async def test_leave_is_covered_and_a_gap_is_reported_at_once(bot: Bot) -> None:
    await load_roster(bot)
    reply = await bot.say("zhao_min", "请假 11-25 至 11-26 外出培训")
    lines = reply["text"].splitlines()
    assert lines[0] == "【请假】赵敏 请假：11月25日 00:00 至 11月27日 00:00（外出培训）。"
    assert lines[1] == "期间班次调整："
    assert "11月25日 白班 值班员：孙丽" in lines and "11月26日 夜班 值班员：孙丽" in lines
    assert reply["mentions"][0] == "zhao_min" and "sun_li" in reply["mentions"]
    assert not any("⚠" in line for line in lines)
    both = await bot.say("sun_li", "请假 11-26")
    assert "⚠ 以下时段无人可排，请管理员补排：" in both["text"]
    # A whole-day leave covers the night shift reaching into the day, too.
    assert "11月25日 17:30—11月27日 08:30 值班员：无人值班\n" in both["text"]
    assert "11月25日 17:30—11月27日 08:30 值班员：无人值班（清河县舆情值班群（钉钉））" in both["text"]
    notices = await bot_texts(bot, "ops")
    assert any(t.startswith("【排班缺口】清河县舆情值班群（企业微信）因孙丽请假出现缺口") for t in notices)
    async with bot.runtime.db.read() as session:
        assert len((await session.execute(select(RosterLeave))).scalars().all()) == 2
    assert len(await events(bot, "roster_leave")) == 2
    others = await bot.say("zhao_min", "请假 @孙丽 11-28")
    assert others["text"].startswith("抱歉，只有管理员或协调人员可以为他人登记请假")
    past = await bot.say("zhao_min", "请假 11-20")
    assert past["text"] == "请假的结束时间应晚于开始时间，且不早于现在。"


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
