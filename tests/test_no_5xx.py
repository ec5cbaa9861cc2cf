"""Issue #13 point 9: no input yields a 5xx, and none leaves a traceback in the log.

Genuine callbacks are built with the fake platforms (signed, encrypted), their decoded JSON is
mutated — wrong types in every field, huge and negative numbers, NaN and infinities, lone
surrogates, NUL, nesting thousands deep, missing keys — then signed again and posted. Every answer
must be below 500 (a 4xx with a clear message, or a polite 200), and no ERROR with a traceback may
reach the log. First every field with every kind of junk, deterministically; then hypothesis
combines mutations (a modest number of examples: the suite runs on 2 cores in CI).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import ManualClock
from domain.config import Config
from tests.conftest import Bot, start_bot
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import WecomBot, aibot_message, running
from tests.test_forgery import forget_signatures

DEEP = "__dutybot_deep__"  # encoded as JSON nested 5,000 deep
DELETE = object()  # a mutation that removes the key
DEEP_TEXT = "[" * 5000 + "]" * 5000
JUNK: list[Any] = [
    None, True, False, 0, -1, 10**20, -(10**20), 2**63, 2**64 + 1, 1e20, -1e20, 0.5, float("inf"), float("-inf"),
    float("nan"), "", " ", "\ud800", "a\udfffb", "\x00", "上报\x00测试", "x" * 5000, "@all <@x>", [], [1, "a", None],
    {}, {"content": {"content": None}}, DEEP,
]
CHANGES = [*JUNK, DELETE]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))

# JSON values hypothesis draws: scalars of every type (text with surrogates and control characters
# included), and small lists and objects of them.
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(categories=("Cs", "Cc", "Lo", "Nd", "Zs", "Ll", "Po")), max_size=30),
    st.sampled_from(JUNK),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)
CHANGE = st.one_of(st.just(DELETE), VALUES)


def encode(document: Any) -> bytes:
    """JSON as a platform might send it: \\u escapes (so lone surrogates pass), NaN/Infinity
    literals (Python's json reads them), and the DEEP marker as thousands of nested arrays."""
    text = json.dumps(document, ensure_ascii=True, allow_nan=True)
    return text.replace(json.dumps(DEEP), DEEP_TEXT).encode()


def mutate(document: Any, path: tuple[str, ...], value: Any) -> Any:
    """`document` with the value at `path` replaced (or removed); a path through a non-object is
    left alone (an earlier mutation changed its parent). An empty path replaces the document."""
    value = value if value is DELETE else copy.deepcopy(value)
    if not path:
        return None if value is DELETE else value
    node = document
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return document
        node = node[key]
    if isinstance(node, dict):
        if value is DELETE:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return document


def paths(document: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in document.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from paths(value, (*prefix, key))


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or (r.levelno >= logging.ERROR and "Traceback" in r.getMessage())]
    assert not bad, [(r.name, r.getMessage(), r.exc_info) for r in bad]
    assert "Traceback" not in caplog.text


COMMANDS = ["上报 网友反映西岸滨河路路灯不亮", "帮助", "值班", "1", "查询 #1"]


# -- DingTalk -----------------------------------------------------------------------------------------------------


@pytest.fixture
async def dingtalk(config: Config, clock: ManualClock, db_url: str) -> AsyncIterator[tuple[Bot, FakeDingTalk]]:
    await forget_signatures(db_url)
    async with FakeDingTalk(clock) as fake:
        client = await start_bot(config, clock, fake.environ())
        try:
            yield Bot(client, clock, config), fake
        finally:
            await client.close()


async def post_dingtalk(bot: Bot, fake: FakeDingTalk, body: Any) -> int:
    response = await fake.call(bot.client, encode(body))
    text = await response.text()
    assert response.status < 500, (response.status, text)
    if response.status >= 400:
        assert json.loads(text)["error"]  # a clear message
    return response.status


async def test_every_dingtalk_field_with_every_kind_of_junk(
    dingtalk: tuple[Bot, FakeDingTalk], caplog: pytest.LogCaptureFixture
) -> None:
    bot, fake = dingtalk
    statuses = set()
    for path in [(), *paths(fake.message("x"))]:
        for value in CHANGES:
            body = mutate(fake.message("上报 网友反映西岸滨河路路灯不亮"), path, value)
            statuses.add(await post_dingtalk(bot, fake, body))
    await bot.runtime.outbox.drain()
    assert statuses <= {200, 400} and 200 in statuses and 400 in statuses
    no_tracebacks(caplog)


@SETTINGS
@given(command=st.sampled_from(COMMANDS), changes=st.lists(st.tuples(st.integers(0, 100), CHANGE), max_size=4))
async def test_mutated_dingtalk_callbacks_never_5xx(
    dingtalk: tuple[Bot, FakeDingTalk], caplog: pytest.LogCaptureFixture, command: str,
    changes: list[tuple[int, Any]],
) -> None:
    bot, fake = dingtalk
    body = fake.message(command)
    where = [(), *paths(body)]
    for index, value in changes:
        body = mutate(body, where[index % len(where)], value)
    await post_dingtalk(bot, fake, body)
    await bot.runtime.outbox.drain()
    no_tracebacks(caplog)


# -- WeCom --------------------------------------------------------------------------------------------------------


@pytest.fixture
async def wecom(config: Config, clock: ManualClock) -> AsyncIterator[WecomBot]:
    async with running(config, clock) as harness:
        yield harness


def wecom_message(w: WecomBot, command: str) -> dict[str, Any]:
    number = w.next_id()
    return aibot_message(msgid=f"MSG{number:06d}", userid="ZhaoMin", text=f"@值班助手 {command}",
                         response_url=w.fake.response_url(f"RC{number:06d}"),
                         mixed={"msg_item": [{"msgtype": "text", "text": {"content": command}}]},
                         voice={"content": command})


async def post_wecom(w: WecomBot, payload: Any) -> int:
    encrypt = w.wecom.encrypt(encode(payload))
    status, text = await w.post(w.wecom.query(encrypt, w.timestamp()), json.dumps({"encrypt": encrypt}).encode())
    assert status < 500, (status, text)
    if status >= 400:
        assert text.strip()  # a clear message
    return status


async def test_every_wecom_field_with_every_kind_of_junk(wecom: WecomBot, caplog: pytest.LogCaptureFixture) -> None:
    statuses = set()
    for path in [(), *paths(wecom_message(wecom, "x"))]:
        for value in CHANGES:
            statuses.add(await post_wecom(wecom, mutate(wecom_message(wecom, COMMANDS[0]), path, value)))
    await wecom.deliver()
    assert statuses <= {200, 400} and 200 in statuses and 400 in statuses
    no_tracebacks(caplog)


@SETTINGS
@given(command=st.sampled_from(COMMANDS), changes=st.lists(st.tuples(st.integers(0, 100), CHANGE), max_size=4))
async def test_mutated_wecom_callbacks_never_5xx(
    wecom: WecomBot, caplog: pytest.LogCaptureFixture, command: str, changes: list[tuple[int, Any]]
) -> None:
    payload = wecom_message(wecom, command)
    where = [(), *paths(payload)]
    for index, value in changes:
        payload = mutate(payload, where[index % len(where)], value)
    await post_wecom(wecom, payload)
    await wecom.deliver()
    no_tracebacks(caplog)


async def test_wecom_envelopes_and_queries_of_every_shape(wecom: WecomBot, caplog: pytest.LogCaptureFixture) -> None:
    """The parts outside the encryption: the envelope's JSON and the query string."""
    good_encrypt = wecom.wecom.encrypt(encode(wecom_message(wecom, "帮助")))
    good_query = wecom.wecom.query(good_encrypt, wecom.timestamp())
    for value in JUNK:
        status, _ = await wecom.post(good_query, encode({"encrypt": value} if value is not DELETE else {}))
        assert 400 <= status < 500
        status, _ = await wecom.post(good_query, encode(value))
        assert 400 <= status < 500
    for query in ("", "msg_signature=x", good_query.replace("timestamp=", "timestamp=1e400&x="),
                  good_query.replace("timestamp=", "timestamp=-"),
                  good_query.replace("timestamp=", "timestamp=99999999999999999999"),
                  good_query.replace("nonce=", "nonce=%ED%A0%80"), "timestamp=%FF%FE&nonce=%00"):
        status, _ = await wecom.post(query, json.dumps({"encrypt": good_encrypt}).encode())
        assert 400 <= status < 500, query
    # A second `timestamp` after the signed one is ignored (the first value counts): a polite 200.
    status, _ = await wecom.post(f"{good_query}&timestamp=1e400", json.dumps({"encrypt": good_encrypt}).encode())
    assert status == 200
    no_tracebacks(caplog)


# -- the local channel -------------------------------------------------------------------------------------------


LOCAL_FIELDS = ("chat", "sender", "text")


async def test_every_local_field_with_every_kind_of_junk(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    for path in [(), *((f,) for f in LOCAL_FIELDS)]:
        for value in CHANGES:
            body = mutate({"chat": "wecom_duty", "sender": "li_hua", "text": "帮助"}, path, value)
            response = await bot.client.post("/local/messages", data=encode(body))
            assert response.status < 500, (path, value, await response.text())
    for after in ("1e400", "99999999999999999999999", "9223372036854775808", "-1", "٣", "0x10", "", " 1", "+1",
                  "1_0", "\x00", "9223372036854775807"):
        response = await bot.client.get("/local/messages", params={"chat": "wecom_duty", "after": after})
        assert response.status in (200, 400), after
        if response.status == 400:
            assert "after" in (await response.json())["error"]
    for chat in ("", "\x00", "x" * 5000, "\ud800"):
        response = await bot.client.get("/local/messages", params={"chat": chat})
        assert response.status == 400
    for key in ("", "k" * 129, "\u00e9" * 10, "ok-key"):
        response = await bot.client.post("/local/messages", headers={"Idempotency-Key": key},
                                         json={"chat": "wecom_duty", "sender": "li_hua", "text": "帮助"})
        assert response.status < 500
    no_tracebacks(caplog)


@SETTINGS
@given(changes=st.lists(st.tuples(st.sampled_from(["", *LOCAL_FIELDS, "extra"]), CHANGE), max_size=3),
       command=st.sampled_from(COMMANDS))
async def test_mutated_local_messages_never_5xx(
    bot: Bot, caplog: pytest.LogCaptureFixture, changes: list[tuple[str, Any]], command: str
) -> None:
    body: Any = {"chat": "wecom_duty", "sender": "li_hua", "text": command}
    for field, value in changes:
        body = mutate(body, (field,) if field else (), value)
    response = await bot.client.post("/local/messages", data=encode(body))
    assert response.status < 500, await response.text()
    no_tracebacks(caplog)
