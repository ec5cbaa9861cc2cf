"""WeCom callback crypto: every published/computed vector, both in the bot's module and in the
fake's independent implementation, plus the refusals the bot relies on."""

from __future__ import annotations

import base64
import struct
from typing import Any
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.wecom_crypto import (
    DecryptError,
    ReceiveIdMismatch,
    SignatureMismatch,
    WecomCrypto,
    decode_aes_key,
    signature,
)
from tests.fakes.wecom import AES_KEY, TOKEN, WecomClient, load_vectors

VECTORS = load_vectors()
BY_KIND = {kind: [v for v in VECTORS if v["kind"] == kind] for kind in ("verify_url", "decrypt", "encrypt")}


def ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["id"] for v in vectors]


def ciphertext(vector: dict[str, Any]) -> str:
    return str(vector["echostr"] if vector["kind"] == "verify_url" else vector["encrypt"])


def bot_crypto(vector: dict[str, Any], receive_id: str | None = None) -> WecomCrypto:
    rid = vector["receiveid"] if receive_id is None else receive_id
    return WecomCrypto(vector["token"], vector["encoding_aes_key"], rid)


def fake_crypto(vector: dict[str, Any]) -> WecomClient:
    return WecomClient(vector["token"], vector["encoding_aes_key"], vector["receiveid"])


def test_all_ten_wecom_vectors_are_covered() -> None:
    assert len(VECTORS) == 10
    assert sum(len(group) for group in BY_KIND.values()) == 10


@pytest.mark.parametrize("vector", VECTORS, ids=ids(VECTORS))
def test_signature(vector: dict[str, Any]) -> None:
    args = (vector["token"], vector["timestamp"], vector["nonce"], ciphertext(vector))
    assert signature(*args) == vector["msg_signature"]
    assert fake_crypto(vector).sign(*args[1:]) == vector["msg_signature"]
    bot_crypto(vector).verify(vector["msg_signature"], *args[1:])  # does not raise


@pytest.mark.parametrize("vector", BY_KIND["verify_url"], ids=ids(BY_KIND["verify_url"]))
def test_url_verification_decrypts_echostr(vector: dict[str, Any]) -> None:
    if "echostr_urlencoded" in vector:
        assert unquote(vector["echostr_urlencoded"]) == vector["echostr"]
    opened = bot_crypto(vector).open(vector["msg_signature"], vector["timestamp"], vector["nonce"], vector["echostr"])
    assert opened == vector["plaintext"].encode()
    message, receive_id, _ = fake_crypto(vector).decrypt(vector["echostr"])
    assert (message, receive_id) == (vector["plaintext"].encode(), vector["receiveid"])


def test_url_verification_negative_vector_fails() -> None:
    [vector] = [v for v in VECTORS if "negative" in v]
    with pytest.raises(SignatureMismatch):
        bot_crypto(vector).open(vector["msg_signature"], vector["timestamp"], vector["negative"]["nonce"],
                                vector["echostr"])


@pytest.mark.parametrize("vector", BY_KIND["decrypt"], ids=ids(BY_KIND["decrypt"]))
def test_message_decrypts_to_the_published_plaintext(vector: dict[str, Any]) -> None:
    opened = bot_crypto(vector).open(vector["msg_signature"], vector["timestamp"], vector["nonce"], vector["encrypt"])
    assert opened == vector["plaintext"].encode()  # bytes: one sample's plaintext is not valid JSON
    message, receive_id, pad = fake_crypto(vector).decrypt(vector["encrypt"])
    assert (message, receive_id) == (vector["plaintext"].encode(), vector["receiveid"])
    if "pad" in vector:
        assert pad == vector["pad"]  # e.g. 30 or 22: only possible with 32-byte PKCS#7 blocks


@pytest.mark.parametrize("vector", BY_KIND["encrypt"], ids=ids(BY_KIND["encrypt"]))
def test_encrypt_with_fixed_random_reproduces_the_ciphertext(vector: dict[str, Any]) -> None:
    random16 = vector["random16"].encode()
    encrypted, sig = bot_crypto(vector).seal(vector["plaintext"].encode(), vector["timestamp"], vector["nonce"],
                                             random16)
    assert encrypted == vector["encrypt"]
    assert sig == vector["msg_signature"]
    assert fake_crypto(vector).encrypt(vector["plaintext"].encode(), random16) == vector["encrypt"]


