"""定期通报 (issue #16 point 4) on SQLite and PostgreSQL.

Every figure of the weekly notices of both weeks and of September's monthly notice is checked
against the shared fixture (tests/records_fixture.py: a dozen items over two weeks, every time, every
deadline and every reminder in its docstring); each expected value is worked out by hand in the
comments from that story, by the rules of handlers/records/period.py:
- 应签收 / 应回应: deadlines in force that fall in the period (a merged or 不予回应 item whose clock
  stopped before its deadline owes nothing); 按时: done by then; per unit by the lead at the end.
- 用时: report → 签收 / first 回应; median (mean of the middle two), 90th percentile by nearest rank.
- 提醒 / 催办: reminders delivered in the period, to the lead unit at the time.
- 零报告缺报: days with neither an item of the unit's own nor its 零报告.
- 排名: combined on-time rate, then total time overdue, 催办, days without 零报告.
The database's sums (the notice's fast path) are held to the full replay of every row; the pure
parts are checked directly. Posting (schedule, chat, CLI): tests/test_records_period_posting.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import pytest

from domain.config import Config
from domain.vocab import Grade
from handlers.deadline_rules import ClockName
from handlers.records.document import Paragraph
from handlers.records.facts import facts_for_window, max_clock, parse_reminder
from handlers.records.period import (
    Period,
    PeriodNotice,
    Span,
    figures,
    last_month,
    last_week,
    median,
    month_of,
    nearest_rank,
    period_notice,
    week_of,
)
from handlers.records.period_doc import duration_text, period_document, rate_text
from handlers.records.period_facts import from_full
from store import records_period
from tests.records_fixture import AUTHORISED_SUMMARY, END, RecordsWorld, local, records_world

CG, HEALTH, EDU, XIAN, TAX = "chengguan", "health", "education", "xian", "tax"
GOV, PROP, DONGFENG = "gov_office", "propaganda", "dongfeng"


@pytest.fixture
async def world(config: Config) -> AsyncIterator[RecordsWorld]:
    async with records_world(config) as built:
        yield built


async def notice_of(world: RecordsWorld, period: Period, now: datetime | None = None) -> PeriodNotice:
    runtime = world.runtime
    async with runtime.db.read() as session:
        return await period_notice(session, runtime.config, runtime.directory, period, now or world.clock.now())


def units(notice: PeriodNotice) -> dict[str | None, tuple[object, ...]]:
    """Per unit: rank, (重大, 较大, 一般, 未定级), 应签收, 按时签收, 应回应, 按时回应, 提醒, 催办, 零报告缺报."""
    return {u.unit: (u.rank, tuple(u.by_grade.get(g, 0) for g in (*Grade, None)),
                     u.pass_on.owed, u.pass_on.on_time, u.response.owed, u.response.on_time, u.reminders, u.urges,
                     u.zero_missed) for u in notice.units}


def times(notice: PeriodNotice) -> dict[str | None, tuple[str, str, str, str]]:
    """Per unit with any: 签收 median, 签收 p90, 回应 median, 回应 p90."""
    return {u.unit: (duration_text(u.pass_on.median), duration_text(u.pass_on.p90), duration_text(u.response.median),
                     duration_text(u.response.p90))
            for u in notice.units if u.pass_on.durations or u.response.durations}


def overdue(notice: PeriodNotice) -> list[tuple[int, str, str, str]]:
    """#, 签收/回应, deadline (local), how late."""
    return [(o.number, o.clock.value, f"{o.due.astimezone(local(9, 1, 0).tzinfo):%m-%d %H:%M}",
             duration_text(o.late_by)) for o in notice.overdue]


def paragraphs(notice: PeriodNotice, world: RecordsWorld) -> list[str]:
    doc = period_document(notice, world.runtime.directory)
    return [b.text for b in doc.blocks if isinstance(b, Paragraph)]


P, R = ClockName.PASS_ON.value, ClockName.RESPONSE.value


