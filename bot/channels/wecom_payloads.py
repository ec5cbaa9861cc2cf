"""WeCom (企业微信) payloads as pydantic models (PROTOCOLS.md B.2, B.3).

- Envelope: the AI bot callback's body {"encrypt": "<base64>"}, read only for its ciphertext:
  the plaintext is parsed after the signature is checked.
- AibotMessage: the decrypted AI bot JSON. Strict: msgid and from.userid (non-empty strings).
  Lenient (a wrong type reads as absent): chattype, chatid, msgtype and the message bodies.
  `response_url` is kept as sent: bot/channels/reply_urls.py decides whether it is usable.
- AppEnvelope / AppMessage: a self-built app's XML callback and its decrypted message, read from
  the elements defusedxml parsed (never from the raw XML).
Unknown fields are ignored everywhere: WeCom adds fields (aibotid, quote, …) without notice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from bot.channels.payloads import Lenient, Loose, Payload, Required, Text

LEADING_MENTION = re.compile(r"^\s*@\S*\s*")
IGNORED_TYPES = frozenset({"event", "stream"})  # enter_chat / card / feedback events, stream refreshes


def strip_leading_mention(text: str) -> str:
    """Drop a leading "@<name> ": the AI bot's display name may differ from config.bot.name."""
    return LEADING_MENTION.sub("", text, count=1) if text.lstrip().startswith("@") else text


class Envelope(Payload):
    # Base64 is ASCII; anything else (a lone surrogate from a "\ud800" escape) is no ciphertext.
    encrypt: Annotated[str, StringConstraints(strict=True, min_length=1, pattern=r"^[\x00-\x7f]+$")]


class Content(Payload):
    content: Text


class MixedItem(Payload):
    msgtype: Loose = None
    text: Annotated[Content | None, Lenient] = None


class Mixed(Payload):
    msg_item: Annotated[list[Annotated[MixedItem | None, Lenient]], Field(strict=True)]


class AibotBody(Payload):
    """What a message says: text (the mention still in it), mixed text and images, voice as text."""

    msgtype: Loose = None
    text: Annotated[Content | None, Lenient] = None
    mixed: Annotated[Mixed | None, Lenient] = None
    voice: Annotated[Content | None, Lenient] = None

    def plain_text(self) -> str | None:
        """The text of a text, mixed (text items joined) or voice (speech-to-text) message; else None."""
        if self.msgtype == "text" and self.text is not None:
            return strip_leading_mention(self.text.content)
        if self.msgtype == "mixed" and self.mixed is not None:
            texts = [item.text.content for item in self.mixed.msg_item
                     if item is not None and item.msgtype == "text" and item.text is not None]
            return strip_leading_mention("\n".join(texts)) if texts else None
        if self.msgtype == "voice" and self.voice is not None:
            return self.voice.content
        return None


class AibotSender(Payload):
    userid: Required


class AibotKind(Payload):
    """Read first, before anything is required: events and stream refreshes carry no message."""

    msgtype: Loose = None

    @property
    def ignored(self) -> bool:
        return self.msgtype in IGNORED_TYPES


class AibotMessage(AibotBody):
    msgid: Required  # kept at any length: InboundMessage replaces a long one by its digest
    sender: AibotSender = Field(alias="from")
    chattype: Loose = None  # "single" | "group"
    chatid: Loose = None  # groups only
    aibotid: Loose = None
    response_url: Any = None

    @property
    def group_chat(self) -> str | None:
        """The platform's id of the group the message was said in; None for a single chat."""
        return self.chatid if self.chattype == "group" else None


def message_text(payload: Mapping[str, Any]) -> str | None:
    """The text of a decrypted AI bot message (a dict), or None when it has none the bot can read."""
    return AibotBody.model_validate(payload).plain_text()


class AppEnvelope(Payload):
    """<xml><ToUserName/><Encrypt/><AgentID/></xml>"""

    # Stripped by the channel, not here: a blank ciphertext fails its signature (401) as before.
    encrypt: Annotated[str, StringConstraints(min_length=1)] = Field(alias="Encrypt")


class AppMessage(Payload):
    """A decrypted self-built app message: FromUserName, MsgType, Content, MsgId, … (all text)."""

    from_user: Loose = Field(None, alias="FromUserName")
    msg_type: Loose = Field(None, alias="MsgType")
    msg_id: Loose = Field(None, alias="MsgId")
    content: Loose = Field(None, alias="Content")


def xml_fields(element: Any) -> dict[str, str]:
    """The text of each child element of a parsed XML document (the first of a repeated name)."""
    fields: dict[str, str] = {}
    for child in element:
        if isinstance(child.tag, str):
            fields.setdefault(child.tag, child.text or "")
    return fields
