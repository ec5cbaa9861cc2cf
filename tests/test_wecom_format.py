"""The WeCom channel's pure parts: message text, mentions, splitting by bytes, webhook bodies, answers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.wecom import (
    MARKDOWN_LIMIT,
    TEXT_LIMIT,
    Mentions,
    classify,
    message_text,
    resolve_mentions,
    split_utf8,
    split_with_tail,
    strip_leading_mention,
    utf8_size,
    webhook_payloads,
)
from domain.config import load_config
from domain.directory import Directory
from tests.conftest import EXAMPLE_CONFIG

# -- inbound text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("@舆情值班助手 上报 人民路火灾", "上报 人民路火灾"),
        ("@RobotA hello robot", "hello robot"),  # the AI bot's own name, not config.bot.name
        ("  @Bot\u3000值班", "值班"),  # full-width space after the name
        ("@Bot", ""),
        ("上报 @张三 说的情况", "上报 @张三 说的情况"),  # only a leading mention
        ("1", "1"),
    ],
)
def test_the_leading_mention_is_stripped(content: str, expected: str) -> None:
    assert strip_leading_mention(content) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"msgtype": "text", "text": {"content": "@Bot 2"}}, "2"),
        ({"msgtype": "mixed", "mixed": {"msg_item": [{"msgtype": "text", "text": {"content": "@Bot 上报 a"}},
                                                     {"msgtype": "image", "image": {"url": "u"}}]}}, "上报 a"),
        ({"msgtype": "mixed", "mixed": {"msg_item": [{"msgtype": "image", "image": {"url": "u"}}]}}, None),
        ({"msgtype": "voice", "voice": {"content": "值班"}}, "值班"),
        ({"msgtype": "image", "image": {"url": "u"}}, None),
        ({"msgtype": "file", "file": {"url": "u"}}, None),
        ({"msgtype": "text", "text": {"content": 5}}, None),
        ({"msgtype": "text", "text": "flat"}, None),
        ({"msgtype": "mixed", "mixed": {"msg_item": "nope"}}, None),
    ],
)
def test_message_text(payload: dict[str, Any], expected: str | None) -> None:
    assert message_text(payload) == expected


# -- mentions --------------------------------------------------------------------------------------------


def directory_with_gaps() -> Directory:
    """li_hua has only a mobile, wu_fang has neither a userid nor a mobile."""
    config = load_config(EXAMPLE_CONFIG)
    people = []
    for person in config.people:
        if person.id == "li_hua":
            person = person.model_copy(update={"wecom_userid": None})
        if person.id == "wu_fang":
            person = person.model_copy(update={"wecom_userid": None, "mobile": None})
        people.append(person)
    return Directory(config.model_copy(update={"people": people}))


def test_mentions_by_userid_then_mobile_then_name() -> None:
    mentions = resolve_mentions(["zhao_min", "li_hua", "wu_fang", "zhao_min", "ghost"], directory_with_gaps())
    assert mentions == Mentions(userids=("ZhaoMin",), mobiles=("13800000002",), names=("吴芳", "ghost"))


def test_text_mentions_ride_on_the_last_part_and_unreachable_people_are_named() -> None:
    mentions = Mentions(userids=("ZhaoMin",), mobiles=("13800000002",), names=("吴芳",))
    [payload] = webhook_payloads("【舆情通报】#1", mentions, "text")
    assert payload == {"msgtype": "text", "text": {
        "content": "【舆情通报】#1\n@吴芳", "mentioned_list": ["ZhaoMin"], "mentioned_mobile_list": ["13800000002"],
    }}


def test_markdown_mentions_inline_by_userid() -> None:
    [payload] = webhook_payloads("**通报**", Mentions(userids=("ZhaoMin", "LiHua"), names=("吴芳",)), "markdown")
    assert payload == {"msgtype": "markdown", "markdown": {"content": "**通报**\n<@ZhaoMin> <@LiHua> @吴芳"}}


def test_markdown_falls_back_to_text_when_someone_is_reachable_only_by_mobile() -> None:
    [payload] = webhook_payloads("通报", Mentions(userids=("ZhaoMin",), mobiles=("13800000002",)), "markdown")
    assert payload["msgtype"] == "text"
    assert payload["text"]["mentioned_mobile_list"] == ["13800000002"]


def test_no_mentions_no_lists() -> None:
    assert webhook_payloads("好的", Mentions(), "text") == [{"msgtype": "text", "text": {"content": "好的"}}]


@pytest.mark.parametrize("message_format", ["text", "markdown"])
def test_markdown_v2_is_never_used(message_format: str) -> None:
    payloads = webhook_payloads("甲\n" * 3000, Mentions(userids=("ZhaoMin",)), message_format)
    assert {p["msgtype"] for p in payloads} == {message_format}
    limit = TEXT_LIMIT if message_format == "text" else MARKDOWN_LIMIT
    assert all(utf8_size(p[message_format]["content"]) <= limit for p in payloads)


# -- splitting by bytes ----------------------------------------------------------------------------------


def test_short_text_is_one_part() -> None:
    assert split_utf8("一行\n两行", 2048) == ["一行\n两行"]


def test_lines_are_kept_whole_when_they_fit() -> None:
    parts = split_utf8("\n".join(["甲" * 300, "乙" * 300, "丙" * 300]), 2048)  # 900 bytes a line
    assert parts == ["甲" * 300 + "\n" + "乙" * 300, "丙" * 300]


def test_an_overlong_line_is_cut_between_characters() -> None:
    parts = split_utf8("😀" * 1000, 2048)  # 4 bytes each
    assert [len(p) for p in parts] == [512, 488]


def test_the_tail_gets_its_own_part_when_the_last_one_is_full() -> None:
    parts = split_with_tail("甲" * 682, "<@ZhaoMin>", 2048)  # 2,046 bytes: no room for the tail
    assert parts == ["甲" * 682, "<@ZhaoMin>"]
    assert split_with_tail("甲" * 10, "<@ZhaoMin>", 2048) == ["甲" * 10 + "\n<@ZhaoMin>"]


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=3000),
       limit=st.integers(min_value=8, max_value=600))
def test_split_parts_fit_and_lose_nothing_but_blank_lines(text: str, limit: int) -> None:
    parts = split_utf8(text, limit)
    assert all(utf8_size(p) <= limit for p in parts)
    if text.strip():
        assert re.sub(r"\s", "", "".join(parts)) == re.sub(r"\s", "", text)
        assert all(p.strip() for p in parts)


@settings(max_examples=100, deadline=None)
@given(lines=st.lists(st.text(alphabet="甲乙丙abc 😀", min_size=1, max_size=80).filter(str.strip), min_size=1,
                      max_size=60))
def test_split_of_ordinary_lines_rejoins_exactly(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert "\n".join(split_utf8(text, 400)) == text


# -- answers from WeCom ----------------------------------------------------------------------------------


KEYED = ('{"errcode":93000,"errmsg":"invalid webhook url, hint: [1_2], from ip: 1.2.3.4, more info at '
         'https://open.work.weixin.qq.com/devtool/query?e=93000 key=SECRETKEY"}')


@pytest.mark.parametrize(
    ("status", "raw", "ok", "retryable", "config_error"),
    [
        (200, b'{"errcode":0,"errmsg":"ok"}', True, False, False),
        (200, b'{"errcode":45009,"errmsg":"api freq out of limit"}', False, True, False),
        (200, b'{"errcode":-1,"errmsg":"system busy"}', False, True, False),
        (200, b'{"errcode":93000,"errmsg":"invalid webhook url"}', False, False, True),
        (200, b'{"errcode":40058,"errmsg":"too long"}', False, False, True),
        (200, b'{"errcode":40008,"errmsg":"invalid message type"}', False, False, True),
        (200, b'{"errcode":44004,"errmsg":"empty"}', False, False, True),
        (200, b"<html>portal</html>", False, False, True),
        (200, b'{"ok":true}', False, False, True),
        (200, b"[" * 100000, False, False, True),
        (500, b"", False, True, False),
        (502, b"bad gateway", False, True, False),
        (429, b"", False, True, False),
        (404, b"not found", False, False, True),
    ],
)
def test_classify(status: int, raw: bytes, ok: bool, retryable: bool, config_error: bool) -> None:
    result = classify(status, raw)
    assert (result.ok, result.retryable, result.config_error) == (ok, retryable, config_error)


def test_errmsg_details_lose_urls_and_keys() -> None:
    detail = classify(200, KEYED.encode()).detail
    assert detail.startswith("errcode 93000: invalid webhook url, hint: [1_2]")
    assert "https://" not in detail and "SECRETKEY" not in detail