@pytest.mark.parametrize("vector", BY_KIND["decrypt"], ids=ids(BY_KIND["decrypt"]))
def test_a_different_receive_id_is_refused(vector: dict[str, Any]) -> None:
    with pytest.raises(ReceiveIdMismatch):
        bot_crypto(vector, receive_id="").decrypt(vector["encrypt"])
    with pytest.raises(ReceiveIdMismatch):
        bot_crypto(vector, receive_id=vector["receiveid"] + "x").decrypt(vector["encrypt"])


@settings(max_examples=200, deadline=None)
@given(message=st.binary(max_size=600), receive_id=st.sampled_from(["", "ww1436e0e65a779aee"]))
def test_bot_and_fake_agree_both_ways(message: bytes, receive_id: str) -> None:
    bot = WecomCrypto(TOKEN, AES_KEY, receive_id)
    fake = WecomClient(TOKEN, AES_KEY, receive_id)
    assert bot.decrypt(fake.encrypt(message)) == message
    opened, rid, pad = fake.decrypt(bot.encrypt(message))
    assert (opened, rid) == (message, receive_id) and 1 <= pad <= 32


# -- refusals -----------------------------------------------------------------------------------------


def raw_encrypt(plain: bytes) -> str:
    """AES-CBC of already padded bytes, to craft bad padding and bad length fields."""
    key = decode_aes_key(AES_KEY)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def framed(message: bytes, length: int | None = None) -> bytes:
    return b"r" * 16 + struct.pack(">I", len(message) if length is None else length) + message


@pytest.mark.parametrize(
    "encrypt",
    [
        pytest.param("not base64!!", id="not-base64"),
        pytest.param("", id="empty"),
        pytest.param(base64.b64encode(b"x" * 20).decode(), id="not-a-block-multiple"),
        pytest.param(raw_encrypt(framed(b"hi") + b"\x00" * 10), id="pad-0"),
        pytest.param(raw_encrypt(framed(b"hi") + bytes([33]) * 10), id="pad-33"),
        pytest.param(raw_encrypt(framed(b"hi" * 4) + bytes([3, 4, 4, 4])), id="pad-bytes-differ"),
        pytest.param(raw_encrypt(framed(b"hi", length=999) + bytes([10]) * 10), id="length-too-big"),
        pytest.param(raw_encrypt(b"short" + bytes([11]) * 11), id="shorter-than-header"),
    ],
)
def test_malformed_ciphertext_is_refused(encrypt: str) -> None:
    with pytest.raises(DecryptError):
        WecomCrypto(TOKEN, AES_KEY, "").decrypt(encrypt)


def test_a_well_formed_crafted_buffer_decrypts() -> None:
    """The control for the cases above: the same framing with valid padding is accepted."""
    assert WecomCrypto(TOKEN, AES_KEY, "").decrypt(raw_encrypt(framed(b"hi") + bytes([10]) * 10)) == b"hi"


@pytest.mark.parametrize("given_signature", ["", "A" * 40, "0" * 39, "g" * 40, "é" * 40, "0" * 41])
def test_malformed_signatures_are_refused(given_signature: str) -> None:
    with pytest.raises(SignatureMismatch):
        WecomCrypto(TOKEN, AES_KEY, "").verify(given_signature, "1700000000", "1", "abc")


@pytest.mark.parametrize("key", [AES_KEY[:-1], AES_KEY + "A", AES_KEY[:-1] + "+", AES_KEY[:-1] + "=", " " * 43, ""])
def test_encoding_aes_key_must_be_43_alphanumerics(key: str) -> None:
    with pytest.raises(ValueError, match="EncodingAESKey"):
        decode_aes_key(key)


def test_repr_shows_no_secret() -> None:
    assert TOKEN not in repr(WecomCrypto(TOKEN, AES_KEY, "")) and AES_KEY not in repr(WecomCrypto(TOKEN, AES_KEY, ""))
