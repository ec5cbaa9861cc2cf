"""Outgoing webhooks: other systems subscribe to items' events (item.reported, item.graded,
item.overdue, item.closed), posted to them as signed JSON through the outbox.

The URL and the signing secret are read from environment variables, never from the file: a
webhook URL often carries its own access token. An event goes to the outbox addressed to
`target_of(subscriber id)`, a name no chat can have (chat ids never contain a colon).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from domain.config.base import EnvName, Ident, _Model

EventType = Literal["item.reported", "item.graded", "item.overdue", "item.closed"]
EVENT_TYPES: tuple[EventType, ...] = ("item.reported", "item.graded", "item.overdue", "item.closed")
TARGET_PREFIX = "webhook:"
# outbox.chat_id holds 64 characters, the prefix included.
SUBSCRIBER_ID_MAX = 64 - len(TARGET_PREFIX)


def target_of(subscriber_id: str) -> str:
    """The outbox address of a subscriber's deliveries."""
    return TARGET_PREFIX + subscriber_id


def is_target(chat_id: str) -> bool:
    return chat_id.startswith(TARGET_PREFIX)


class WebhookSubscriber(_Model):
    """One system that receives events. It is on when both variables are set; with neither set it
    is off (and said so at start); with only one set the service refuses to start (fail closed:
    events are never posted unsigned)."""

    id: Annotated[Ident, Field(max_length=SUBSCRIBER_ID_MAX)]
    url_env: EnvName
    secret_env: EnvName
    events: list[EventType] = Field(default_factory=lambda: list(EVENT_TYPES), min_length=1)
    # 涉密 items: false sends only the authorised summary (as the intake API does without
    # classified:read); true sends the whole item to a system cleared for it (001 第十七条).
    classified: bool = False
    # Only items with one of these units (or a unit below one of them) among their lead and
    # co-units; absent: every item.
    units: list[str] | None = Field(default=None, min_length=1)

    @field_validator("events")
    @classmethod
    def _each_once(cls, value: list[EventType]) -> list[EventType]:
        repeated = sorted({event for event in value if value.count(event) > 1})
        if repeated:
            raise ValueError(f"事件“{'、'.join(repeated)}”重复")
        return value

    @model_validator(mode="after")
    def _two_variables(self) -> WebhookSubscriber:
        if self.url_env == self.secret_env:
            raise ValueError("url_env 与 secret_env 不能是同一个环境变量（地址和签名密钥须分别设置）")
        return self

    def wants(self, event: str) -> bool:
        return event in self.events
