"""Builds the configured platform channels. Explicit, no registration by import side effect."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.channels import dingtalk, wecom
from bot.channels.base import Channel
from bot.runtime import Runtime
from domain.config import DingtalkChannelConfig, WecomChannelConfig

log = logging.getLogger(__name__)


def build_channels(runtime: Runtime, environ: Mapping[str, str]) -> tuple[list[Channel], list[str]]:
    """The channels that are on, and one line for each that is off (no secret set).

    Raises ChannelStartError for a channel that is half-configured or has a malformed secret:
    refusing to start is safer than running a channel that cannot verify its callbacks.
    """
    channels: list[Channel] = []
    off: list[str] = []
    for config in runtime.config.channels:
        channel: Channel | None
        if isinstance(config, WecomChannelConfig):
            channel = wecom.build(config, runtime, environ)
            names = [config.token_env, config.aes_key_env, config.webhook_env]
        else:
            assert isinstance(config, DingtalkChannelConfig)
            channel = dingtalk.build(config, runtime, environ)
            names = [config.app_secret_env, config.webhook_env, config.secret_env]
            if config.mode == "stream":
                names.insert(0, config.app_key_env)
        if channel is None:
            off.append(f"通道 {config.id}（{config.platform}）未启用：环境变量 {'、'.join(names)} 均未设置。")
        else:
            channels.append(channel)
    off += runtime.webhooks_off  # outgoing webhooks whose variables are unset: said at start alike
    return channels, off
