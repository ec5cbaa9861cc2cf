"""WeCom callback crypto ("回调和回复的加解密方案"), shared by the AI bot (JSON) and self-built apps (XML).

- signature: lowercase hex SHA1 over the sorted, concatenated (token, timestamp, nonce, encrypt);
- key: base64(EncodingAESKey + "=") → 32 bytes; AES-256-CBC with IV = the key's first 16 bytes;
- plaintext: random(16) ‖ msg_len (4 bytes, big-endian) ‖ msg ‖ receive id, PKCS#7-padded to
  32-byte blocks (not AES's 16: the published vectors only decrypt with 32).

Callers verify the signature first and decrypt only what verified; every failure raises a
WecomCryptoError subclass whose message never contains key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom's PKCS#7 block size, in bytes
RANDOM_LEN = 16
LEN_FIELD = 4
KEY_CHARS = re.compile(r"^[A-Za-z0-9]{43}$")
SIGNATURE_FORMAT = re.compile(r"^[0-9a-f]{40}$")


class WecomCryptoError(Exception):
    """A callback that must be refused; the message is safe to log (no secret in it)."""


class SignatureMismatch(WecomCryptoError):
    pass


class DecryptError(WecomCryptoError):
    pass


class ReceiveIdMismatch(WecomCryptoError):
    pass


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key; ValueError (with a Chinese message) when the EncodingAESKey is malformed."""
    if not KEY_CHARS.match(encoding_aes_key):
        raise ValueError("EncodingAESKey 应为 43 个字母或数字")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("EncodingAESKey 不是有效的 Base64 编码") from exc
    if len(key) != 32:
        raise ValueError("EncodingAESKey 解码后应为 32 字节")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """msg_signature: SHA1 of the four strings, sorted lexicographically, joined without separator."""
    joined = "".join(sorted([token, timestamp, nonce, encrypt]))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


class WecomCrypto:
    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self._token = token
        self._key = decode_aes_key(encoding_aes_key)
        self._receive_id = receive_id.encode("utf-8")

    def __repr__(self) -> str:  # never show the token or the key, e.g. in a traceback
        return "WecomCrypto(…)"

    # -- receiving ----------------------------------------------------------------------------

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Constant-time signature check; raises SignatureMismatch."""
        if not SIGNATURE_FORMAT.match(msg_signature):
            raise SignatureMismatch("msg_signature 格式不对")
        expected = signature(self._token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode("ascii"), msg_signature.encode("ascii")):
            raise SignatureMismatch("msg_signature 不匹配")

    def open(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> bytes:
        """Verify, then decrypt: the message bytes of an authentic callback."""
        self.verify(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def decrypt(self, encrypt: str) -> bytes:
        """The message inside `encrypt`; checks the padding, the length field and the receive id."""
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptError("密文不是有效的 Base64") from exc
        if not raw or len(raw) % 16:
            raise DecryptError("密文长度不是 AES 分组的整数倍")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).decryptor()
        content = _unpad(decryptor.update(raw) + decryptor.finalize())
        if len(content) < RANDOM_LEN + LEN_FIELD:
            raise DecryptError("明文过短")
        (length,) = struct.unpack(">I", content[RANDOM_LEN : RANDOM_LEN + LEN_FIELD])
        start = RANDOM_LEN + LEN_FIELD
        if start + length > len(content):
            raise DecryptError("明文长度字段不对")
        if not hmac.compare_digest(content[start + length :], self._receive_id):
            raise ReceiveIdMismatch("receiveid 不匹配")
        return content[start : start + length]

    # -- answering (passive replies) and the tests' fixed vectors --------------------------------

    def encrypt(self, message: bytes, random16: bytes | None = None) -> str:
        """Base64 ciphertext of `message`; `random16` is fixed only to reproduce published vectors."""
        prefix = secrets.token_bytes(RANDOM_LEN) if random16 is None else random16
        if len(prefix) != RANDOM_LEN:
            raise ValueError("random16 must be 16 bytes")
        body = prefix + struct.pack(">I", len(message)) + message + self._receive_id
        amount = BLOCK - len(body) % BLOCK  # a whole block of padding when already aligned
        padded = body + bytes([amount]) * amount
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16])).encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")

    def seal(self, message: bytes, timestamp: str, nonce: str, random16: bytes | None = None) -> tuple[str, str]:
        """(encrypt, msg_signature) for a reply."""
        encrypted = self.encrypt(message, random16)
        return encrypted, signature(self._token, timestamp, nonce, encrypted)


def _unpad(padded: bytes) -> bytes:
    """Strip PKCS#7 padding to 32-byte blocks, validating it (the official sample does not)."""
    amount = padded[-1]
    if not 1 <= amount <= BLOCK or amount > len(padded):
        raise DecryptError("填充不对")
    if not hmac.compare_digest(padded[-amount:], bytes([amount]) * amount):
        raise DecryptError("填充不对")
    return padded[:-amount]