async def test_week_one(world: RecordsWorld) -> None:
    notice = await notice_of(world, week_of(date(2026, 9, 21)))
    # Reported Mon 09-21 … Sun 09-27: #1 一般, #2 较大, #3 重大, #4 一般, #5 较大, #6 一般 (merged into #5),
    # #7 较大, #8 一般 → 8: 重大 1, 较大 3, 一般 4; merged 1; ended by 09-28 00:00: 办结 #1 #2 #3 #4 #5 #7 → 6.
    assert (notice.total, notice.merged, notice.closed, notice.no_response) == (8, 1, 6, 0)
    assert notice.reported == {Grade.MAJOR: 1, Grade.SIGNIFICANT: 3, Grade.GENERAL: 4}
    assert notice.cut == local(9, 28, 0) and not notice.partial
    assert units(notice) == {
        # 签收 due this week: #1 09-22 09:00 (09-21 09:30 ✓), #5 09-24 11:00 (transferred from 税务局 at 10:30,
        # 10:50 ✓) → 2/2; 回应: #1 09-23 09:00 (09-21 15:00 ✓), #5 09-26 09:00 (09-25 10:00 ✓) → 2/2.
        # 提醒: #5 10:36 and 09-25 09:00 (城关镇 leading by then) → 2. Grades: #1 一般, #5 较大 (#6 merged: not
        # counted). 零报告: items 21, 23 (#4 reported with it as lead), 24 (#5, #6); 零报告 22, 25 → missed 26, 27: 2.
        CG: (2, (0, 1, 1, 0), 2, 2, 2, 2, 2, 0, 2),
        # #4 transferred to 西岸街道 on 09-23: 签收 09-23 11:00 (due 09-24 09:00 ✓),
        # 回应 09-24 08:00 (due 09-25 09:00 ✓);
        # 零报告 21, 22, 24, 25, 27, item 23 (#4, transferred the day it was reported) → missed 26 only: 1.
        # Ties 城关镇 at 100 % with no time overdue and no 催办: fewer days without 零报告 (1 < 2) → first.
        XIAN: (1, (0, 0, 1, 0), 1, 1, 1, 1, 0, 0, 1),
        # #2: 签收 14:40 (due 16:00 ✓), 回应 09-22 10:00 (due 09-23 14:00 ✓); #7: 签收 09-25 10:30 (due 12:00 ✓),
        # 回应 09-27 11:50 (due 10:00: late 1 h 50 min) → 签收 2/2, 回应 1/2; 3/4 = 75 % → third.
        # 提醒 #7 09-26 10:00, 09-27 00:24; 催办 09-27 10:00. Items on 21, 25 → 5 days missed.
        HEALTH: (3, (0, 2, 0, 0), 2, 2, 2, 1, 2, 1, 5),
        # #3: 签收 10:50 (due 10:30: 20 min late), 回应 09-23 11:20 (due 10:00: 1 h 20 min late) → 0/1, 0/1;
        # 提醒 10:15, 10:24, 22:00, 05:12; 催办 10:30, 09-23 10:00, 10:30. Item on 22 → 6 missed.
        # 0 % like 税务局, but overdue 1 h 40 min in all against 税务局's 8 h → fourth.
        EDU: (4, (1, 0, 0, 0), 1, 0, 1, 0, 4, 3, 6),
        # #8: 签收 due 09-27 16:00, never → 0/1, 8 h late at the week's end; its 回应 is due 09-28 (week two).
        # 提醒: #5 10:00 (税务局 led it then) + #8 09-27 07:30, 11:12, 16:00 (回应 50 %) → 4; 催办 #8 16:00, 20:00 → 2.
        # 零报告 21; items 24 (#5), 26 (#8) → 4 missed.
        TAX: (5, (0, 0, 1, 0), 1, 0, 0, 0, 4, 2, 4),
        GOV: (None, (0, 0, 0, 0), 0, 0, 0, 0, 0, 0, 7),
        PROP: (None, (0, 0, 0, 0), 0, 0, 0, 0, 0, 0, 7),
        DONGFENG: (None, (0, 0, 0, 0), 0, 0, 0, 0, 0, 0, 7),
    }
    assert [u.unit for u in notice.units] == [XIAN, CG, HEALTH, EDU, TAX, GOV, PROP, DONGFENG]
    assert times(notice) == {
        XIAN: ("2小时", "2小时", "23小时", "23小时"),
        CG: ("1小时10分钟", "1小时50分钟", "15小时30分钟", "1天1小时"),  # 30 min and 1 h 50; 6 h and 25 h
        HEALTH: ("35分钟", "40分钟", "1天10小时55分钟", "2天1小时50分钟"),  # 40, 30 min; 20 h and 49 h 50 min
        EDU: ("50分钟", "50分钟", "1天1小时20分钟", "1天1小时20分钟"),
    }
    # All: 签收 30, 30, 40, 50 min, 1 h 50, 2 h → median (40+50)/2 = 45 min, p90 the 6th = 2 h;
    # 回应 6 h, 20 h, 23 h, 25 h, 25 h 20, 49 h 50 → median 24 h, p90 = 49 h 50 min.
    total = notice.totals()
    assert (duration_text(total.pass_on.median), duration_text(total.pass_on.p90)) == ("45分钟", "2小时")
    assert (duration_text(total.response.median), duration_text(total.response.p90)) == ("1天", "2天1小时50分钟")
    assert overdue(notice) == [(3, P, "09-22 10:30", "20分钟"), (3, R, "09-23 10:00", "1小时20分钟"),
                               (7, R, "09-27 10:00", "1小时50分钟"), (8, P, "09-27 16:00", "8小时")]
    assert notice.overdue[2].summary == AUTHORISED_SUMMARY  # 涉密: only the authorised summary
    assert [u.unit for u in notice.below()] == [HEALTH, EDU, TAX]
    texts = paragraphs(notice, world)
    # 应签收 7 (#1 #2 #3 #4 #5 #7 #8; #6 merged before its deadline), 5 on time; 应回应 6, 4 on time;
    # 提醒 2 + 2 + 4 + 4 = 12, 催办 1 + 3 + 2 = 6.
    assert texts[0] == ("本期受理舆情线索8条（重大1条、较大3条、一般4条），其中合并重复线索1条；"
                        "截至期末办结6条、不予回应0条。应签收7条，按时签收5条，按时签收率71.4%；应回应6条，按时回应4条，按时回应率66.7%；"
                        "超时事项4项。向承办单位发送提醒12次、催办6次。")
    assert texts[1].startswith("按综合按时率（按时签收、按时回应合计）排名：1.清河县西岸街道办事处（100.0%）；"
                               "2.清河县城关镇人民政府（100.0%）；3.清河县卫生健康局（75.0%）；4.清河县教育局（0.0%）；")
    assert texts[2] == ("按时签收率或按时回应率低于90.0%的单位：清河县卫生健康局（按时回应率50.0%）、"
                        "清河县教育局（按时签收率0.0%，按时回应率0.0%）、国家税务总局清河县税务局（按时签收率0.0%）。"
                        "请上述单位分管领导督促整改，严格落实签收、回应时限。")


