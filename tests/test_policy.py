"""Pure tests of the rules: deadlines, who is @-mentioned, time texts, permissions, intake guesses.

The org structure is the fictional county in config.example.toml; no database is involved.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.config import PolicySection, load_config
from domain.directory import Directory
from domain.vocab import Grade
from handlers.duty import OnDuty
from handlers.intake import guess_category, guess_source
from handlers.permissions import Action, allowed
from handlers.policy import (
    Deadlines,
    deadlines,
    local_time,
    next_due,
    notice_mentions,
    remaining_text,
    span_text,
    unit_contacts,
)

CONFIG = load_config(Path(__file__).parents[1] / "config.example.toml")
DIRECTORY = Directory(CONFIG)
POLICY = CONFIG.policy
SHANGHAI = ZoneInfo("Asia/Shanghai")

# The example chats' stand-in roster: 赵敏 is the 值班员, 李华 the 带班领导.
ON_DUTY = OnDuty(("zhao_min",), ("li_hua",))
NOBODY = OnDuty((), ())

REPORTED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

# DOMAIN.md: pass on / respond, minutes from the report.
DOMAIN_MINUTES = {
    Grade.MAJOR: (30, 24 * 60),
    Grade.SIGNIFICANT: (2 * 60, 48 * 60),
    Grade.GENERAL: (24 * 60, 48 * 60),
}


# -- deadlines -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grade", "pass_on", "response"),
    [
        (Grade.MAJOR, datetime(2026, 11, 23, 10, 30, tzinfo=UTC), datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
        (Grade.SIGNIFICANT, datetime(2026, 11, 23, 12, 0, tzinfo=UTC), datetime(2026, 11, 25, 10, 0, tzinfo=UTC)),
        (Grade.GENERAL, datetime(2026, 11, 24, 10, 0, tzinfo=UTC), datetime(2026, 11, 25, 10, 0, tzinfo=UTC)),
    ],
)
def test_deadlines_per_grade(grade: Grade, pass_on: datetime, response: datetime) -> None:
    assert deadlines(REPORTED, grade, POLICY) == Deadlines(
        grade_due=datetime(2026, 11, 23, 10, 15, tzinfo=UTC), pass_on_due=pass_on, response_due=response
    )


def test_ungraded_item_has_only_the_grading_clock() -> None:
    assert deadlines(REPORTED, None, POLICY) == Deadlines(REPORTED + timedelta(minutes=15), None, None)


def test_regrading_counts_from_the_report_not_from_the_regrade() -> None:
    first = deadlines(REPORTED, Grade.GENERAL, POLICY)
    upgraded = deadlines(REPORTED, Grade.MAJOR, POLICY)
    assert upgraded.grade_due == first.grade_due
    assert upgraded.pass_on_due == REPORTED + timedelta(minutes=30)
    assert upgraded.response_due == REPORTED + timedelta(hours=24)
    downgraded = deadlines(REPORTED, Grade.GENERAL, POLICY)
    assert downgraded == first


@pytest.mark.parametrize("policy", [POLICY, PolicySection()], ids=["example", "defaults"])
def test_policy_matches_the_domain_rules(policy: PolicySection) -> None:
    assert policy.grade_minutes == 15
    for grade, (pass_on, response) in DOMAIN_MINUTES.items():
        rules = policy.for_grade(grade)
        assert (rules.pass_on_minutes, rules.response_minutes) == (pass_on, response)


@given(
    reported_at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)),
    grade=st.sampled_from(Grade),
)
def test_deadlines_are_exact_offsets_from_the_report(reported_at: datetime, grade: Grade) -> None:
    due = deadlines(reported_at, grade, POLICY)
    pass_on, response = DOMAIN_MINUTES[grade]
    assert due.grade_due - reported_at == timedelta(minutes=15)
    assert due.pass_on_due is not None and due.response_due is not None
    assert due.pass_on_due - reported_at == timedelta(minutes=pass_on)
    assert due.response_due - reported_at == timedelta(minutes=response)
    assert due.response_due >= due.pass_on_due
    assert due.pass_on_due.utcoffset() == timedelta(0)


# -- local time ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (datetime(2026, 11, 23, 11, 0, tzinfo=UTC), "11月23日 19:00"),
        (datetime(2026, 11, 23, 15, 59, tzinfo=UTC), "11月23日 23:59"),
        (datetime(2026, 11, 23, 16, 0, tzinfo=UTC), "11月24日 00:00"),
        (datetime(2026, 12, 31, 16, 30, tzinfo=UTC), "1月1日 00:30"),
        (datetime(2026, 2, 28, 16, 0, tzinfo=UTC), "3月1日 00:00"),
        (datetime(2028, 2, 28, 16, 0, tzinfo=UTC), "2月29日 00:00"),
        (datetime(2026, 7, 1, 0, 5, tzinfo=UTC), "7月1日 08:05"),  # no summer time in China
        (datetime(2026, 11, 23, 19, 0, tzinfo=ZoneInfo("America/New_York")), "11月24日 08:00"),
    ],
)
def test_local_time_in_shanghai(when: datetime, text: str) -> None:
    assert local_time(when, SHANGHAI) == text


def test_local_time_ignores_the_process_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    when = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
    monkeypatch.setenv("TZ", "America/New_York")
    try:
        time.tzset()
        assert local_time(when, SHANGHAI) == "1月1日 00:30"
    finally:
        monkeypatch.undo()
        time.tzset()
    assert os.environ.get("TZ") != "America/New_York"


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)))
def test_local_time_is_utc_plus_eight(when: datetime) -> None:
    beijing = (when + timedelta(hours=8)).replace(tzinfo=None)
    assert local_time(when, SHANGHAI) == f"{beijing.month}月{beijing.day}日 {beijing:%H:%M}"


# -- remaining time and spans ----------------------------------------------------------------

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("due", "text"),
    [
        (NOW + timedelta(hours=1, minutes=20), "剩余1小时20分钟"),
        (NOW + timedelta(minutes=45), "剩余45分钟"),
        (NOW + timedelta(hours=2), "剩余2小时"),
        (NOW + timedelta(days=2, hours=3, minutes=4), "剩余2天3小时4分钟"),
        (NOW, "剩余0分钟"),
        (NOW - timedelta(minutes=15), "已超时15分钟"),
        (NOW - timedelta(hours=3, minutes=1), "已超时3小时1分钟"),
        (NOW - timedelta(days=1, minutes=5), "已超时1天5分钟"),
        # Rounded towards urgency: less time left, more time overdue.
        (NOW + timedelta(hours=1, minutes=20, seconds=59), "剩余1小时20分钟"),
        (NOW - timedelta(minutes=15, seconds=1), "已超时16分钟"),
        (NOW - timedelta(seconds=1), "已超时1分钟"),
    ],
)
def test_remaining_text(due: datetime, text: str) -> None:
    assert remaining_text(due, NOW) == text


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(30, "30分钟"), (120, "2小时"), (90, "1小时30分钟"), (1440, "24小时"), (2880, "48小时"), (15, "15分钟")],
)
def test_span_text(minutes: int, text: str) -> None:
    assert span_text(minutes) == text


# -- the next clock --------------------------------------------------------------------------

GRADE_DUE = NOW + timedelta(minutes=15)
PASS_ON_DUE = NOW + timedelta(minutes=30)
RESPONSE_DUE = NOW + timedelta(hours=24)


def test_next_due_is_the_grading_clock_first() -> None:
    assert next_due(GRADE_DUE, False, PASS_ON_DUE, False, RESPONSE_DUE, False) == ("定级", GRADE_DUE)


def test_next_due_skips_stopped_clocks() -> None:
    assert next_due(GRADE_DUE, True, PASS_ON_DUE, False, RESPONSE_DUE, False) == ("签收", PASS_ON_DUE)
    assert next_due(GRADE_DUE, True, PASS_ON_DUE, True, RESPONSE_DUE, False) == ("回应", RESPONSE_DUE)
    assert next_due(GRADE_DUE, True, PASS_ON_DUE, True, RESPONSE_DUE, True) is None


def test_next_due_of_an_ungraded_item() -> None:
    assert next_due(GRADE_DUE, False, None, False, None, False) == ("定级", GRADE_DUE)
    assert next_due(GRADE_DUE, True, None, False, None, False) is None


def test_next_due_picks_the_earliest_not_the_first() -> None:
    # A late grading (here the grading clock is behind the pass-on clock) must not hide the earlier one.
    late_grade = NOW + timedelta(hours=1)
    assert next_due(late_grade, False, PASS_ON_DUE, False, RESPONSE_DUE, False) == ("签收", PASS_ON_DUE)
    early_response = NOW + timedelta(minutes=5)
    assert next_due(GRADE_DUE, False, PASS_ON_DUE, False, early_response, False) == ("回应", early_response)
    # A stopped clock is ignored even when it is the earliest.
    assert next_due(GRADE_DUE, False, PASS_ON_DUE, False, early_response, True) == ("定级", GRADE_DUE)


# -- who is @-mentioned ----------------------------------------------------------------------


def test_general_notice_mentions_unit_leader_liaison_and_officer() -> None:
    assert notice_mentions(Grade.GENERAL, "chengguan", ON_DUTY, POLICY, DIRECTORY) == [
        "han_mei",
        "yang_fan",
        "zhao_min",
    ]


def test_significant_notice_adds_the_leader_on_duty() -> None:
    assert notice_mentions(Grade.SIGNIFICANT, "chengguan", ON_DUTY, POLICY, DIRECTORY) == [
        "han_mei",
        "yang_fan",
        "zhao_min",
        "li_hua",
    ]


def test_major_notice_adds_the_principal() -> None:
    assert notice_mentions(Grade.MAJOR, "chengguan", ON_DUTY, POLICY, DIRECTORY) == [
        "shen_hao",
        "han_mei",
        "yang_fan",
        "zhao_min",
        "li_hua",
    ]


def test_one_person_in_two_roles_is_mentioned_once() -> None:
    # 施伟 is both 主要负责人 and 分管领导 of the tax bureau.
    assert notice_mentions(Grade.MAJOR, "tax", ON_DUTY, POLICY, DIRECTORY) == [
        "shi_wei",
        "zhang_jing",
        "zhao_min",
        "li_hua",
    ]
    # 李华 and 赵敏 are on duty and also the government office's 分管领导 / 联络员.
    assert notice_mentions(Grade.MAJOR, "gov_office", ON_DUTY, POLICY, DIRECTORY) == [
        "wang_jun",
        "li_hua",
        "zhao_min",
    ]


def test_no_lead_unit_mentions_only_the_people_on_duty() -> None:
    assert notice_mentions(Grade.GENERAL, None, ON_DUTY, POLICY, DIRECTORY) == ["zhao_min"]
    assert notice_mentions(Grade.MAJOR, None, ON_DUTY, POLICY, DIRECTORY) == ["zhao_min", "li_hua"]
    assert notice_mentions(Grade.MAJOR, None, NOBODY, POLICY, DIRECTORY) == []


def test_unit_contacts_are_leaders_and_liaisons_once_each() -> None:
    # 杨帆 is the liaison of both 城关镇 and its 东风社区; 东风社区 has no 分管领导.
    assert unit_contacts(["chengguan", "dongfeng"], DIRECTORY) == ["han_mei", "yang_fan"]
    assert unit_contacts(["health"], DIRECTORY) == ["zheng_qiang", "feng_xue"]
    assert unit_contacts([], DIRECTORY) == []


# -- permissions -----------------------------------------------------------------------------

CHENGGUAN = ["chengguan"]


@pytest.mark.parametrize("action", [Action.GRADE, Action.ASSIGN, Action.CLOSE, Action.NO_RESPONSE, Action.MERGE])
def test_a_plain_monitor_may_not_decide(action: Action) -> None:
    assert not allowed(action, "liu_yang", CHENGGUAN, ON_DUTY, DIRECTORY)


def test_a_plain_monitor_may_record_progress() -> None:
    assert allowed(Action.PROGRESS, "liu_yang", CHENGGUAN, ON_DUTY, DIRECTORY)
    assert not allowed(Action.PROGRESS, "stranger", CHENGGUAN, ON_DUTY, DIRECTORY)


def test_the_officer_on_duty_may_grade() -> None:
    # 赵敏 holds no role in 城关镇: being on duty is what allows it.
    assert allowed(Action.GRADE, "zhao_min", CHENGGUAN, ON_DUTY, DIRECTORY)
    assert not allowed(Action.GRADE, "zhao_min", CHENGGUAN, NOBODY, DIRECTORY)


def test_the_units_liaison_may_acknowledge() -> None:
    assert allowed(Action.ACKNOWLEDGE, "yang_fan", CHENGGUAN, NOBODY, DIRECTORY)
    assert allowed(Action.ACKNOWLEDGE, "yang_fan", ["health", "chengguan"], NOBODY, DIRECTORY)
    # …but not for another unit's item.
    assert not allowed(Action.ACKNOWLEDGE, "feng_xue", CHENGGUAN, NOBODY, DIRECTORY)


def test_no_response_needs_a_leader() -> None:
    assert allowed(Action.NO_RESPONSE, "han_mei", CHENGGUAN, NOBODY, DIRECTORY)  # 分管领导
    assert allowed(Action.NO_RESPONSE, "shen_hao", CHENGGUAN, NOBODY, DIRECTORY)  # 主要负责人
    assert allowed(Action.NO_RESPONSE, "li_hua", CHENGGUAN, ON_DUTY, DIRECTORY)  # 带班领导
    assert allowed(Action.NO_RESPONSE, "wang_jun", CHENGGUAN, NOBODY, DIRECTORY)  # 协调
    assert not allowed(Action.NO_RESPONSE, "yang_fan", CHENGGUAN, NOBODY, DIRECTORY)  # 联络员
    assert not allowed(Action.NO_RESPONSE, "zheng_qiang", CHENGGUAN, NOBODY, DIRECTORY)  # another unit's leader


@pytest.mark.parametrize("person", ["wang_jun", "chen_gang", "xu_ming"])
def test_coordinators_and_admins_may_assign(person: str) -> None:
    assert allowed(Action.ASSIGN, person, CHENGGUAN, NOBODY, DIRECTORY)


# -- intake guesses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "source"),
    [
        ("https://weibo.com/1234567890/AbCdEf", "微博"),
        ("https://m.weibo.cn/detail/4900000000000000", "微博"),
        ("https://t.cn/A6abcd", "微博"),
        ("https://mp.weixin.qq.com/s/AbCdEf", "微信公众号"),
        ("https://www.douyin.com/video/7300000000000000000", "抖音"),
        ("https://v.douyin.com/iABCdef/", "抖音"),
        ("http://12345.qinghe.gov.cn/case/1", "12345平台"),
        ("https://rx12345.example.cn/q?id=1", "12345平台"),
        ("https://www.qinghe.gov.cn/zwgk/1.html", "政府网站"),
        ("https://news.qq.com/a/1", "新闻跟帖"),
        ("https://WWW.WEIBO.COM/x", "微博"),
        # Only whole domain labels count: these are not 微博.
        ("https://www.qinghe.net.cn/news/1", "网络"),
        ("https://weibo.com.example.org/x", "网络"),
        ("https://notweibo.com/x", "网络"),
    ],
)
def test_guess_source_from_the_link(url: str, source: str) -> None:
    assert guess_source(url, "") == source


def test_guess_source_from_the_text() -> None:
    assert guess_source(None, "市长信箱收到来信反映老街积水") == "市长信箱"
    assert guess_source(None, "群众拨打12345热线反映") == "12345平台"
    assert guess_source("https://unknown.example/x", "有网友在微博发帖") == "微博"
    assert guess_source(None, "有人反映老街积水") == "其他"
    assert guess_source("https://unknown.example/x", "有人反映老街积水") == "网络"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("网传城关镇停水三天，系谣言", "谣言"),
        ("老街一仓库发生火灾", "突发事件"),
        ("暴雨导致滨河路积水", "自然灾害"),
        ("网友称工业园拖欠工资", "劳动薪酬"),
        ("有人误读新规，称要收费", "政策误读"),
        ("今天天气不错", "其他"),
        ("", "其他"),
    ],
)
def test_guess_category(text: str, category: str) -> None:
    # The default keyword table (domain/categories.py); every area: tests/test_categories.py.
    assert guess_category(text, POLICY.categories) == category
