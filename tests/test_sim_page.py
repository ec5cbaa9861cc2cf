"""Issue #14 points 6 and 7 (server side): GET / says what the service is instead of a bare 404,
the favicon is served, and the simulator page carries what a phone needs (the chat-list button,
the new-messages marker) without fetching anything from elsewhere. The browser behaviour itself
is tested in tests/test_sim_browser.py.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.channels.local import BAD_HOST
from bot.cli import _serve
from bot.clock import ManualClock
from domain.config import Config
from tests.conftest import Bot
from tests.fakes.wecom import FakeWecom, wecom_environ
from tests.test_simulator_guard import free_port

INTRO = ("政务舆情值班群的聊天机器人：在企业微信、钉钉值班群中登记网上舆情线索，"
         "按等级计算签收与回应时限并提醒相关负责人员，跟踪转办至办结的全过程，全程留痕备查。")
SIM_ENTRY = ('<li><a href="/sim"><b>值班群模拟</b><code>/sim</code>'
             "<span>在浏览器中模拟值班群对话，仅供本机演示与培训。</span></a></li>")
HEALTH_ENTRY = ('<li><a href="/healthz"><b>健康检查</b><code>/healthz</code>'
                "<span>数据库、定时任务与发送队列的运行状态（JSON）。</span></a></li>")
METRICS_ENTRY = ('<li><a href="/metrics"><b>运行指标</b><code>/metrics</code>'
                 "<span>Prometheus 格式的监控指标。</span></a></li>")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    # The pages, not the database, are under test here: SQLite only.
    return f"sqlite+aiosqlite:///{tmp_path / 'dutybot.db'}"


def entries(page: str) -> list[str]:
    """The home page's list of pages, one `<li>` each."""
    found = re.search(r'<ul id="pages">\n(.*?)\n</ul>', page, re.S)
    assert found is not None, page
    return found.group(1).split("\n")


def named(identifier: str, page: str) -> bool:
    """Whether an id stands in the page as a word of its own ("health" is not in "/healthz")."""
    return re.search(rf"\b{re.escape(identifier)}\b", page) is not None


async def start(config: Config, clock: ManualClock, *, simulator: bool,
                environ: dict[str, str] | None = None) -> TestClient[web.Request, web.Application]:
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(
        create_app(config, clock=clock, scheduler=False, environ=environ or {}, simulator=simulator)))
    await client.start_server()
    return client


# -- GET / --------------------------------------------------------------------------------------------------


async def test_the_home_page_says_what_the_service_is_and_links_its_pages(bot: Bot) -> None:
    response = await bot.client.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = await response.text()
    assert "<title>舆情值班助手</title>" in page
    assert "<h1>舆情值班助手</h1>" in page
    assert f"<p>{INTRO}</p>" in page
    assert "<p>值班人员在值班群中发送“帮助”，即可查看全部指令。</p>" in page
    assert "<h2>本服务提供的页面</h2>" in page
    assert entries(page) == [SIM_ENTRY, HEALTH_ENTRY, METRICS_ENTRY]
    assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in page
    # Static text only: no script may run on it, and it is not framed by another site.
    assert "<script" not in page
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none';")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    head = await bot.client.head("/")
    assert head.status == 200


async def test_without_the_simulator_the_home_page_does_not_link_it(config: Config, clock: ManualClock) -> None:
    client = await start(config, clock, simulator=False)
    try:
        page = await (await client.get("/")).text()
        assert entries(page) == [HEALTH_ENTRY, METRICS_ENTRY]
        assert "/sim" not in page
        assert (await client.get("/sim")).status == 404
        assert (await client.get("/favicon.svg")).status == 200
    finally:
        await client.close()


async def test_a_visitor_the_simulator_refuses_is_not_sent_to_it(bot: Bot) -> None:
    # A page whose name was rebound to 127.0.0.1 may read the home page, but is neither pointed to
    # the simulator nor let into it: the guard still holds for /sim.
    response = await bot.client.get("/", headers={"Host": "evil.example:8080"})
    assert response.status == 200
    assert entries(await response.text()) == [HEALTH_ENTRY, METRICS_ENTRY]
    refused = await bot.client.get("/sim", headers={"Host": "evil.example:8080"})
    assert refused.status == 403 and await refused.json() == {"error": BAD_HOST}
    local = await bot.client.get("/", headers={"Host": "localhost:8080"})
    assert entries(await local.text()) == [SIM_ENTRY, HEALTH_ENTRY, METRICS_ENTRY]


@pytest.mark.parametrize("command", ["serve", "demo"])
async def test_serve_and_demo_answer_the_home_page(config: Config, command: str) -> None:
    # `dutybot serve` with the simulator off in its config; `dutybot demo` always has it on.
    served = config.model_copy(update={"server": config.server.model_copy(update={"simulator": False})})
    started: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(_serve(served, "127.0.0.1", free_port(), started.put_nowait, {},
                                      simulator=True if command == "demo" else None))
    try:
        url = await asyncio.wait_for(started.get(), 30)
        async with aiohttp.ClientSession() as session, session.get(f"{url}/") as response:
            assert response.status == 200
            page = await response.text()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    expected = [SIM_ENTRY, HEALTH_ENTRY, METRICS_ENTRY] if command == "demo" else [HEALTH_ENTRY, METRICS_ENTRY]
    assert entries(page) == expected


async def test_the_home_page_reveals_no_configuration(config: Config, clock: ManualClock) -> None:
    fake = FakeWecom()
    await fake.start()
    environ = wecom_environ(fake)
    client = await start(config, clock, simulator=False, environ=environ)
    try:
        page = await (await client.get("/")).text()
    finally:
        await client.close()
        await fake.close()
    assert all(value not in page for value in environ.values())
    assert config.database.url not in page and "sqlite" not in page
    assert all(person.name not in page for person in config.people)
    assert all(unit.name not in page and not named(unit.id, page) for unit in config.units)
    assert all(chat.name not in page and not named(chat.id, page) for chat in config.chats)
    assert "wecom" not in page.lower()


# -- favicon ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/favicon.svg", "/favicon.ico"])
async def test_the_favicon_is_served(bot: Bot, path: str) -> None:
    response = await bot.client.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/svg+xml"
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    body = await response.text()
    assert body.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and "<script" not in body


# -- the simulator page -------------------------------------------------------------------------------------


async def test_the_simulator_page_is_ready_for_a_phone_and_self_contained(bot: Bot) -> None:
    response = await bot.client.get("/sim")
    assert response.status == 200
    page = await response.text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">' in page
    assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in page
    # The chat list behind a button, which says what it opens.
    assert re.search(r'<button class="menu" id="menu" type="button" aria-controls="side" aria-expanded="false" '
                     r'title="群聊列表与发言身份">.*?<span>群聊</span>\s*</button>', page, re.S)
    assert '<aside id="side">' in page
    assert '<button id="sideclose" type="button" title="关闭" aria-label="关闭">×</button>' in page
    assert ('<div class="as">发言身份：<b id="asname"></b><button id="asswitch" type="button">切换</button></div>'
            in page)
    # The marker for messages that arrived below the history being read.
    assert '<button class="newmsg" id="newmsg" type="button" hidden></button>' in page
    assert '"有" + n + "条新消息"' in page
    # Nothing fetched from another site: intranets have no internet.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
