"""Placeholder while the wecom channel is written; replaced by the real module."""

from __future__ import annotations

from collections.abc import Mapping

from bot.channels.base import Channel
from bot.config import ChannelConfig
from bot.runtime import Runtime


def build(config: ChannelConfig, runtime: Runtime, environ: Mapping[str, str]) -> Channel | None:
    return None
