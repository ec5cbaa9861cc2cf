"""wecom.build(): off when unset, refuses to start when half-configured or malformed; doctor lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import create_app
from bot.channels import wecom
from bot.channels.base import Channel, ChannelStartError, Check
from bot.clock import ManualClock
from bot.runtime import Runtime
from domain.config import Config, WecomChannelConfig, load_config
from tests.conftest import EXAMPLE_CONFIG, START
from tests.fakes.wecom import AES_KEY, TOKEN

DUTY_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=11111111-2222-3333-4444-555555555555"
COORD_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=66666666-7777-8888-9999-000000000000"
FULL = {
    "DUTYBOT_WECOM_TOKEN": TOKEN,
    "DUTYBOT_WECOM_AES_KEY": AES_KEY,
    "DUTYBOT_WECOM_WEBHOOK": DUTY_URL,
    "DUTYBOT_WECOM_COORD_WEBHOOK": COORD_URL,
}
CHANNEL_VARS = ["DUTYBOT_WECOM_TOKEN", "DUTYBOT_WECOM_AES_KEY", "DUTYBOT_WECOM_WEBHOOK"]


@pytest.fixture
def example(tmp_path: Path) -> Config:
    return load_config(EXAMPLE_CONFIG).with_database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")


def build(config: Config, environ: dict[str, str]) -> Channel | None:
    runtime = Runtime.build(config, ManualClock(START))
    channel_config = next(c for c in config.channels if isinstance(c, WecomChannelConfig))
    return wecom.build(channel_config, runtime, environ)


def without(*names: str, **changes: str) -> dict[str, str]:
    environ = {k: v for k, v in FULL.items() if k not in names}
    environ.update(changes)
    return environ


def test_all_unset_means_off(example: Config) -> None:
    assert build(example, {}) is None
    assert build(example, {"DUTYBOT_WECOM_COORD_WEBHOOK": COORD_URL, "DUTYBOT_WECOM_TOKEN": " "}) is None


@pytest.mark.parametrize("missing", CHANNEL_VARS)
def test_partly_set_refuses_to_start(example: Config, missing: str) -> None:
    with pytest.raises(ChannelStartError, match=missing):
        build(example, without(missing))


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (AES_KEY[:42], "43 个字母或数字"),
        (AES_KEY + "A", "43 个字母或数字"),
        (AES_KEY[:42] + "/", "43 个字母或数字"),
    ],
)
def test_a_malformed_encoding_aes_key_refuses_to_start(example: Config, key: str, reason: str) -> None:
    with pytest.raises(ChannelStartError) as caught:
        build(example, without(DUTYBOT_WECOM_AES_KEY=key))
    message = str(caught.value)
    assert "DUTYBOT_WECOM_AES_KEY" in message and "EncodingAESKey" in message and reason in message
    assert key not in message


@pytest.mark.parametrize(
    "url",
    [
        "qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=",
        "ftp://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",
        "abc-the-key-only",
        "https://[::1/send?key=abc",
    ],
)
def test_a_malformed_webhook_refuses_to_start(example: Config, url: str) -> None:
    with pytest.raises(ChannelStartError, match="DUTYBOT_WECOM_WEBHOOK") as caught:
        build(example, without(DUTYBOT_WECOM_WEBHOOK=url))
    assert "abc" not in str(caught.value)  # the value (it may hold the key) is not repeated
    with pytest.raises(ChannelStartError, match="DUTYBOT_WECOM_COORD_WEBHOOK"):
        build(example, without(DUTYBOT_WECOM_COORD_WEBHOOK=url))


@pytest.mark.parametrize("token", ["has space", "tab\tin", "中文令牌"])
def test_a_malformed_token_refuses_to_start(example: Config, token: str) -> None:
    with pytest.raises(ChannelStartError, match="DUTYBOT_WECOM_TOKEN"):
        build(example, without(DUTYBOT_WECOM_TOKEN=token))


def test_create_app_refuses_a_half_configured_channel(example: Config) -> None:
    with pytest.raises(ChannelStartError, match="DUTYBOT_WECOM_AES_KEY"):
        create_app(example, clock=ManualClock(START), scheduler=False, environ=without("DUTYBOT_WECOM_AES_KEY"))


def test_a_complete_channel_serves_its_chats(example: Config) -> None:
    channel = build(example, FULL)
    assert channel is not None and channel.id == "wecom"
    senders = channel.senders()
    # The example's ops chat (admins = true) is a WeCom group with its own robot, so that alerts reach a person.
    assert sorted(senders) == ["coordinators", "ops", "wecom_duty"]
    assert {s.channel_id for s in senders.values()} == {"wecom"}
    assert channel.checks() == [
        Check(True, "wecom：Token、EncodingAESKey、群机器人已配置"),
        Check(True, "chat wecom_duty：使用通道群机器人 webhook（DUTYBOT_WECOM_WEBHOOK）"),
        Check(True, "chat coordinators：群机器人 webhook 已配置（DUTYBOT_WECOM_COORD_WEBHOOK）"),
        Check(False, "chat ops：未配置群机器人 webhook（DUTYBOT_WECOM_OPS_WEBHOOK）"),
    ]


def test_doctor_names_a_chat_without_its_webhook(example: Config) -> None:
    channel = build(example, without("DUTYBOT_WECOM_COORD_WEBHOOK"))
    assert channel is not None
    assert Check(False, "chat coordinators：未配置群机器人 webhook（DUTYBOT_WECOM_COORD_WEBHOOK）") in channel.checks()
    text = "\n".join(c.text for c in channel.checks())
    for secret in (TOKEN, AES_KEY, DUTY_URL, "11111111-2222"):
        assert secret not in text


def test_create_app_registers_only_the_channels_own_routes(example: Config) -> None:
    app = create_app(example, clock=ManualClock(START), scheduler=False, environ=FULL)
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert "/callback/wecom/wecom" in paths
    assert not any(p.startswith("/callback/wecom/{") for p in paths)
