"""Hostile callbacks: forgeries in bulk, XML bombs and XXE, oversized bodies. Nothing may be accepted
or written; genuine callbacks sent afterwards must all still be accepted."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from bot.clock import ManualClock
from domain.config import Config
from store.models import ChatMessage, InboundSeen, Item, ItemEvent, OutboxMessage
from tests.fakes.wecom import WecomBot, aibot_message, app_text_xml, running

TABLES = (Item, ItemEvent, ChatMessage, OutboxMessage, InboundSeen)
FORGERIES_PER_KIND = 1250  # × 8 kinds = 10,000
GENUINE = 1000


@pytest.fixture
async def wecom(config: Config, clock: ManualClock) -> AsyncIterator[WecomBot]:
    async with running(config, clock) as harness:
        yield harness


async def assert_nothing_written(w: WecomBot) -> None:
    counts = {model.__tablename__: await w.count(model) for model in TABLES}
    assert counts == dict.fromkeys(counts, 0)


# -- forgeries -------------------------------------------------------------------------------------------


Request = tuple[str, bytes]  # (query, body)


class Forger:
    """Builds forged callbacks from genuine ones, deterministically (seeded)."""

    def __init__(self, w: WecomBot, seed: int = 20261123) -> None:
        self.w = w
        self.rng = random.Random(seed)
        self.n = 0

    def payload(self, **extra: Any) -> dict[str, Any]:
        self.n += 1
        return aibot_message(msgid=f"FORGED{self.n:06d}", userid="ZhaoMin", text=f"@值班助手 上报 伪造线索{self.n}",
                             response_url=self.w.fake.response_url(f"RCF{self.n}"), **extra)

    def genuine(self, timestamp: int | None = None, **options: Any) -> tuple[dict[str, str], str]:
        """(query params, encrypt) of a correctly signed callback."""
        encrypt = self.w.wecom.encrypt(json.dumps(self.payload(), ensure_ascii=False).encode(), **options)
        query = self.w.wecom.query(encrypt, self.w.timestamp() if timestamp is None else timestamp)
        return dict(parse_qsl(query)), encrypt

    @staticmethod
    def request(params: dict[str, str], body: Any) -> Request:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return urlencode(params), raw

    def random_signature(self) -> Request:
        params, encrypt = self.genuine()
        params["msg_signature"] = "".join(self.rng.choice("0123456789abcdef") for _ in range(40))
        return self.request(params, {"encrypt": encrypt})

    def flipped_signature(self) -> Request:
        params, encrypt = self.genuine()
        sig = list(params["msg_signature"])
        at = self.rng.randrange(40)
        sig[at] = self.rng.choice([c for c in "0123456789abcdef" if c != sig[at]])
        params["msg_signature"] = "".join(sig)
        return self.request(params, {"encrypt": encrypt})

    def altered_ciphertext(self) -> Request:
        """The ciphertext changed (a bit flipped or cut short) under the original signature."""
        params, encrypt = self.genuine()
        raw = bytearray(base64.b64decode(encrypt))
        if self.rng.random() < 0.5:
            raw[self.rng.randrange(len(raw))] ^= 1 << self.rng.randrange(8)
        else:
            del raw[-self.rng.choice([1, 15, 16, 32, len(raw) // 2]):]
        return self.request(params, {"encrypt": base64.b64encode(bytes(raw)).decode()})

    def wrong_receive_id(self) -> Request:
        """Correct key and token, but meant for another receiver (e.g. a self-built app's CorpID)."""
        params, encrypt = self.genuine(receive_id=f"ww{self.rng.getrandbits(64):016x}")
        return self.request(params, {"encrypt": encrypt})

    def wrong_key(self) -> Request:
        """Someone who knows the token but not the EncodingAESKey: signed right, encrypted wrong."""
        params, encrypt = self.genuine(key=self.rng.randbytes(32))
        return self.request(params, {"encrypt": encrypt})

    def stale_timestamp(self) -> Request:
        offset = self.rng.choice([-1, 1]) * self.rng.randint(3601, 10**7)
        params, encrypt = self.genuine(timestamp=self.w.timestamp() + offset)
        return self.request(params, {"encrypt": encrypt})

    def missing_params(self) -> Request:
        params, encrypt = self.genuine()
        choice = self.rng.randrange(4)
        if choice == 0:
            for name in self.rng.sample(sorted(params), self.rng.randint(1, 3)):
                del params[name]
        elif choice == 1:
            params[self.rng.choice(sorted(params))] = ""
        elif choice == 2:
            params["timestamp"] = self.rng.choice(["abc", "-5", "1.5", "１７００", "9" * 20])
        else:
            params = {}
        return self.request(params, {"encrypt": encrypt})

    def wrong_shape(self) -> Request:
        params, encrypt = self.genuine()
        signed_for = self.w.wecom
        bodies: list[Any] = [
            b"not json", b"", b"[" * 50000, [encrypt], {"Encrypt": encrypt}, {"encrypt": 123}, {}, {"encrypt": ""},
            b"\xff\xfe{}", b'{"encrypt": "' + encrypt.encode() + b'"',
        ]
        kind = self.rng.randrange(len(bodies) + 3)
        if kind < len(bodies):
            return self.request(params, bodies[kind])
        ts = str(self.w.timestamp())
        if kind == len(bodies):  # not base64, correctly signed
            junk = "!!not*base64!!"
            return self.request(dict(parse_qsl(signed_for.query(junk, ts))), {"encrypt": junk})
        plain = b"[1, 2, 3]" if kind == len(bodies) + 1 else json.dumps({"msgtype": "text"}).encode()
        inner = signed_for.encrypt(plain)  # authentic but not a usable message
        return self.request(dict(parse_qsl(signed_for.query(inner, ts))), {"encrypt": inner})

    def corpus(self) -> Iterator[tuple[str, Request]]:
        kinds = [self.random_signature, self.flipped_signature, self.altered_ciphertext, self.wrong_receive_id,
                 self.wrong_key, self.stale_timestamp, self.missing_params, self.wrong_shape]
        for _ in range(FORGERIES_PER_KIND):
            for make in kinds:
                yield make.__name__, make()


async def test_ten_thousand_forgeries_are_refused_and_genuine_callbacks_still_accepted(
    wecom: WecomBot, config: Config
) -> None:
    if config.database.url.startswith("postgresql"):
        pytest.skip("volume test runs on SQLite only (the refusals happen before any database access)")
    started = time.perf_counter()
    statuses: Counter[tuple[str, int]] = Counter()
    total = 0
    for kind, (query, body) in Forger(wecom).corpus():
        status, _ = await wecom.post(query, body)
        statuses[(kind, status)] += 1
        total += 1
    assert total == 10_000
    assert {status for _, status in statuses} <= {400, 401, 403}, statuses
    assert {kind for kind, status in statuses if status == 401} >= {
        "random_signature", "flipped_signature", "altered_ciphertext", "wrong_receive_id", "wrong_key",
        "stale_timestamp",
    }
    await assert_nothing_written(wecom)
    assert wecom.fake.posts == []
    forged_at = time.perf_counter()

    async def genuine(number: int) -> tuple[int, str]:
        payload = aibot_message(msgid=f"GENUINE{number:05d}", userid="ZhaoMin", text=f"@值班助手 上报 测试线索{number}",
                                response_url=wecom.fake.response_url(f"RCG{number}"))
        return await wecom.post(*wecom.wecom.json_callback(payload, wecom.timestamp()))

    for batch in range(0, GENUINE, 10):  # ten at a time, as a busy group would
        answers = await asyncio.gather(*(genuine(n) for n in range(batch, batch + 10)))
        assert answers == [(200, "")] * 10
    await wecom.deliver()
    assert await wecom.count(Item) == GENUINE
    assert len(wecom.fake.reply_posts()) == GENUINE
    done = time.perf_counter()
    by_status = Counter({status: 0 for _, status in statuses})
    for (_, status), count in statuses.items():
        by_status[status] += count
    print(f"\n10,000 forgeries in {forged_at - started:.1f} s ({dict(by_status)}); "
          f"{GENUINE} genuine in {done - forged_at:.1f} s")


# -- XML bombs and external entities --------------------------------------------------------------------


def passwd_marker() -> str:
    """A line of /etc/passwd that must never show up anywhere (the file exists on Linux runners)."""
    text = Path("/etc/passwd").read_text(encoding="utf-8") if Path("/etc/passwd").exists() else ""
    return text.splitlines()[0] if text else "root:x:0:0:"


def hostile_documents(dtd_url: str) -> dict[str, bytes]:
    laughs = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    big = "A" * 20000
    return {
        "billion-laughs": (f'<?xml version="1.0"?><!DOCTYPE xml [{"".join(laughs)}]>'
                           "<xml><Encrypt>&lol9;</Encrypt><MsgType>&lol9;</MsgType></xml>").encode(),
        "quadratic-blowup": (f'<!DOCTYPE xml [<!ENTITY a "{big}">]><xml><Encrypt>{"&a;" * 2000}</Encrypt>'
                             "</xml>").encode(),
        "external-entity": (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                            b"<xml><Encrypt>&xxe;</Encrypt><FromUserName>&xxe;</FromUserName>"
                            b"<MsgType>text</MsgType><Content>&xxe;</Content></xml>"),
        "external-dtd-file": b'<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><Encrypt>x</Encrypt></xml>',
        "external-dtd-http": f'<!DOCTYPE xml SYSTEM "{dtd_url}"><xml><Encrypt>&leak;</Encrypt></xml>'.encode(),
        "parameter-entities": (f'<!DOCTYPE xml [<!ENTITY % file SYSTEM "file:///etc/passwd">'
                               f'<!ENTITY % dtd SYSTEM "{dtd_url}">%dtd;%file;]>'
                               "<xml><Encrypt>x</Encrypt></xml>").encode(),
        "xinclude": (b'<xml xmlns:xi="http://www.w3.org/2001/XInclude"><MsgType>text</MsgType>'
                     b"<FromUserName>ZhaoMin</FromUserName>"
                     b'<Content><xi:include href="file:///etc/passwd" parse="text"/></Content></xml>'),
        "deep-nesting": b"<xml>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</xml>",
        "not-xml": b"<xml><Encrypt>unclosed",
    }


DOCUMENTS = list(hostile_documents("http://127.0.0.1:9/evil.dtd"))


@pytest.mark.parametrize("name", DOCUMENTS)
@pytest.mark.parametrize("signed", [False, True], ids=["as-envelope", "signed-inside"])
async def test_xml_bombs_and_external_entities_are_refused(wecom: WecomBot, name: str, signed: bool) -> None:
    document = hostile_documents(f"{wecom.fake.base_url()}/evil.dtd")[name]
    assert len(document) < 64 * 1024
    if signed:
        # Correctly signed and encrypted: the bot decrypts it, so its XML parser meets the document.
        query, body = wecom.wecom.xml_callback(document, wecom.timestamp())
    else:
        query = wecom.wecom.query("x", wecom.timestamp())
        body = document
    status, answer = await wecom.post(query, body, content_type="text/xml")
    # Documents without a DTD parse harmlessly: no Encrypt (400), or inside a signed callback no
    # text message (200, empty) or a text message answered with the help text (XInclude is inert).
    allowed = {200, 400} if name in ("xinclude", "deep-nesting") and signed else {400, 401}
    assert status in allowed
    visible = passive_reply_text(wecom, answer) if status == 200 and answer else answer
    assert passwd_marker() not in visible and "fetched" not in visible and "lol" not in visible
    assert wecom.fake.fetches == []  # no external DTD was loaded
    await assert_nothing_written(wecom)


def passive_reply_text(w: WecomBot, answer: str) -> str:
    encrypt = answer.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]
    message, _, _ = w.wecom.decrypt(encrypt)
    return message.decode()