async def test_week_two(world: RecordsWorld) -> None:
    notice = await notice_of(world, week_of(date(2026, 10, 4)))
    # Reported Mon 09-28 … Sun 10-04: #9 重大 (regraded from 一般), #10 一般, #11 重大, #12 较大; ended by 10-05:
    # 办结 #9, #11; 不予回应 #10.
    assert (notice.total, notice.merged, notice.closed, notice.no_response) == (4, 0, 2, 1)
    assert units(notice) == {
        # #10: 签收 09-29 11:00 (due 09-30 10:00 ✓); 不予回应 09-29 15:00 before its 回应 deadline: owes none.
        # 零报告 every day but 29 (#10, its own item) → 0 missed: first of the two at 100 %.
        XIAN: (1, (0, 0, 1, 0), 1, 1, 0, 0, 0, 0, 0),
        # #11: 签收 20:12 (due 20:30 ✓), 回应 10-01 09:00 (due 20:00 ✓); 提醒 10-01 08:00. 零报告 28, item 30
        # → missed 29, 10-01 … 10-04: 5.
        CG: (2, (1, 0, 0, 0), 1, 1, 1, 1, 1, 0, 5),
        # #9: regraded 重大 at 10:00, its 签收 deadline (09:30) already past: in force from 10:00; 签收 10:20 →
        # late 20 min; 回应 09-29 08:00 (due 09:00 ✓) → 1/2 = 50 %, 20 min overdue (ahead of 卫健局's 3 h).
        # 催办 10:00 at the regrade; 提醒 09-28 21:00, 09-29 04:12. Item 28 → 6 missed.
        EDU: (3, (1, 0, 0, 0), 1, 0, 1, 1, 2, 1, 6),
        # #12: 签收 11:30 (due 13:00 ✓), 回应 10-04 14:00 (due 11:00: 3 h late); 提醒 10-03 11:00, 10-04 01:24,
        # 催办 10-04 11:00, 13:00. Item 10-02 → 6 missed.
        HEALTH: (4, (0, 1, 0, 0), 1, 1, 1, 0, 2, 2, 6),
        # #8 (reported 09-26, within the 48 h look-back): 回应 due 09-28 16:00, never → 0/1, late 6 d 8 h at
        # the end; 提醒 09-28 07:30 (回应 80 %); 催办 签收 09-28 07:30 and 08:00, 回应 16:00, 20:00,
        # 09-29 07:30 and 08:00 → 6. Nothing of its own any day → 7 missed.
        TAX: (5, (0, 0, 0, 0), 0, 0, 1, 0, 1, 6, 7),
        GOV: (None, (0, 0, 0, 0), 0, 0, 0, 0, 0, 0, 7),
        PROP: (None, (0, 0, 0, 0), 0, 0, 0, 0, 0, 0, 7),
        DONGFENG: (None, (0, 0, 0, 0), 0, 0, 0, 0, 0, 0, 7),
    }
    assert times(notice) == {
        XIAN: ("1小时", "1小时", "—", "—"),
        CG: ("12分钟", "12分钟", "13小时", "13小时"),
        EDU: ("1小时20分钟", "1小时20分钟", "23小时", "23小时"),
        HEALTH: ("30分钟", "30分钟", "2天3小时", "2天3小时"),  # #12: 10-02 11:00 → 10-04 14:00 = 51 h
    }
    assert overdue(notice) == [(9, P, "09-28 10:00", "20分钟"), (8, R, "09-28 16:00", "6天8小时"),
                               (12, R, "10-04 11:00", "3小时")]
    assert [u.unit for u in notice.below()] == [EDU, HEALTH, TAX]


