"""WeCom (企业微信), reading callbacks: the envelope, the query, the message's text.

Parsing only — no secrets, no database. The channel (bot/channels/wecom.py) calls these in its
fixed order; anything malformed raises Refused with the status to answer (400/401/413) and a
reason for the log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import ParseError

from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

MAX_BODY = 64 * 1024
LEADING_MENTION = re.compile(r"^\s*@\S*\s*")


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
    encrypt = envelope.get("encrypt") if isinstance(envelope, dict) else None
    # Base64 is ASCII; anything else (a lone surrogate from a "\ud800" escape) is no ciphertext.
    if not isinstance(encrypt, str) or not encrypt or not encrypt.isascii():
        raise Refused(400, "回调请求体缺少 encrypt（应为 base64 字符串）")
    return encrypt


def json_object(plaintext: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(plaintext)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Refused(400, "解密后的消息不是 JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, "解密后的消息不是 JSON 对象")
    return payload


def parse_xml(data: bytes) -> Any:
    """Parse with defusedxml only: no DTD, no entities, no external references (XXE, billion laughs)."""
    try:
        return defused_fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError, LookupError) as exc:
        raise Refused(400, f"XML 无法解析或含有被禁止的结构（{type(exc).__name__}）") from None


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def field(payload: Mapping[str, Any], *path: str) -> Any:
    value: Any = payload
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value




def strip_leading_mention(text: str) -> str:
    """Drop a leading "@<name> ": the AI bot's display name may differ from config.bot.name."""
    return LEADING_MENTION.sub("", text, count=1) if text.lstrip().startswith("@") else text


def message_text(payload: Mapping[str, Any]) -> str | None:
    """The text of a text, mixed (text items joined) or voice (speech-to-text) message; else None."""
    msgtype = payload.get("msgtype")
    if msgtype == "text":
        content = field(payload, "text", "content")
        return strip_leading_mention(content) if isinstance(content, str) else None
    if msgtype == "mixed":
        items = field(payload, "mixed", "msg_item")
        texts = [
            content for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict) and item.get("msgtype") == "text"
            and isinstance(content := field(item, "text", "content"), str)
        ]
        return strip_leading_mention("\n".join(texts)) if texts else None
    if msgtype == "voice":
        content = field(payload, "voice", "content")
        return content if isinstance(content, str) else None
    return None
