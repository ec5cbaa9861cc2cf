"""Issue #14 point 7: the simulator in a real browser — Debian's Chromium driven by Playwright.

On a phone (390×844) the chat takes the whole width and the chat list opens from a button as a
drawer that closes once a chat is picked; history being read is not pulled down by new messages,
which are counted on a marker instead; on a desktop (1280 wide) the list stays beside the chat.
No request of the page fails (the favicon included) and nothing is logged as an error.

Chromium comes from the system (`apt-get install chromium`; `playwright install` cannot download
here). Without /usr/bin/chromium these tests are skipped with the reason shown — except under CI,
where they fail: CI must never go green without having run them. Screenshots are written to
$DUTYBOT_SCREENSHOT_DIR (else the test's temporary directory) as sim-390.png and sim-1280.png.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Response,
    ViewportSize,
    async_playwright,
    expect,
)

from tests.conftest import Bot

CHROMIUM = Path("/usr/bin/chromium")
PHONE = ViewportSize(width=390, height=844)
DESKTOP = ViewportSize(width=1280, height=800)
DUTY = "清河县舆情值班群（企业微信）"
TOWN = "城关镇舆情工作群"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    # The page, not the database, is under test here: SQLite only.
    return f"sqlite+aiosqlite:///{tmp_path / 'dutybot.db'}"


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run the browser tests)")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium))
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("DUTYBOT_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class Sim:
    """The simulator open in a browser tab, with whatever went wrong on the page."""

    page: Page
    problems: list[str] = field(default_factory=list)

    @property
    def log(self) -> Locator:
        return self.page.locator("#log")

    @property
    def marker(self) -> Locator:
        return self.page.locator("#newmsg")

    async def scroll_top(self) -> float:
        top: float = await self.log.evaluate("log => log.scrollTop")
        return top

    async def at_bottom(self) -> bool:
        bottom: bool = await self.log.evaluate("log => log.scrollHeight - log.scrollTop - log.clientHeight < 2")
        return bottom


async def open_sim(browser: Browser, bot: Bot, viewport: ViewportSize) -> Sim:
    page = await browser.new_page(viewport=viewport)
    sim = Sim(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            sim.problems.append(f"console: {message.text}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            sim.problems.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("requestfailed", lambda request: sim.problems.append(f"failed {request.url}"))
    await page.goto(str(bot.client.make_url("/sim")))
    await expect(page.locator("#chatname")).to_have_text(DUTY)
    return sim


async def test_on_a_phone_the_chat_list_opens_from_a_button_and_closes_on_a_pick(
    browser: Browser, bot: Bot, shots: Path
) -> None:
    sim = await open_sim(browser, bot, PHONE)
    page = sim.page
    side, menu = page.locator("aside"), page.locator("#menu")
    await expect(side).to_be_hidden()
    await expect(menu).to_be_visible()
    await expect(menu).to_have_text("群聊")
    await expect(menu).to_have_attribute("aria-expanded", "false")
    chat = await page.locator("main").bounding_box()
    assert chat is not None and chat["width"] >= 370, chat
    # Who is speaking stays in sight while the picker is in the drawer.
    await expect(page.locator(".as")).to_have_text("发言身份：王军切换")
    await expect(page.locator("#input")).to_have_attribute("placeholder", "输入消息")

    await menu.click()
    await expect(side).to_be_visible()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await expect(page.locator("#chats li")).to_have_count(len(bot.config.chats))
    await page.wait_for_function("document.getElementById('side').getBoundingClientRect().left === 0")  # slid in
    await page.screenshot(path=shots / "sim-390-drawer.png")
    await page.locator("#chats li", has_text=TOWN).click()
    await expect(side).to_be_hidden()
    await expect(page.locator("#chatname")).to_have_text(TOWN)
    await expect(menu).to_have_attribute("aria-expanded", "false")

    await menu.click()  # the dimmed chat behind the drawer closes it too, as does Escape
    await expect(side).to_be_visible()
    await page.mouse.click(380, 400)
    await expect(side).to_be_hidden()
    await page.locator("#asswitch").click()
    await expect(side).to_be_visible()
    await expect(page.locator("#person")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(side).to_be_hidden()
    await expect(page.locator("#chatname")).to_have_text(TOWN)
    assert sim.problems == []


async def test_on_a_phone_new_messages_do_not_pull_the_history_down(
    browser: Browser, bot: Bot, shots: Path
) -> None:
    for _ in range(4):
        await bot.say("li_hua", "帮助")
    sim = await open_sim(browser, bot, PHONE)
    messages = sim.log.locator(".msg")
    await expect(messages).to_have_count(8)
    assert await sim.at_bottom()  # a chat opens at its latest message

    await sim.log.evaluate("log => { log.scrollTop = 300; }")  # the officer reads back
    await bot.say("li_hua", "帮助")
    await expect(sim.marker).to_have_text("有2条新消息")
    await expect(messages).to_have_count(10)
    assert await sim.scroll_top() == 300
    await sim.page.screenshot(path=shots / "sim-390.png")

    await sim.marker.click()  # tapping the marker goes down to the new messages
    await expect(sim.marker).to_be_hidden()
    assert await sim.at_bottom()

    await bot.say("li_hua", "帮助")  # at the bottom, new messages keep it in view
    await expect(messages).to_have_count(12)
    assert await sim.at_bottom()
    await expect(sim.marker).to_be_hidden()

    await sim.log.evaluate("log => { log.scrollTop = 0; }")
    await bot.say("li_hua", "帮助")
    await expect(sim.marker).to_have_text("有2条新消息")
    assert await sim.scroll_top() == 0
    await sim.log.evaluate("log => { log.scrollTop = log.scrollHeight; }")  # scrolling down reads them
    await expect(sim.marker).to_be_hidden()
    assert sim.problems == []


async def test_on_a_desktop_the_chat_list_stays_beside_the_chat(browser: Browser, bot: Bot, shots: Path) -> None:
    await bot.say("li_hua", "帮助")
    sim = await open_sim(browser, bot, DESKTOP)
    page = sim.page
    await expect(page.locator("aside")).to_be_visible()
    await expect(page.locator("#menu")).to_be_hidden()
    await expect(page.locator(".as")).to_be_hidden()
    await expect(page.locator("header .sub")).to_have_text("值班群模拟")
    await expect(page.locator("#input")).to_have_attribute("placeholder", "输入消息，Enter 发送，Shift+Enter 换行")
    side = await page.locator("aside").bounding_box()
    assert side is not None and side["x"] == 0 and side["width"] == 260, side
    await page.locator("#chats li", has_text=TOWN).click()
    await expect(page.locator("#chatname")).to_have_text(TOWN)
    await expect(page.locator("aside")).to_be_visible()
    await page.locator("#chats li", has_text=DUTY).click()
    await expect(sim.log.locator(".msg")).to_have_count(2)
    await page.screenshot(path=shots / "sim-1280.png")
    assert sim.problems == []
