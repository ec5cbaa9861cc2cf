"""The pure parts of the DingTalk channel: parsing, mentions, bodies and splitting, answer codes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.dingtalk import (
    BodyBuilder,
    Mentions,
    classify,
    parse_robot_message,
    resolve_mentions,
    scrub,
    serialize,
)
from bot.channels.mentions import neutralise
from domain.config import load_config
from domain.directory import Directory
from tests.conftest import EXAMPLE_CONFIG

BASE: dict[str, Any] = {
    "msgtype": "text", "msgId": "msgA1", "conversationId": "cidX==", "conversationType": "2",
    "senderStaffId": "dt_sunli", "text": {"content": " 上报 测试 "},
    "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=s1",
    "sessionWebhookExpiredTime": 1613635652738,
}


# -- parsing ---------------------------------------------------------------------------------------------------


def test_a_text_message_is_parsed_and_stripped() -> None:
    message = parse_robot_message(BASE)
    assert message is not None
    assert (message.msg_id, message.text, message.conversation_id, message.staff_id) == (
        "msgA1", "上报 测试", "cidX==", "dt_sunli")
    assert message.session_webhook == BASE["sessionWebhook"]
    assert message.session_expires_at == datetime(2021, 2, 18, 8, 7, 32, 738000, tzinfo=UTC)


def test_rich_text_joins_its_text_parts() -> None:
    rich = {k: v for k, v in BASE.items() if k != "text"} | {
        "msgtype": "richText",
        "content": {"richText": [{"text": " 上报 "}, {"downloadCode": "x", "type": "picture"}, {"text": "截图所示"}]},
    }
    message = parse_robot_message(rich)
    assert message is not None and message.text == "上报 截图所示"


def test_other_message_types_are_empty_text() -> None:
    picture = {k: v for k, v in BASE.items() if k != "text"} | {"msgtype": "picture", "content": {"downloadCode": "x"}}
    message = parse_robot_message(picture)
    assert message is not None and message.text == ""


@pytest.mark.parametrize(
    "change",
    [{"msgId": None}, {"msgId": 5}, {"conversationId": ""}, {"msgtype": None}, {"text": "plain"},
     {"text": {"content": 3}}, {"msgtype": "richText"}],
)
def test_malformed_messages_are_refused(change: dict[str, Any]) -> None:
    data = {k: v for k, v in (BASE | change).items() if v is not None}
    assert parse_robot_message(data) is None


@pytest.mark.parametrize("value", [None, True, "soon", 1.5e12])
def test_a_session_without_a_known_lifetime_is_not_used(value: object) -> None:
    message = parse_robot_message(BASE | {"sessionWebhookExpiredTime": value})
    assert message is not None and message.session_webhook is None and message.session_expires_at is None


def test_not_a_mapping_is_refused() -> None:
    assert parse_robot_message([BASE]) is None
    assert parse_robot_message(None) is None


# -- mentions ----------------------------------------------------------------------------------------------------


def test_mentions_use_user_id_then_mobile_then_the_name() -> None:
    config = load_config(EXAMPLE_CONFIG)
    people = []
    for person in config.people:
        if person.id == "zhou_tao":
            person = person.model_copy(update={"dingtalk_userid": None})  # mobile only
        if person.id == "li_hua":
            person = person.model_copy(update={"dingtalk_userid": None, "mobile": None})  # neither
        people.append(person)
    directory = Directory(config.model_copy(update={"people": people}))
    mentions = resolve_mentions(["sun_li", "zhou_tao", "li_hua", "sun_li", "ghost"], directory)
    assert mentions == Mentions(
        tokens=("@dt_sunli", "@13800000005", "@李华", "@ghost"), user_ids=("dt_sunli",), mobiles=("13800000005",)
    )


# -- bodies ---------------------------------------------------------------------------------------------------------


MENTIONS = Mentions(("@dt_a", "@13800000005", "@某人"), ("dt_a",), ("13800000005",))


def test_a_short_text_is_one_body_with_the_mentions() -> None:
    [body] = BodyBuilder("text").bodies("你好", MENTIONS)
    assert body == {"msgtype": "text", "text": {"content": "你好\n@dt_a @13800000005 @某人"},
                    "at": {"atMobiles": ["13800000005"], "atUserIds": ["dt_a"], "isAtAll": False}}


def test_no_mentions_still_sends_an_empty_at() -> None:
    [body] = BodyBuilder("text").bodies("你好", Mentions())
    assert body["text"]["content"] == "你好"
    assert body["at"] == {"atMobiles": [], "atUserIds": [], "isAtAll": False}


def test_a_single_line_longer_than_a_post_is_cut() -> None:
    text = "长" * 20_000  # 60,000 bytes of UTF-8 on one line
    bodies = BodyBuilder("text").bodies(text, MENTIONS)
    assert len(bodies) == 4
    assert all(len(serialize(b)) <= 20_000 for b in bodies)
    contents = [b["text"]["content"] for b in bodies]
    assert "".join(contents) == text + "\n@dt_a @13800000005 @某人"


texts = st.text(st.characters(codec="utf-8"), max_size=1500) | st.lists(
    st.text(alphabet="舆情值班ab\"\\\t\x01😀", max_size=90), max_size=60).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(text=texts, markdown=st.booleans(), with_mentions=st.booleans())
def test_every_body_fits_and_nothing_is_lost(text: str, markdown: bool, with_mentions: bool) -> None:
    limit = 400
    builder = BodyBuilder("markdown" if markdown else "text", limit=limit)
    mentions = MENTIONS if with_mentions else Mentions()
    bodies = builder.bodies(text, mentions)
    assert all(len(serialize(b)) <= limit for b in bodies)
    assert ["at" in b for b in bodies] == [False] * (len(bodies) - 1) + [True]
    key = ("markdown", "text") if markdown else ("text", "content")
    contents = [b[key[0]][key[1]] for b in bodies]
    tail = " ".join(mentions.tokens)
    joiner = "  \n" if markdown else "\n"
    if tail:
        assert contents[-1] == tail or contents[-1].endswith(joiner + tail)
        contents[-1] = contents[-1][: -len(tail)].removesuffix(joiner)
        assert all(token not in "".join(contents) for token in ("@dt_a", "@13800000005"))
    # Parts are cut at line breaks (the break is dropped) or inside an over-long line. The text is
    # neutralised first (an "@" that could start a mention becomes "＠"): nothing else changes.
    flat = "".join(c.replace(joiner, "") for c in contents)
    assert flat == neutralise(text).replace("\n", "")


# -- answers -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [({"errcode": 0, "errmsg": "ok"}, (True, False, False)),
     ({"errcode": 130101, "errmsg": "send too fast"}, (False, True, False)),
     ({"errcode": -1, "errmsg": "系统繁忙"}, (False, True, False)),
     ({"errcode": 310000, "errmsg": "keywords not in content"}, (False, False, True)),
     ({"errcode": 300001, "errmsg": "token is not exist"}, (False, False, True)),
     ({"errcode": 300005, "errmsg": "token is not exist"}, (False, False, True)),
     ({"errcode": 40035, "errmsg": "缺少参数 json"}, (False, False, False)),
     ({"errcode": False, "errmsg": "?"}, (False, False, False)),
     ({"errmsg": "ok"}, (False, False, False)),
     (["not", "an", "object"], (False, True, False))],
)
def test_answers_are_classified_by_errcode(answer: object, expected: tuple[bool, bool, bool]) -> None:
    result = classify(answer, [])
    assert (result.ok, result.retryable, result.config_error) == expected


def test_details_carry_no_secret() -> None:
    answer = {"errcode": 310000, "errmsg": "sign not match: access_token=tok123&sign=abc%3D for SECsecret9"}
    result = classify(answer, ["SECsecret9", "tok123"])
    assert result.detail == "errcode 310000: sign not match: access_token=***&sign=*** for ***"
    assert scrub("https://x/robot/sendBySession?session=s3cr3t", []) == "https://x/robot/sendBySession?session=***"
