"""The seam between the outbox and the platforms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.config import ChatConfig
from bot.messages import OutboundMessage


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    retryable: bool = False
    detail: str = ""


class Sender(Protocol):
    """Posts a message in a chat on one platform. Success means the platform said errcode 0."""

    async def send(self, chat: ChatConfig, message: OutboundMessage) -> DeliveryResult: ...