async def test_september(world: RecordsWorld) -> None:
    notice = await notice_of(world, month_of(date(2026, 9, 1)))
    # #1 … #11 reported in September: 重大 #3 #9 #11, 较大 #2 #5 #7, 一般 #1 #4 #6 #8 #10 → 11; merged 1;
    # by 10-01 00:00: 办结 #1 #2 #3 #4 #5 #7 #9 → 7 (#11 closes 10-02), 不予回应 #10.
    assert (notice.total, notice.merged, notice.closed, notice.no_response) == (11, 1, 7, 1)
    assert notice.reported == {Grade.MAJOR: 3, Grade.SIGNIFICANT: 3, Grade.GENERAL: 5}
    assert units(notice) == {
        # 签收 #4 (2 h ✓), #10 (1 h ✓); 回应 #4 ✓ (#10's would be 10-01, and was 不予回应 anyway).
        # Days 09-01 … 09-30: 30, less 21 22 23 24 25 27 28 29 30 → 21 missed.
        XIAN: (1, (0, 0, 2, 0), 2, 2, 1, 1, 0, 0, 21),
        # 签收 #1, #5, #11 (09-30 20:12, due 20:30) ✓ → 3/3; 回应 #1, #5 ✓ (#11's is due 10-01: October's).
        # Covered 21 22 23 24 25 28 30 → 23 missed.
        CG: (2, (1, 1, 1, 0), 3, 3, 2, 2, 2, 0, 23),
        HEALTH: (3, (0, 2, 0, 0), 2, 2, 2, 1, 2, 1, 28),
        # #3 and #9 both late to 签收 → 0/2; 回应 #3 late, #9 on time → 1/2: 1/4 = 25 %.
        # 提醒 4 (#3) + 2 (#9); 催办 3 (#3) + 1 (#9). Covered 22, 28 → 28 missed.
        EDU: (4, (2, 0, 0, 0), 2, 0, 2, 1, 6, 4, 28),
        # #8: 签收 due 09-27 16:00 and 回应 due 09-28 16:00, neither ever → 0/1, 0/1; every reminder of #8 (09-27 …
        # 09-29) and #5's first: 提醒 1 + 3 + 1 = 5, 催办 2 + 6 = 8. Covered 21, 24, 26 → 27 missed.
        TAX: (5, (0, 0, 1, 0), 1, 0, 1, 0, 5, 8, 27),
        GOV: (None, (0, 0, 0, 0), 0, 0, 0, 0, 0, 0, 30),
        PROP: (None, (0, 0, 0, 0), 0, 0, 0, 0, 0, 0, 30),
        DONGFENG: (None, (0, 0, 0, 0), 0, 0, 0, 0, 0, 0, 30),
    }
    assert times(notice)[CG] == ("30分钟", "1小时50分钟", "15小时30分钟", "1天1小时")  # 12, 30 min, 1 h 50
    # 教育局: 签收 50 min and 1 h 20 min; 回应 23 h and 25 h 20 min.
    assert times(notice)[EDU] == ("1小时5分钟", "1小时20分钟", "1天10分钟", "1天1小时20分钟")
    # #8 late to the month's end: 签收 10-01 00:00 − 09-27 16:00 = 3 d 8 h; 回应 − 09-28 16:00 = 2 d 8 h.
    assert overdue(notice) == [(3, P, "09-22 10:30", "20分钟"), (3, R, "09-23 10:00", "1小时20分钟"),
                               (7, R, "09-27 10:00", "1小时50分钟"), (8, P, "09-27 16:00", "3天8小时"),
                               (9, P, "09-28 10:00", "20分钟"), (8, R, "09-28 16:00", "2天8小时")]
    # 应签收 10, 按时 7 → 70.0 %; 应回应 8, 按时 5 → 62.5 %; 提醒 2 + 2 + 6 + 5 = 15, 催办 1 + 4 + 8 = 13.
    assert paragraphs(notice, world)[0].startswith(
        "本期受理舆情线索11条（重大3条、较大3条、一般5条），其中合并重复线索1条；截至期末办结7条、不予回应1条。"
        "应签收10条，按时签收7条，按时签收率70.0%；应回应8条，按时回应5条，按时回应率62.5%；超时事项6项。"
        "向承办单位发送提醒15次、催办13次。")


