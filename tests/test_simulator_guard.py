"""Issue #13 point 7: the local simulator channel answers only this machine, and `dutybot serve`
does not run it next to a live platform channel unless told so (--allow-simulator).

The simulator lets anyone who reaches it speak as any configured person, so besides a loopback
peer it wants a `Host` that names this machine (no DNS rebinding: a page on another site whose
name now resolves to 127.0.0.1) and no `Origin` of another site (no cross-site POST from a page
the operator opens). Refusals are 403 with a Chinese `{"error": …}` and are counted.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from bot.channels.local import BAD_HOST, CROSS_SITE
from bot.cli import SIMULATOR_WITH_CHANNELS, CliError, _serve, main
from bot.clock import ManualClock
from domain.config import Config
from tests.conftest import EXAMPLE_CONFIG, Bot, start_bot
from tests.fakes.wecom import FakeWecom, wecom_environ

BODY = {"chat": "wecom_duty", "sender": "li_hua", "text": "帮助"}


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1:8080", "127.0.0.2", "[::1]:8080",
                                  "sim.localhost:8080", "LOCALHOST."])
async def test_loopback_names_are_served(bot: Bot, host: str) -> None:
    response = await bot.client.post("/local/messages", json=BODY, headers={"Host": host})
    assert response.status == 200, await response.text()


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "10.0.0.5:8080",
                                  "localhost.evil.example", "[2001:db8::1]", "::::"])
async def test_other_host_names_are_refused_dns_rebinding(bot: Bot, host: str) -> None:
    for method, path in (("POST", "/local/messages"), ("GET", "/local/messages?chat=wecom_duty"),
                         ("GET", "/local/directory"), ("GET", "/sim")):
        response = await bot.client.request(method, path, json=BODY if method == "POST" else None,
                                            headers={"Host": host})
        assert response.status == 403, (host, path)
        assert await response.json() == {"error": BAD_HOST}
    metrics = await (await bot.client.get("/metrics")).text()
    assert 'dutybot_simulator_refused_total{reason="host"} 4.0' in metrics


@pytest.mark.parametrize("origin", ["http://evil.example", "https://evil.example:8443", "null",
                                    "http://127.0.0.1:1", "http://localhost", "file://", "junk"])
async def test_a_post_from_another_site_is_refused(bot: Bot, origin: str) -> None:
    response = await bot.client.post("/local/messages", json=BODY, headers={"Origin": origin})
    assert response.status == 403
    assert await response.json() == {"error": CROSS_SITE}


async def test_the_simulators_own_page_may_post(bot: Bot) -> None:
    host = f"127.0.0.1:{bot.client.port}"
    response = await bot.client.post("/local/messages", json=BODY, headers={"Host": host, "Origin": f"http://{host}"})
    assert response.status == 200
    response = await bot.client.post("/local/messages", json=BODY,
                                     headers={"Host": "localhost:8080", "Origin": "http://localhost:8080"})
    assert response.status == 200


async def test_opened_to_other_machines_the_origin_is_still_checked(config: Config, clock: ManualClock) -> None:
    opened = config.model_copy(update={"server": config.server.model_copy(update={"simulator_remote": True})})
    client = await start_bot(opened, clock)
    try:
        ok = await client.post("/local/messages", json=BODY,
                               headers={"Host": "duty.example:8080", "Origin": "http://duty.example:8080"})
        assert ok.status == 200
        cross = await client.post("/local/messages", json=BODY,
                                  headers={"Host": "duty.example:8080", "Origin": "http://evil.example"})
        assert cross.status == 403 and await cross.json() == {"error": CROSS_SITE}
    finally:
        await client.close()


# -- dutybot serve ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_serve_refuses_the_simulator_next_to_a_live_channel(config: Config) -> None:
    fake = FakeWecom()
    await fake.start()
    try:
        with pytest.raises(CliError) as refused:
            await _serve(config, "127.0.0.1", free_port(), lambda url: None, wecom_environ(fake),
                         allow_simulator=False)
    finally:
        await fake.close()
    assert str(refused.value) == SIMULATOR_WITH_CHANNELS.format(channels="wecom")


@pytest.mark.parametrize("case", ["allowed", "no-live-channel"])
async def test_serve_starts_when_allowed_or_when_no_channel_is_live(config: Config, case: str) -> None:
    fake = FakeWecom()
    await fake.start()
    started = asyncio.Event()
    environ = wecom_environ(fake) if case == "allowed" else {}
    task = asyncio.create_task(_serve(config, "127.0.0.1", free_port(), lambda url: started.set(), environ,
                                      allow_simulator=case == "allowed"))
    try:
        await asyncio.wait_for(started.wait(), 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.close()


def test_the_command_line_refusal_names_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_env = {"DUTYBOT_WECOM_TOKEN": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
                "DUTYBOT_WECOM_AES_KEY": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
                "DUTYBOT_WECOM_WEBHOOK": "http://127.0.0.1:9/cgi-bin/webhook/send?key=k",
                "DUTYBOT_WECOM_COORD_WEBHOOK": "http://127.0.0.1:9/cgi-bin/webhook/send?key=c"}
    for name, value in fake_env.items():
        monkeypatch.setenv(name, value)
    code = main(["serve", "--config", str(EXAMPLE_CONFIG), "--database", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
                 "--port", str(free_port())])
    assert code == 2
    err = capsys.readouterr().err
    assert "--allow-simulator" in err and "服务未启动" in err and "wecom" in err
