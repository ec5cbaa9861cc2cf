"""`dutybot doctor` and the outgoing webhooks (issue #15 point 4): each subscriber shown as the
service would read it — on (its address, never its secret), off, or the reason `serve` would refuse
to start — and, from the outbox, events given up on and events stuck waiting. On SQLite and
PostgreSQL through the real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from bot.channels.base import Check
from bot.cli_doctor import doctor_checks
from domain.config import Config, WebhookSubscriber
from domain.config.webhooks import target_of
from store import outbox
from store.db import Database
from store.models import OutboxMessage

URL = "https://hooks.example.org/dutybot/events?token=abc"
SECRET = "s3cr3t-" + "x" * 40
ON = {"DUTYBOT_HOOK_CITY_URL": URL, "DUTYBOT_HOOK_CITY_SECRET": SECRET}


@pytest.fixture
async def hooked(config: Config) -> Config:
    database = Database(config.database.url)
    await database.upgrade()
    await database.dispose()
    city = WebhookSubscriber(id="city", url_env="DUTYBOT_HOOK_CITY_URL", secret_env="DUTYBOT_HOOK_CITY_SECRET")
    tasks = WebhookSubscriber(id="tasks", url_env="DUTYBOT_HOOK_TASKS_URL", secret_env="DUTYBOT_HOOK_TASKS_SECRET",
                              events=["item.graded", "item.closed"])
    return config.model_copy(update={"webhooks": [city, tasks]})


def _texts(checks: list[Check]) -> str:
    return "\n".join(("✓ " if c.ok else "✗ ") + c.text for c in checks)


async def _queue(config: Config, rows: list[tuple[str, datetime, str | None]], first: int = 0) -> None:
    """Events for the city subscriber, queued in this order: (status, due time, last error); keys from `first`."""
    database = Database(config.database.url)
    try:
        async with database.transaction() as session:
            await outbox.enqueue_documents(session, [
                {"key": f"webhook:city:test:{n}", "chat_id": target_of("city"), "text": "{}"}
                for n in range(first, first + len(rows))], now=rows[0][1])
            for n, (status, due_at, error) in enumerate(rows, start=first):
                await session.execute(update(OutboxMessage).where(OutboxMessage.key == f"webhook:city:test:{n}")
                                      .values(status=status, due_at=due_at, last_error=error))
    finally:
        await database.dispose()


async def test_a_subscriber_on_shows_its_address_without_secret_or_query_and_one_off_says_so(hooked: Config) -> None:
    checks, _ = await doctor_checks(hooked, ON)
    text = _texts(checks)
    assert ("✓ 对外推送 city 已启用：https://hooks.example.org/dutybot/events"
            "（事件：item.reported、item.graded、item.overdue、item.closed）") in text
    assert "✓ 对外推送 tasks 未启用：环境变量 DUTYBOT_HOOK_TASKS_URL、DUTYBOT_HOOK_TASKS_SECRET 均未设置。" in text
    assert SECRET not in text and "token=abc" not in text


async def test_a_half_configured_subscriber_is_a_failed_check_not_a_crash(hooked: Config) -> None:
    checks, _ = await doctor_checks(hooked, {"DUTYBOT_HOOK_CITY_URL": URL})
    [failed] = [c for c in checks if "对外推送 city" in c.text]
    assert not failed.ok and "缺少签名密钥" in failed.text and "DUTYBOT_HOOK_CITY_SECRET" in failed.text
    assert any(c.text.startswith("数据库可连接") for c in checks)  # the other checks still ran


async def test_events_given_up_on_and_events_stuck_are_failed_checks(hooked: Config) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    await _queue(hooked, [(outbox.FAILED, long_ago, "HTTP 401"), (outbox.FAILED, long_ago, "HTTP 403"),
                          (outbox.PENDING, long_ago, None)])
    checks, _ = await doctor_checks(hooked, ON)
    failed = [c for c in checks if not c.ok]
    texts = [c.text for c in failed]
    assert any(t.startswith("对外推送 city：2 条事件被接收方拒收，已放弃投递（最近一次：HTTP 403）")
               and "DUTYBOT_HOOK_CITY_URL" in t for t in texts), texts
    assert any(t.startswith("对外推送 city：1 条事件等待投递") and "已过 120 分钟" in t for t in texts), texts


async def test_events_queued_a_moment_ago_are_fine(hooked: Config) -> None:
    await _queue(hooked, [(outbox.PENDING, datetime.now(UTC) - timedelta(minutes=1), None)])
    checks, _ = await doctor_checks(hooked, ON)
    assert Check(True, "对外推送 city：1 条事件排队中。") in checks
    assert not [c for c in checks if "对外推送" in c.text and not c.ok]


async def test_refusals_before_a_later_delivery_no_longer_fail_the_check(hooked: Config) -> None:
    """The receiver was mended: an event delivered after the refusals clears them; a refusal after
    that delivery counts again."""
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    await _queue(hooked, [(outbox.FAILED, long_ago, "HTTP 401"), (outbox.FAILED, long_ago, "HTTP 401"),
                          (outbox.SENT, long_ago, None), (outbox.FAILED, long_ago, "HTTP 404")])
    checks, _ = await doctor_checks(hooked, ON)
    [failed] = [c for c in checks if "对外推送 city" in c.text and not c.ok]
    assert failed.text.startswith("对外推送 city：1 条事件被接收方拒收，已放弃投递（最近一次：HTTP 404）")
    await _queue(hooked, [(outbox.SENT, long_ago, None)], first=4)
    checks, _ = await doctor_checks(hooked, ON)
    assert not [c for c in checks if "对外推送" in c.text and not c.ok]
