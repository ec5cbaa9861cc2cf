"""Building the DingTalk channel from the environment mapping: off, half-configured, malformed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.channels import dingtalk
from bot.channels.base import ChannelStartError
from bot.channels.dingtalk import DingtalkChannel
from bot.channels.registry import build_channels
from bot.clock import ManualClock
from bot.runtime import Runtime
from domain.config import Config, DingtalkChannelConfig, load_config
from tests.conftest import EXAMPLE_CONFIG, START
from tests.fakes.dingtalk import dingtalk_config

APP_SECRET = "app-secret-Zx81-do-not-log"
WEBHOOK = "https://oapi.dingtalk.com/robot/send?access_token=0123abcd0123abcd"
SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
HTTP_ENV = {
    "DUTYBOT_DINGTALK_APP_SECRET": APP_SECRET,
    "DUTYBOT_DINGTALK_WEBHOOK": WEBHOOK,
    "DUTYBOT_DINGTALK_SECRET": SECRET,
}
STREAM_ENV = HTTP_ENV | {"DUTYBOT_DINGTALK_APP_KEY": "dingappkey0001"}


@pytest.fixture
def example(tmp_path: Path) -> Config:
    return load_config(EXAMPLE_CONFIG).with_database(f"sqlite+aiosqlite:///{tmp_path / 'build.db'}")


@pytest.fixture
def runtime(example: Config) -> Iterator[Runtime]:
    yield Runtime.build(example, ManualClock(START))


def channel_config(config: Config) -> DingtalkChannelConfig:
    [channel] = [c for c in config.channels if isinstance(c, DingtalkChannelConfig)]
    return channel


def build(config: Config, environ: dict[str, str]) -> DingtalkChannel | None:
    runtime = Runtime.build(config, ManualClock(START))
    channel = dingtalk.build(channel_config(config), runtime, environ)
    assert channel is None or isinstance(channel, DingtalkChannel)
    return channel


def test_all_unset_is_off(example: Config) -> None:
    assert build(example, {}) is None
    assert build(dingtalk_config(example, mode="stream"), {}) is None
    assert build(example, {"DUTYBOT_DINGTALK_APP_KEY": "only-used-in-stream-mode"}) is None


@pytest.mark.parametrize("missing", sorted(HTTP_ENV))
def test_half_configured_refuses_to_start(example: Config, missing: str) -> None:
    environ = {k: v for k, v in HTTP_ENV.items() if k != missing}
    with pytest.raises(ChannelStartError, match=missing):
        build(example, environ)


def test_stream_mode_needs_the_app_key(example: Config) -> None:
    with pytest.raises(ChannelStartError, match="DUTYBOT_DINGTALK_APP_KEY"):
        build(dingtalk_config(example, mode="stream"), HTTP_ENV)


def test_a_secret_without_sec_is_refused_without_echoing_it(example: Config) -> None:
    with pytest.raises(ChannelStartError, match="SEC 开头") as caught:
        build(example, HTTP_ENV | {"DUTYBOT_DINGTALK_SECRET": "0123456789abcdef-not-a-sec"})
    assert "DUTYBOT_DINGTALK_SECRET" in str(caught.value) and "0123456789abcdef" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["oapi.example.net/robot/send?access_token=abc", "ftp://oapi.example.net/robot/send?access_token=abc",
     "https://oapi.example.net/robot/send", "https://oapi.example.net/robot/send?access_token=",
     "https:///robot/send?access_token=abc", "https://oapi.example.net/robot/send?access_token=a b"],
)
def test_a_malformed_webhook_is_refused_without_echoing_it(example: Config, url: str) -> None:
    with pytest.raises(ChannelStartError, match="access_token") as caught:
        build(example, HTTP_ENV | {"DUTYBOT_DINGTALK_WEBHOOK": url})
    assert url not in str(caught.value)


def test_a_chat_with_its_own_webhook_variable(example: Config) -> None:
    chats = [c.model_copy(update={"webhook_env": "DUTYBOT_DT_DUTY_WEBHOOK"}) if c.id == "dingtalk_duty" else c
             for c in example.chats]
    config = example.model_copy(update={"chats": chats})
    with pytest.raises(ChannelStartError, match="DUTYBOT_DT_DUTY_WEBHOOK"):
        build(config, HTTP_ENV)
    own = "https://oapi.dingtalk.com/robot/send?access_token=ffff0000"
    channel = build(config, HTTP_ENV | {"DUTYBOT_DT_DUTY_WEBHOOK": own})
    assert channel is not None
    sender = channel.senders()["dingtalk_duty"]
    assert isinstance(sender, dingtalk.DingtalkSender) and sender.webhook == own
    assert any("本群的自定义机器人（DUTYBOT_DT_DUTY_WEBHOOK）" in c.text for c in channel.checks())


def test_senders_and_checks(example: Config) -> None:
    channel = build(example, HTTP_ENV)
    assert channel is not None
    senders = channel.senders()
    assert list(senders) == ["dingtalk_duty"] and senders["dingtalk_duty"].channel_id == "dingtalk"
    lines = [(c.ok, c.text) for c in channel.checks()]
    assert lines == [
        (True, "dingtalk：AppSecret、自定义机器人、加签密钥已配置"
               "（HTTP 回调模式，回调地址 /callback/dingtalk/dingtalk）"),
        (True, "dingtalk：群“清河县舆情值班群（钉钉）”使用通道的自定义机器人（DUTYBOT_DINGTALK_WEBHOOK）"),
    ]
    text = "\n".join(t for _, t in lines)
    assert all(secret not in text for secret in (APP_SECRET, SECRET, "0123abcd0123abcd"))


def test_a_chat_without_conversation_id_is_flagged(example: Config) -> None:
    chats = [c.model_copy(update={"platform_chat_id": None}) if c.id == "dingtalk_duty" else c for c in example.chats]
    channel = build(example.model_copy(update={"chats": chats}), HTTP_ENV)
    assert channel is not None
    assert [c.text for c in channel.checks() if not c.ok] == [
        "dingtalk：群“清河县舆情值班群（钉钉）”未设置 platform_chat_id（钉钉 conversationId），无法识别该群发来的消息"
    ]


def test_the_callback_route_is_registered_in_http_mode_only(example: Config) -> None:
    http = build(example, HTTP_ENV)
    stream = build(dingtalk_config(example, mode="stream"), STREAM_ENV)
    assert http is not None and stream is not None
    app_http, app_stream = web.Application(), web.Application()
    http.setup_routes(app_http)
    stream.setup_routes(app_stream)
    assert [r.resource.canonical for r in app_http.router.routes() if r.resource] == ["/callback/dingtalk/dingtalk"]
    assert list(app_stream.router.routes()) == []
    assert "Stream 模式" in stream.checks()[0].text


def test_stream_mode_without_the_sdk_tells_how_to_install_it(
    example: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dingtalk_stream", None)  # import now raises ImportError
    with pytest.raises(ChannelStartError, match=r"pip install 'dutybot\[dingtalk-stream\]'"):
        build(dingtalk_config(example, mode="stream"), STREAM_ENV)
    assert build(example, HTTP_ENV) is not None  # HTTP mode does not need it


def test_a_malformed_gateway_endpoint_is_refused(example: Config) -> None:
    with pytest.raises(ChannelStartError, match="DINGTALK_OPENAPI_ENDPOINT"):
        build(dingtalk_config(example, mode="stream"), STREAM_ENV | {"DINGTALK_OPENAPI_ENDPOINT": "api.dingtalk"})


def test_the_registry_builds_it(runtime: Runtime) -> None:
    channels, off = build_channels(runtime, HTTP_ENV)
    assert [c.id for c in channels] == ["dingtalk"]
    assert not any("dingtalk" in line for line in off)
    channels, off = build_channels(runtime, {})
    assert channels == [] and any("通道 dingtalk（dingtalk）未启用" in line for line in off)
