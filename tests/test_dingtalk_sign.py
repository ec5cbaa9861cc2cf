"""DingTalk signatures against the published vectors, and the callback verification rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.dingtalk_sign import (
    parse_timestamp,
    sign,
    sign_urlencoded,
    signed_webhook_url,
    verify_callback,
)
from tests.fakes.dingtalk import dingtalk_sign

VECTORS_FILE = Path(__file__).resolve().parents[2] / "shared" / "protocols" / "test_vectors.json"
# The vectors as published (PROTOCOLS.md G.4), so the tests run where the shared notes are absent.
PUBLISHED: list[dict[str, Any]] = [
    {"timestamp_ms": "1577262236757", "secret": "this is secret",
     "sign_base64": "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM=",
     "sign_urlencoded": "hmPWwU%2B7lVdm3ZZz0r9tSfx0L4Q26jWOZr9%2BGs6EZQM%3D"},
    {"timestamp_ms": "1700000000000", "secret": "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd",
     "sign_base64": "8SZas7RY4E7wuOlgLfjLwHSKZpyUEdXdLvFYSDZiiFw=",
     "sign_urlencoded": "8SZas7RY4E7wuOlgLfjLwHSKZpyUEdXdLvFYSDZiiFw%3D",
     "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=T&timestamp=1700000000000"
                    "&sign=8SZas7RY4E7wuOlgLfjLwHSKZpyUEdXdLvFYSDZiiFw%3D"},
]


def _vectors() -> list[dict[str, Any]]:
    if VECTORS_FILE.exists():
        vectors: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text("utf-8"))["dingtalk_sign"]
        assert [v["sign_base64"] for v in vectors] == [v["sign_base64"] for v in PUBLISHED]
        return vectors
    return PUBLISHED


VECTORS = _vectors()
SKEW = 300_000


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["timestamp_ms"])
def test_sign_matches_the_published_vectors(vector: dict[str, Any]) -> None:
    assert sign(vector["timestamp_ms"], vector["secret"]) == vector["sign_base64"]
    assert sign(int(vector["timestamp_ms"]), vector["secret"]) == vector["sign_base64"]
    assert sign_urlencoded(vector["timestamp_ms"], vector["secret"]) == vector["sign_urlencoded"]
    assert dingtalk_sign(vector["timestamp_ms"], vector["secret"]) == vector["sign_base64"]  # the fake agrees


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["timestamp_ms"])
def test_callback_verification_uses_the_same_construction(vector: dict[str, Any]) -> None:
    stamp = vector["timestamp_ms"]
    now = int(stamp) + 1000
    assert verify_callback(stamp, vector["sign_base64"], vector["secret"], now_ms=now, max_skew_ms=SKEW)
    # The header carries the raw base64, never the URL form.
    assert not verify_callback(stamp, vector["sign_urlencoded"], vector["secret"], now_ms=now, max_skew_ms=SKEW)


def test_signed_webhook_url_encodes_the_sign_exactly_once() -> None:
    vector = VECTORS[1]
    url = signed_webhook_url("https://oapi.dingtalk.com/robot/send?access_token=T", vector["secret"],
                             int(vector["timestamp_ms"]))
    assert url == vector["webhook_url"]
    decoded = parse_qs(urlsplit(url).query)
    assert decoded["sign"] == [vector["sign_base64"]]  # one decoding gives back the base64
    assert decoded["timestamp"] == [vector["timestamp_ms"]]


def test_skew_boundaries_both_directions() -> None:
    secret, stamp = "app-secret", 1_800_000_000_000
    signature = sign(stamp, secret)
    for now in (stamp - SKEW, stamp, stamp + SKEW):
        assert verify_callback(str(stamp), signature, secret, now_ms=now, max_skew_ms=SKEW)
    for now in (stamp - SKEW - 1, stamp + SKEW + 1):
        assert not verify_callback(str(stamp), signature, secret, now_ms=now, max_skew_ms=SKEW)


@pytest.mark.parametrize("stamp", ["", "abc", "1.8e12", " 1800000000000", "+1800000000000", "-1", "١٨٠٠",
                                   "1_800_000_000_000", "18000000000000000000"])
def test_non_numeric_timestamps_are_refused(stamp: str) -> None:
    assert parse_timestamp(stamp) is None
    assert not verify_callback(stamp, sign(stamp, "s"), "s", now_ms=1_800_000_000_000, max_skew_ms=SKEW)


def test_missing_parts_are_refused() -> None:
    stamp = "1800000000000"
    good = sign(stamp, "s")
    now = int(stamp)
    assert not verify_callback(None, good, "s", now_ms=now, max_skew_ms=SKEW)
    assert not verify_callback(stamp, None, "s", now_ms=now, max_skew_ms=SKEW)
    assert not verify_callback(stamp, "", "s", now_ms=now, max_skew_ms=SKEW)
    assert not verify_callback(stamp, good, "", now_ms=now, max_skew_ms=SKEW)  # no secret: fail closed
    assert not verify_callback(stamp, good + "\u00e9", "s", now_ms=now, max_skew_ms=SKEW)  # non-ASCII: no crash


@given(secret=st.text(min_size=1, max_size=80), stamp=st.integers(min_value=0, max_value=10**13))
def test_bot_and_fake_agree_on_any_secret(secret: str, stamp: int) -> None:
    assert sign(stamp, secret) == dingtalk_sign(str(stamp), secret)
    assert verify_callback(str(stamp), dingtalk_sign(str(stamp), secret), secret, now_ms=stamp, max_skew_ms=SKEW)
