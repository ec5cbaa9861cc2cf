"""The seam between the runtime and the platforms.

A channel is built from its config section and the process environment (secrets are read from
the variables the config names, never from the file). It registers its callback routes, gives
the outbox one Sender per chat it serves, and reports its health for `dutybot doctor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from domain.config import ChatConfig
from domain.messages import OutboundMessage


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    retryable: bool = False
    # A configuration problem (revoked webhook key, wrong signing secret): retrying will not help;
    # it is recorded, shown by `dutybot doctor` and reported to the admins' chat.
    config_error: bool = False
    detail: str = ""  # the platform's answer (errcode/errmsg) or the failure, never a secret


class Sender(Protocol):
    """Posts a message in one chat. Success means the platform answered errcode 0."""

    channel_id: str

    async def send(self, chat: ChatConfig, message: OutboundMessage) -> DeliveryResult: ...


@dataclass(frozen=True)
class Check:
    """One line of `dutybot doctor`."""

    ok: bool
    text: str


class Channel(Protocol):
    id: str

    def setup_routes(self, app: web.Application) -> None: ...

    def senders(self) -> Mapping[str, Sender]:
        """chat id → the sender posting in that chat."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def checks(self) -> list[Check]: ...


class ChannelStartError(Exception):
    """A channel is configured but cannot start safely (a secret missing or malformed)."""


def read_secrets(channel_id: str, names: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str] | None:
    """Read a channel's secrets: all of them, or None when none is set (the channel is off).

    Some but not all set is an error: a half-configured channel must not start, it would fail
    open or silently drop messages.
    """
    values = {key: environ.get(env, "").strip() for key, env in names.items()}
    present = {key for key, value in values.items() if value}
    if not present:
        return None
    missing = [names[key] for key in names if key not in present]
    if missing:
        raise ChannelStartError(
            f"通道 {channel_id} 缺少环境变量：{'、'.join(missing)}。请全部设置，或全部取消以关闭该通道。"
        )
    return values


LOG_CLIP = 80  # platform-supplied values in log lines are cut to this many characters


def clip(value: object) -> str:
    """A platform-supplied value (an id, a chat name) for a log line: short, whatever its type or
    length — a signed callback may carry 60 KiB in any field."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= LOG_CLIP else text[: LOG_CLIP - 1] + "…"
