"""Pure tests of handlers.parsing: what phone users type must fold to one form before matching."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.vocab import Grade
from handlers.parsing import find_urls, normalize, parse_grade, split_list, split_verb, take_item_ref

FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")
# Whitespace a Chinese input method produces: ASCII space, tab, ideographic space (U+3000), NBSP.
SPACE = st.sampled_from([" ", "\t", "\u3000", "\u00a0"])
SPACES = st.lists(SPACE, max_size=3).map("".join)
SOME_SPACES = st.lists(SPACE, min_size=1, max_size=3).map("".join)


# -- item numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("#12", (12, "")),
        ("＃12", (12, "")),
        ("12号", (12, "")),
        ("第12号", (12, "")),
        ("12", (12, "")),
        ("＃１２", (12, "")),
        ("１２号", (12, "")),
        ("第１２号", (12, "")),
        ("# 12", (12, "")),
        ("12 号", (12, "")),
        ("　＃１２　", (12, "")),
        ("#12 重大", (12, "重大")),
        ("＃１２　重大", (12, "重大")),
        ("12号 较大 已核实", (12, "较大 已核实")),
        ("#12，重大", (12, "重大")),
        ("#12：城关镇、卫健局", (12, "城关镇、卫健局")),
        ("#7\n说明", (7, "说明")),
        ("#999999999", (999_999_999, "")),
    ],
)
def test_item_ref_forms(typed: str, expected: tuple[int, str]) -> None:
    assert take_item_ref(normalize(typed)) == expected


@pytest.mark.parametrize("typed", ["abc", "", "#", "号", "第号", "＃", "#abc", "重大 #12", "#1234567890", "#12abc"])
def test_not_an_item_ref(typed: str) -> None:
    assert take_item_ref(normalize(typed)) is None


def _item_ref_form(n: int, form: str, inner: str, full_width: bool) -> str:
    digits = str(n).translate(FULL_WIDTH_DIGITS) if full_width else str(n)
    return {
        "#": f"#{inner}{digits}",
        "＃": f"＃{inner}{digits}",
        "号": f"{digits}{inner}号",
        "第号": f"第{digits}{inner}号",
        "bare": digits,
    }[form]


REST_WORDS = st.lists(st.text(alphabet="重大较一般理由情况已核实城关镇abcXYZ", min_size=1, max_size=6), max_size=3)


@given(
    n=st.integers(min_value=1, max_value=10**9 - 1),
    form=st.sampled_from(["#", "＃", "号", "第号", "bare"]),
    inner=SPACES,
    full_width=st.booleans(),
    before=SPACES,
    between=SOME_SPACES,
    after=SPACES,
    words=REST_WORDS,
)
def test_item_ref_any_number_any_form(
    n: int, form: str, inner: str, full_width: bool, before: str, between: str, after: str, words: list[str]
) -> None:
    ref = _item_ref_form(n, form, inner, full_width)
    rest = " ".join(words)
    text = before + ref + (between + between.join(words) if words else "") + after
    assert take_item_ref(normalize(text)) == (n, rest)


# -- grades ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "grade"),
    [
        ("重大", Grade.MAJOR),
        ("较大", Grade.SIGNIFICANT),
        ("一般", Grade.GENERAL),
        ("1", Grade.MAJOR),
        ("2", Grade.SIGNIFICANT),
        ("3", Grade.GENERAL),
        ("一", Grade.MAJOR),
        ("三", Grade.GENERAL),
        ("重大级", Grade.MAJOR),
        ("较大舆情", Grade.SIGNIFICANT),
        ("一般级舆情", Grade.GENERAL),
        (" 重大 ", Grade.MAJOR),
        ("II", Grade.SIGNIFICANT),
    ],
)
def test_parse_grade(word: str, grade: Grade) -> None:
    assert parse_grade(word) is grade


@pytest.mark.parametrize(("typed", "grade"), [("１", Grade.MAJOR), ("２", Grade.SIGNIFICANT), ("３级", Grade.GENERAL)])
def test_parse_grade_full_width_after_normalize(typed: str, grade: Grade) -> None:
    # Callers always pass normalized text (the dispatcher normalizes every message).
    assert parse_grade(normalize(typed)) is grade


@pytest.mark.parametrize(
    "word", ["", "级", "舆情", "重", "严重", "特别重大", "0", "4", "12", "一般般", "重大 #3", "abc"]
)
def test_not_a_grade(word: str) -> None:
    assert parse_grade(word) is None


@given(st.text())
def test_parse_grade_never_raises(text: str) -> None:
    assert parse_grade(text) in (None, *Grade)
    assert parse_grade(normalize(text)) in (None, *Grade)


# -- normalize -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("＃１２　重大", "#12 重大"),
        ("ＡＢＣ１２３", "ABC123"),
        ("定级   #3 \t 重大", "定级 #3 重大"),
        ("  前后空格  ", "前后空格"),
        ("第一行\n\n　\n  第二行  \r\n第三行", "第一行\n第二行\n第三行"),
        ("#1\u200b2\ufeff", "#12"),
        ("", ""),
        ("　\n \t", ""),
    ],
)
def test_normalize_folds_and_trims(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_keeps_chinese_punctuation() -> None:
    # Summaries and verdicts keep the punctuation people typed; only ＃, digits, letters and spaces fold.
    text = "上报：城关镇老街（人民路）发生火灾，请核实！是否属实？见《通报》、“附件”。"
    assert normalize(text) == text


@given(st.text())
@example("e\u200b\u0301")  # a zero-width space between a letter and a combining accent
@example("\u1100\ufeff\u1161")  # a BOM between two Hangul jamo
@example("a\u3000\u3000b\n\n\u2028c")
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@given(st.text())
def test_normalize_has_no_blank_lines_or_double_spaces(text: str) -> None:
    result = normalize(text)
    assert "  " not in result
    for line in result.split("\n") if result else []:
        assert line
        assert line == line.strip()


# -- verbs -----------------------------------------------------------------------------------

VERBS = ["上报", "定级", "转办", "签收", "回应", "不予回应", "办结", "查询"]


def test_longest_verb_wins() -> None:
    assert split_verb("不予回应 #3 理由", ["回应", "不予回应"]) == ("不予回应", "#3 理由")
    assert split_verb("不予回应 #3 理由", ["不予回应", "回应"]) == ("不予回应", "#3 理由")
    assert split_verb("回应 #3 网上发布", ["回应", "不予回应"]) == ("回应", "#3 网上发布")


@pytest.mark.parametrize(
    "typed", ["上报：内容", "上报:内容", "上报 ：内容", "上报，内容", "上报　内容", "上报内容", "上报 内容"]
)
def test_verb_separators_are_stripped(typed: str) -> None:
    assert split_verb(normalize(typed), VERBS) == ("上报", "内容")


def test_verb_alone_has_empty_rest() -> None:
    assert split_verb("待办", ["待办"]) == ("待办", "")


@pytest.mark.parametrize("typed", ["", "你好", "请上报", "下报 内容", "#3 定级"])
def test_no_verb(typed: str) -> None:
    assert split_verb(typed, VERBS) is None


@given(verb=st.sampled_from(VERBS), rest=st.text())
def test_split_verb_finds_the_verb_whatever_follows(verb: str, rest: str) -> None:
    matched = split_verb(verb + " " + rest, VERBS)
    assert matched is not None
    assert matched[0] == verb


# -- lists and links -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("城关镇、卫健局,教育局 应急局", ["城关镇", "卫健局", "教育局", "应急局"]),
        ("城关镇，卫健局；教育局;税务局", ["城关镇", "卫健局", "教育局", "税务局"]),
        ("城关镇 、 卫健局,,  教育局", ["城关镇", "卫健局", "教育局"]),
        ("城关镇/西岸街道", ["城关镇", "西岸街道"]),
        ("  城关镇  ", ["城关镇"]),
        ("", []),
        ("、，; ", []),
    ],
)
def test_split_list(text: str, names: list[str]) -> None:
    assert split_list(text) == names


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("见https://weibo.com/1/abc，请核实", ["https://weibo.com/1/abc"]),
        ("链接：https://m.weibo.cn/detail/123；另有跟帖", ["https://m.weibo.cn/detail/123"]),
        ("https://v.douyin.com/iABC/！快看", ["https://v.douyin.com/iABC/"]),
        ("真的吗https://weibo.com/2/x？", ["https://weibo.com/2/x"]),
        ("（原帖https://tieba.baidu.com/p/1）", ["https://tieba.baidu.com/p/1"]),
        ("原文：https://mp.weixin.qq.com/s/AbC_d-e：已删除", ["https://mp.weixin.qq.com/s/AbC_d-e"]),
        ("见《https://www.qinghe.gov.cn/a.html》", ["https://www.qinghe.gov.cn/a.html"]),
        ("见“https://www.qinghe.gov.cn/b”", ["https://www.qinghe.gov.cn/b"]),
        ("链接 https://weibo.com/3/y。", ["https://weibo.com/3/y"]),
        ("see https://example.com/path.", ["https://example.com/path"]),
        ("(https://example.com/p)", ["https://example.com/p"]),
        ("https://s.weibo.com/weibo?q=abc&page=2 热搜", ["https://s.weibo.com/weibo?q=abc&page=2"]),
        ("http://12345.qinghe.gov.cn:8080/case?id=7", ["http://12345.qinghe.gov.cn:8080/case?id=7"]),
        ("两条：https://a.example/1、https://b.example/2", ["https://a.example/1", "https://b.example/2"]),
        ("HTTPS://WEIBO.COM/4/z", ["HTTPS://WEIBO.COM/4/z"]),
        ("没有链接，只有文字", []),
        ("ftp://example.com/x", []),
    ],
)
def test_find_urls_stops_at_chinese_punctuation(text: str, urls: list[str]) -> None:
    # The bot only ever sees normalized text; the raw text must give the same answer.
    assert find_urls(normalize(text)) == urls
    assert find_urls(text) == urls


@pytest.mark.parametrize(("typed", "expected"), [("#12重大", (12, "重大")), ("12号较大", (12, "较大")), ("#0", None)])
def test_item_ref_glued_to_chinese(typed: str, expected: tuple[int, str] | None) -> None:
    assert take_item_ref(normalize(typed)) == expected