async def test_the_database_sums_say_what_the_full_replay_says(world: RecordsWorld) -> None:
    """The notice is made from the database's sums (period_facts.py, for speed); facts.py replays
    every row. On both weeks, September and a week still running, the two give the same figures."""
    runtime = world.runtime
    config, directory = runtime.config, runtime.directory
    for period, now in ((week_of(date(2026, 9, 21)), END), (week_of(date(2026, 9, 28)), END),
                        (month_of(date(2026, 9, 1)), END), (week_of(date(2026, 9, 21)), local(9, 24, 12))):
        start, end = period.bounds(config.tz)
        cut = min(end, now)
        async with runtime.db.read() as session:
            fast = await notice_of(world, period, now)
            full = await facts_for_window(session, start, end, cut=cut, lookback=max_clock(config.policy))
            zero = await records_period.rows_between(session, start, cut, ("zero_report",))
        replayed = figures(from_full(full.values(), zero, start, cut), period, config, directory, cut)
        assert units(fast) == units(replayed) and times(fast) == times(replayed)
        assert [(o.number, o.clock, o.due, o.done, o.late_by, o.summary) for o in fast.overdue] == [
            (o.number, o.clock, o.due, o.done, o.late_by, o.summary) for o in replayed.overdue]
        assert (fast.reported, fast.merged, fast.closed, fast.no_response) == (
            replayed.reported, replayed.merged, replayed.closed, replayed.no_response)


