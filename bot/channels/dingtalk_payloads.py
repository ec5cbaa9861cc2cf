"""DingTalk payloads as pydantic models (PROTOCOLS.md D.1, D.2).

- RobotPayload: a robot message — the HTTP callback's body and a Stream CALLBACK frame's `data`
  are the same JSON. Strict: msgId, conversationId, msgtype, and the body of a text / richText
  message. Lenient (a wrong type reads as absent): the sender, the robot and corp ids, the
  sessionWebhook and its expiry, atUsers. Unknown fields are ignored.
- GatewayTicket: the Stream gateway's answer to the open-connection request.

RobotMessage is what the channel uses of a robot message, with the sessionWebhook rules applied:
a reply URL without a known lifetime is not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints, ValidationError, model_validator

from bot.channels.dingtalk_sign import EPOCH, from_epoch_ms
from bot.channels.payloads import Loose, Payload, Required, Text, error_fields

# Epoch milliseconds a datetime can hold (year 9999); a larger number is not a time.
MAX_EPOCH_MS = (datetime(9999, 1, 1, tzinfo=EPOCH.tzinfo) - EPOCH) // timedelta(milliseconds=1)


def epoch_ms_value(value: object) -> int | None:
    """Epoch milliseconds from an integer or a string of digits; None for anything that is not a
    time a datetime can hold (1e20, negative numbers, floats, booleans)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_EPOCH_MS else None


EpochMs = Annotated[int | None, BeforeValidator(epoch_ms_value)]


def _objects(value: object) -> list[object]:
    """The JSON objects of a list (anything else in it, or a value that is no list, is skipped)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


class TextBody(Payload):
    content: Text


class RichTextBody(Payload):
    # Parts are pictures ({"downloadCode", "type"}) or text ({"text"}); anything else is skipped.
    rich_text: list[Any] = Field(alias="richText", strict=True)

    def text(self) -> str:
        return "".join(p["text"] for p in self.rich_text if isinstance(p, dict) and isinstance(p.get("text"), str))


class AtUser(Payload):
    dingtalk_id: Loose = Field(None, alias="dingtalkId")
    staff_id: Loose = Field(None, alias="staffId")


class RobotPayload(Payload):
    msg_id: Required = Field(alias="msgId")
    conversation_id: Required = Field(alias="conversationId")
    msgtype: Required
    conversation_type: Loose = Field(None, alias="conversationType")  # "1" single chat, "2" group
    sender_staff_id: Loose = Field(None, alias="senderStaffId")  # the userId, for members of the robot's org
    robot_code: Loose = Field(None, alias="robotCode")  # the app robot the message was sent to
    chatbot_corp_id: Loose = Field(None, alias="chatbotCorpId")  # the robot's organisation
    session_webhook: Loose = Field(None, alias="sessionWebhook")
    session_webhook_expired_time: EpochMs = Field(None, alias="sessionWebhookExpiredTime")
    create_at: EpochMs = Field(None, alias="createAt")
    at_users: Annotated[list[AtUser], BeforeValidator(_objects)] = Field(default_factory=list, alias="atUsers")
    # The body, checked for the message's type by _readable: a picture's `text` field is not read.
    text_body: Any = Field(None, alias="text")
    content: Any = None

    @model_validator(mode="after")
    def _readable(self) -> RobotPayload:
        try:
            self.plain_text()
        except ValidationError as exc:
            body = "text" if self.msgtype == "text" else "content"
            raise ValueError(f"{body}: {error_fields(exc)}") from None
        return self

    def plain_text(self) -> str:
        """text → text.content; richText → its text parts; other types (pictures, files) → "".
        Raises ValueError (a ValidationError while validating) when the body does not match its type."""
        if self.msgtype == "text":
            return TextBody.model_validate(self.text_body).content.strip()
        if self.msgtype == "richText":
            return RichTextBody.model_validate(self.content).text().strip()
        return ""

    def message(self) -> RobotMessage:
        expires = self.session_webhook_expired_time
        session = self.session_webhook if expires is not None else None
        return RobotMessage(
            msg_id=self.msg_id, text=self.plain_text(), conversation_id=self.conversation_id,
            conversation_type=self.conversation_type or "", staff_id=self.sender_staff_id,
            robot_code=self.robot_code, corp_id=self.chatbot_corp_id,
            # A reply URL without a known lifetime is not used.
            session_webhook=session,
            session_expires_at=from_epoch_ms(expires) if session and expires is not None else None,
        )


@dataclass(frozen=True)
class RobotMessage:
    """The fields of a robot message (HTTP callback body or Stream `data`) that the bot uses."""

    msg_id: str
    text: str
    conversation_id: str
    conversation_type: str  # "1" single chat, "2" group
    staff_id: str | None  # senderStaffId: the userId, present for members of the robot's org
    session_webhook: str | None
    session_expires_at: datetime | None
    robot_code: str | None = None  # robotCode: the app robot the message was sent to
    corp_id: str | None = None  # chatbotCorpId: the robot's organisation


def parse_robot_message(data: object) -> RobotMessage | None:
    """A robot message dict → RobotMessage, or None when required fields are missing or mistyped."""
    try:
        return RobotPayload.model_validate(data).message()
    except ValidationError:
        return None


class GatewayTicket(Payload):
    """The answer to POST /v1.0/gateway/connections/open: where to connect, and with what."""

    endpoint: Annotated[str, StringConstraints(strict=True, pattern=r"^wss?://")]
    ticket: Annotated[str, StringConstraints(strict=True)]
