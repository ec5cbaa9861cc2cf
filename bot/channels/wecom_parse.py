"""WeCom (企业微信), reading callbacks: the envelope, the query, the message's text.

Parsing only — no secrets, no database. The channel (bot/channels/wecom.py) calls these in its
fixed order; anything malformed raises Refused with the status to answer (400/401/413) and a
reason for the log. The payloads themselves are pydantic models (bot/channels/wecom_payloads.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import ParseError

from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from pydantic import ValidationError

from bot.channels.payloads import error_fields
from bot.channels.wecom_payloads import AibotKind, AibotMessage, Envelope

MAX_BODY = 64 * 1024


class Refused(Exception):
    """A callback answered with an error status; `reason` is for the log (never a secret)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class SignedQuery:
    signature: str
    timestamp: str
    nonce: str


async def read_body(request: web.Request) -> bytes:
    """The body, at most 64 KiB (request.read() enforces client_max_size for chunked bodies too)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Refused(413, "请求体超过 64 KiB")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Refused(413, "请求体超过 64 KiB") from None
    if len(body) > MAX_BODY:
        raise Refused(413, "请求体超过 64 KiB")
    return body


def json_envelope(body: bytes) -> str:
    """The ciphertext of an AI bot callback {"encrypt": "…"}; parsing the plaintext waits for the signature."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise Refused(400, "回调请求体不是 JSON") from None
    try:
        return Envelope.model_validate(envelope).encrypt
    except ValidationError:
        raise Refused(400, "回调请求体缺少 encrypt（应为 base64 字符串）") from None


def aibot_message(plaintext: bytes) -> AibotMessage | None:
    """The decrypted AI bot message; None for an event or a stream refresh (nothing to record or say)."""
    try:
        payload = json.loads(plaintext)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Refused(400, "解密后的消息不是 JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, "解密后的消息不是 JSON 对象")
    if AibotKind.model_validate(payload).ignored:
        return None
    try:
        return AibotMessage.model_validate(payload)
    except ValidationError as exc:
        raise Refused(400, f"回调缺少 msgid 或 from.userid（应为非空字符串）：{error_fields(exc)}") from None


def parse_xml(data: bytes) -> Any:
    """Parse with defusedxml only: no DTD, no entities, no external references (XXE, billion laughs)."""
    try:
        return defused_fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError, LookupError) as exc:
        raise Refused(400, f"XML 无法解析或含有被禁止的结构（{type(exc).__name__}）") from None


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
