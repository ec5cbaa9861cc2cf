"""Regulation fidelity, each test named after the clause it serves, on SQLite and PostgreSQL.

004 第六条 (who grades, downgrades), 001 第九条 (不漏报、不迟报: the chase), 000 §三 (the lead
unit under control), 004 第八条/第十条 (归口报送 copies), AB角 stand-ins. 涉密 (001 第十七条):
tests/test_classified.py.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from sqlalchemy import select

from store.models import Item, ItemEvent, PendingQuestion, RosterLeave
from tests.conftest import SHANGHAI, Bot
from tests.test_deadlines import bot_posts, last_seq, tick

TOWN_REPORT = "上报 城关镇老街商户反映占道经营整治"
REFUSED = "抱歉，您无权对 #1 执行“定级”"


async def stored(bot: Bot, number: int = 1) -> Item:
    async with bot.runtime.db.read() as session:
        return (await session.execute(select(Item).where(Item.number == number))).scalar_one()


async def audit_rows(bot: Bot, action: str) -> list[ItemEvent]:
    async with bot.runtime.db.read() as session:
        result = await session.execute(select(ItemEvent).where(ItemEvent.action == action).order_by(ItemEvent.id))
        return list(result.scalars())


async def coordinator_posts(bot: Bot) -> list[str]:
    return [m["text"] for m in await bot_posts(bot, "coordinators")]


# -- 004 第六条: one rule for who may grade ------------------------------------------------------


async def test_grade_refused_by_every_path_and_chase_goes_on_004_art6(bot: Bot) -> None:
    await bot.say("liu_yang", TOWN_REPORT)
    for attempt in ("定级 #1 重大", "#1 重大", "1号 较大", "1", "重大"):
        reply = await bot.say("liu_yang", attempt)
        assert reply["text"].startswith(REFUSED), (attempt, reply)
    item = await stored(bot)
    assert item.grade is None and item.next_reminder_at is not None  # ungraded, still chased
    assert len(await audit_rows(bot, "refused")) == 5
    assert (await bot.say("zhao_min", "2"))["text"].startswith("【舆情通报】#1 较大舆情")


async def test_grade_question_goes_only_to_people_who_may_grade_004_art6(bot: Bot) -> None:
    reply = await bot.say("liu_yang", TOWN_REPORT)
    assert reply["mentions"] == ["zhao_min"]
    async with bot.runtime.db.read() as session:
        asked = set((await session.execute(select(PendingQuestion.user_id))).scalars())
    # The officer and leader on duty and the town's leaders; not the reporter, a plain monitor.
    assert asked == {"zhao_min", "li_hua", "shen_hao", "han_mei"}


async def test_downgrade_needs_the_policy_role_and_a_reason_004_art6(bot: Bot) -> None:
    await bot.say("liu_yang", TOWN_REPORT)
    await bot.say("zhao_min", "1")
    bot.clock.advance(timedelta(minutes=10))
    refused = await bot.say("zhao_min", "定级 #1 一般 理由：影响有限")  # the officer on duty may grade, not lower
    assert refused["text"].startswith("抱歉，#1 由重大下调为一般须由协调人员、管理员或牵头单位主要负责人、分管领导决定")
    asked = await bot.say("wang_jun", "定级 #1 一般")
    assert asked["text"].startswith("下调等级须说明理由")
    assert (await stored(bot)).grade == "重大"

    notice = await bot.say("han_mei", "定级 #1 一般 理由：经核实为个别商户诉求")  # the lead unit's 分管领导
    lines = notice["text"].splitlines()
    assert lines[0] == "【舆情通报】#1 等级调整（下调）：重大 → 一般"
    assert "原定级：赵敏 11月23日 10:00（重大）" in lines
    assert "调整理由：经核实为个别商户诉求" in lines
    assert "zhao_min" in notice["mentions"]  # the original grader is told
    [event] = await audit_rows(bot, "regraded")
    assert event.actor == "han_mei" and event.after["reason"] == "经核实为个别商户诉求"
    copies = [t for t in await coordinator_posts(bot) if "下调" in t]
    assert len(copies) == 1 and "调整理由：经核实为个别商户诉求" in copies[0]


async def test_raising_a_grade_needs_no_reason_004_art6(bot: Bot) -> None:
    await bot.say("liu_yang", TOWN_REPORT)
    await bot.say("zhao_min", "3")
    raised = await bot.say("li_hua", "#1 较大")
    assert raised["text"].startswith("【舆情通报】#1 等级调整：一般 → 较大")


async def test_emergency_graded_general_asks_for_a_second_look_004_art6(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 城关镇人民路一工地围墙坍塌")
    notice = await bot.say("zhao_min", "3")
    assert "\n提示：该线索类别为“突发事件”，定为一般请再次研判确认。\n" in notice["text"]
    other = await bot.say("liu_yang", "上报 西岸滨河路路灯不亮")
    assert "再次研判" not in (await bot.say("zhao_min", "定级 #2 一般"))["text"] and other


# -- 001 第九条: a regrade into the past, and no silent end --------------------------------------------


async def test_regrade_into_the_past_says_overdue_and_chases_at_once_001_art9(bot: Bot) -> None:
    await bot.say("liu_yang", TOWN_REPORT)  # 10:00
    await bot.say("zhao_min", "3")
    bot.clock.advance(timedelta(hours=2))  # 12:00: 重大's pass-on deadline (10:30) is long past
    notice = await bot.say("li_hua", "定级 #1 重大")
    assert "签收时限：11月23日 10:30（上报后30分钟内，已超时1小时30分钟）" in notice["text"]
    seq = await last_seq(bot)
    await tick(bot)  # the overdue chain starts at the regrade, at once
    [overdue] = await bot_posts(bot, after=seq)
    assert overdue["text"].startswith("【超时催办】第1次 #1 重大｜签收已超时1小时30分钟（时限 11月23日 10:30）")
    seq = await last_seq(bot)
    bot.clock.advance(timedelta(minutes=29))
    await tick(bot)
    assert await bot_posts(bot, after=seq) == []  # not at 12:00 + the old schedule's steps
    bot.clock.advance(timedelta(minutes=1))  # 12:30: the first repeat, 30 minutes after the regrade
    await tick(bot)
    [repeat] = await bot_posts(bot, after=seq)
    assert repeat["text"].startswith("【超时催办】第2次 #1 重大｜签收已超时2小时")


async def test_major_item_is_chased_until_handled_with_the_leader_on_duty_001_art9(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 城关镇人民路发生火灾，网传多人受伤")
    await bot.say("zhao_min", "1")
    times = []
    for _ in range(24 * 4):  # two days in half-hour steps: the pass-on clock is never acknowledged
        bot.clock.advance(timedelta(minutes=30))
        seq = await last_seq(bot)
        await tick(bot)
        for post in await bot_posts(bot, after=seq):
            if post["text"].startswith("【超时") and "｜签收" in post["text"]:
                times.append(bot.clock.now())
                assert "li_hua" in post["mentions"]  # the 带班领导 on duty is in the chase
    assert len(times) > 8 + 1  # more than max_repeats: 重大 has no end
    gaps = [(b - a) / timedelta(minutes=1) for a, b in itertools.pairwise(times)]
    assert gaps[:3] == [30, 60, 120] and max(gaps) == 120  # grows to the cap, never beyond


async def test_significant_chase_ends_as_overdue_and_is_listed_001_art9(bot: Bot) -> None:
    await bot.say("liu_yang", TOWN_REPORT)
    await bot.say("zhao_min", "2")  # pass-on due 12:00, 6 repeats every 2 hours: the last at 00:00
    for _ in range(8):
        bot.clock.advance(timedelta(hours=2))
        await tick(bot)
    posts = [p["text"] for p in await bot_posts(bot) if "｜签收" in p["text"] and p["text"].startswith("【超时")]
    assert len(posts) == 7 and "催办已达7次上限，本事项列为超时未办" in posts[-1]
    assert any("列为超时未办" in t for t in await coordinator_posts(bot))
    todo = await bot.say("zhao_min", "待办")
    assert "#1【较大】已定级｜签收已超时" in todo["text"] and "超时未办" in todo["text"]


async def test_quiet_hours_fold_held_repeats_into_one_message_001_art9(bot: Bot) -> None:
    bot.clock.set(datetime(2026, 11, 23, 20, 0, tzinfo=SHANGHAI))
    await bot.say("liu_yang", "上报 西岸滨河路路灯不亮")
    await bot.say("zhao_min", "3")  # 一般 is quiet; pass-on due 11-24 20:00, repeats every 4 hours
    bot.clock.set(datetime(2026, 11, 24, 21, 0, tzinfo=SHANGHAI))
    await tick(bot)
    seq = await last_seq(bot)
    bot.clock.set(datetime(2026, 11, 25, 7, 31, tzinfo=SHANGHAI))  # 00:00 and 04:00 held until 07:30
    await tick(bot)
    posts = [p["text"] for p in await bot_posts(bot, after=seq) if "｜签收" in p["text"]]
    assert len(posts) == 1 and "（静默时段内暂缓2次提醒，现合并发送）" in posts[0]


# -- 000 §三: the lead unit under control ---------------------------------------------------------------


async def test_lead_changes_after_ack_only_by_policy_roles_with_a_reason_000_s3(bot: Bot) -> None:
    await bot.say("liu_yang", TOWN_REPORT)
    await bot.say("zhao_min", "2")
    await bot.say("yang_fan", "签收 #1")  # the town's liaison: the lead unit
    refused = await bot.say("zhao_min", "转办 #1 西岸街道 理由：属西岸")  # a liaison of another unit
    assert refused["text"].startswith("抱歉，#1 已由牵头单位签收，变更牵头单位须由协调人员、管理员或牵头单位主要负责人")
    needs = await bot.say("wang_jun", "转办 #1 西岸街道")
    assert needs["text"].startswith("#1 已由牵头单位签收，变更牵头单位须说明理由")
    assert (await stored(bot)).lead_unit_id == "chengguan"
    moved = await bot.say("han_mei", "转办 #1 西岸街道 理由：经核实属西岸街道辖区")
    assert moved["text"].startswith("【转办】#1 已转 清河县西岸街道办事处。")
    assert "变更理由：经核实属西岸街道辖区" in moved["text"]
    item = await stored(bot)
    assert item.lead_unit_id == "xian" and item.acknowledged_at is None
    [copy] = [t for t in await coordinator_posts(bot) if t.startswith("【牵头单位变更】")]
    assert "清河县城关镇人民政府 → 清河县西岸街道办事处" in copy and "经核实属西岸街道辖区" in copy


async def test_only_the_lead_units_ack_stops_the_pass_on_clock_000_s3(bot: Bot) -> None:
    await bot.say("liu_yang", TOWN_REPORT)
    await bot.say("zhao_min", "1")
    await bot.say("zhao_min", "转办 #1 城关镇、县卫健局")
    co = await bot.say("feng_xue", "签收 #1")  # the health bureau's liaison: a co-unit
    assert co["text"].startswith("#1 已记录清河县卫生健康局（配合单位）签收。签收计时以牵头单位签收为准")
    assert (await stored(bot)).acknowledged_at is None
    outsider = await bot.say("zhao_min", "签收 #1")  # on duty, but of neither unit
    assert outsider["text"].startswith("抱歉，#1 的签收须由承办单位")
    lead = await bot.say("yang_fan", "签收 #1")
    assert lead["text"].startswith("#1 已签收（杨帆") and (await stored(bot)).acknowledged_at is not None
    assert [e.detail for e in await audit_rows(bot, "co_acknowledged")] == ["清河县卫生健康局"]


async def test_return_goes_to_the_coordinators_not_another_unit_000_s3(bot: Bot) -> None:
    await bot.say("liu_yang", TOWN_REPORT)
    await bot.say("zhao_min", "2")
    usage = await bot.say("yang_fan", "退回 #1")
    assert usage["text"].startswith("用法：退回 #编号 理由")
    refused = await bot.say("you_jia", "退回 #1 不是我们的")  # 西岸's liaison: not a unit of #1
    assert refused["text"].startswith("抱歉，只有 #1 的承办单位")
    back = await bot.say("yang_fan", "退回 #1 该路段属县住建局管理")
    assert back["text"].startswith("#1 已退回，由协调人员重新确定牵头单位")
    assert set(back["mentions"]) == {"wang_jun", "chen_gang"}
    item = await stored(bot)
    assert item.lead_unit_id is None and item.next_reminder_at is not None  # clocks run on
    [copy] = [t for t in await coordinator_posts(bot) if t.startswith("【退回】")]
    assert "该路段属县住建局管理" in copy and "转办 #1 单位" in copy
    [event] = await audit_rows(bot, "returned")
    assert event.after["unit"] == "chengguan" and event.actor == "yang_fan"
    assert (await bot.say("zhao_min", "签收 #1"))["text"].startswith("#1 尚未确定牵头单位")


# -- AB角 ------------------------------------------------------------------------------------------------


async def test_stand_in_is_mentioned_for_a_leader_on_leave_issue12_p10(bot: Bot) -> None:
    now = bot.clock.now()
    async with bot.runtime.db.transaction() as session:
        session.add(RosterLeave(person_id="han_mei", start_at=now - timedelta(hours=1), end_at=now + timedelta(days=1),
                                reason="年休假", created_at=now, created_by="xu_ming"))
    await bot.say("liu_yang", TOWN_REPORT)
    notice = await bot.say("zhao_min", "2")
    assert "han_mei" not in notice["mentions"] and "shen_hao" in notice["mentions"]
    assert "（韩梅请假，由沈浩代为接收）" in notice["text"]