async def test_a_period_still_running_counts_up_to_now(world: RecordsWorld) -> None:
    """Week one asked on Thu 09-24 12:00: only what the trail had by then."""
    notice = await notice_of(world, week_of(date(2026, 9, 21)), now=local(9, 24, 12))
    assert notice.partial and notice.total == 5  # #1 … #5
    total = notice.totals()
    # 签收 due by then: #1, #2, #3 (late), #4 (09-24 09:00), #5 (11:00) → 4 of 5; 回应: #1, #2, #3 (late) → 2 of 3.
    assert (total.pass_on.owed, total.pass_on.on_time, total.response.owed, total.response.on_time) == (5, 4, 3, 2)
    # Whole days before noon on Thursday: 21, 22, 23. 西岸街道: 零报告 21, 22, item 23 → none missed.
    assert {u.unit: u.zero_missed for u in notice.units}[XIAN] == 0
    doc = period_document(notice, world.runtime.directory)
    assert doc.subtitle == "统计时段：2026年9月21日至9月27日（截至9月24日 12:00）"



# -- the pure parts ----------------------------------------------------------------------------------------


def test_words_for_figures() -> None:
    assert [duration_text(timedelta(minutes=m)) for m in (0, 35, 70, 24 * 60, 2095, 9120)] == [
        "0分钟", "35分钟", "1小时10分钟", "1天", "1天10小时55分钟", "6天8小时"]
    assert duration_text(timedelta(seconds=89)) == "1分钟" and duration_text(None) == "—"
    assert (rate_text(5 / 7), rate_text(1.0), rate_text(None)) == ("71.4%", "100.0%", "—")


def test_median_and_nearest_rank() -> None:
    minutes = [timedelta(minutes=m) for m in (50, 30, 40, 110, 120, 30)]
    assert median(minutes) == timedelta(minutes=45) and nearest_rank(minutes, 0.9) == timedelta(minutes=120)
    assert nearest_rank(minutes[:1], 0.9) == timedelta(minutes=50) and median([]) is None


def test_periods() -> None:
    assert week_of(date(2026, 10, 4)) == Period(date(2026, 9, 28), date(2026, 10, 4), Span.WEEK)
    assert month_of(date(2026, 2, 10)) == Period(date(2026, 2, 1), date(2026, 2, 28), Span.MONTH)
    assert last_week(date(2026, 10, 5)).first == date(2026, 9, 28)
    assert last_month(date(2026, 1, 1)) == Period(date(2025, 12, 1), date(2025, 12, 31), Span.MONTH)


def test_parse_reminder_keys() -> None:
    at = local(9, 22, 10, 30)
    urge = parse_reminder("remind:item3:pass_on:overdue:0:20260922T023000Z", at)
    assert urge is not None and urge.overdue and urge.clock is ClockName.PASS_ON
    assert parse_reminder("remind:item3:pass_on:overdue:3:20260922T023000Z:coordinators", at) is None  # a copy
    assert parse_reminder("assign:item3:wecom_duty", at) is None