# -- body size --------------------------------------------------------------------------------------------


async def test_bodies_over_64_kib_are_refused_with_413(wecom: WecomBot) -> None:
    query = wecom.wecom.query("x", wecom.timestamp())
    big = b'{"encrypt": "' + b"A" * (65 * 1024) + b'"}'
    sized = await wecom.bot.client.post(f"{wecom.path}?{query}", data=big,
                                        headers={"Content-Type": "application/json"})
    assert sized.status == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(70):
            yield b"A" * 1024

    chunked = await wecom.bot.client.post(f"{wecom.path}?{query}", data=chunks(),
                                          headers={"Content-Type": "application/json"})
    assert chunked.status == 413
    assert chunked.request_info.headers.get("Transfer-Encoding") == "chunked"
    await assert_nothing_written(wecom)


async def test_a_body_just_under_the_limit_is_still_read(wecom: WecomBot) -> None:
    """Control for the 413 test: a large but allowed body reaches the signature check and is handled."""
    query, body = wecom.wecom.xml_callback(app_text_xml("ZhaoMin", "值" * 14000), wecom.timestamp())
    assert 48 * 1024 < len(body) < 64 * 1024
    status, answer = await wecom.post(query, body, content_type="text/xml")
    assert status == 200 and "请在值班群内" in passive_reply_text(wecom, answer)
    await assert_nothing_written(wecom)
