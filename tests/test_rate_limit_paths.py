"""Issue #13 (5): no robot receives more than 20 posts in any 60-second window as the platform
measures it — on every path that reaches a robot, counted at the fake platform.

The paths, mixed in one burst: replies whose reply URL the platform refuses (WeCom response_url
already used, DingTalk sessionWebhook closed) and so go to the robot instead, both through the
real callback path and as queued rows; replies whose reply URL expired; every part of messages
split in several posts; and retries of posts the robot answered with a retryable error. The
fake stamps each post with the bot's ManualClock; the test ticks the clock a second at a time
(skipping idle stretches), as the scheduler would. The margin: the worker counts 60 s plus
[delivery] rate_skew_seconds (2 s), so even a 62-second window never holds more than 20.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.runtime import Runtime
from domain.config import Config
from store import outbox
from store.models import OutboxMessage
from tests.conftest import Bot, start_bot
from tests.fakes.dingtalk import Answer as DingtalkAnswer
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import DUTY_KEY, REPLY_CODE_USED, FakeWecom, running
from tests.replica_support import busiest_window

LIMIT = 20
WINDOW = timedelta(seconds=60)
TICK = timedelta(seconds=1)
REFUSED_VIA_CALLBACK = 8  # replies to real platform messages whose reply URL is refused
REFUSED_QUEUED = 15  # reply rows whose reply URL the platform refuses
EXPIRED = 8  # reply rows whose reply URL has expired
LONG = 6  # notices long enough to be split in several posts
RETRIED = 5  # the first robot posts are answered with a retryable error
SPLIT_PART = re.compile(r"长通知\d+-第(?!000)\d{3}行")  # a later part of a split message starts mid-text


def long_text(n: int, lines: int) -> str:
    return "\n".join(f"长通知{n}-第{k:03d}行：城关镇人民路商户反映占道经营问题，请核实并反馈。" for k in range(lines))


async def enqueue_replies(runtime: Runtime, chat_id: str, now: datetime, urls: Sequence[tuple[str, datetime]],
                          prefix: str) -> None:
    async with runtime.db.transaction() as session:
        for n, (url, expires_at) in enumerate(urls):
            await outbox.enqueue(session, key=f"{prefix}:{n}", chat_id=chat_id, mentions=[], now=now,
                                 text=f"{prefix}答复{n}：已收到，正在核实。", reply_url=url,
                                 reply_url_expires_at=expires_at)


async def enqueue_long(runtime: Runtime, chat_id: str, now: datetime, lines: int) -> None:
    async with runtime.db.transaction() as session:
        for n in range(LONG):
            await outbox.enqueue(session, key=f"long:{n}", chat_id=chat_id, text=long_text(n, lines),
                                 mentions=["zhao_min"], now=now)


async def next_delivery(runtime: Runtime) -> datetime | None:
    """When the outbox next has something to do (the items' own reminders are not this test's)."""
    async with runtime.db.read() as session:
        due = (await session.execute(
            select(func.min(OutboxMessage.due_at)).where(OutboxMessage.status == outbox.PENDING))).scalar_one()
        lease = (await session.execute(
            select(func.min(OutboxMessage.lease_until)).where(OutboxMessage.status == outbox.CLAIMED))).scalar_one()
    moments = [m for m in (due, lease) if m is not None]
    return min(moments) if moments else None


async def drive(clock: ManualClock, runtime: Runtime, limit: timedelta = timedelta(minutes=30)) -> None:
    """Tick every second (skipping ticks with nothing due) until the outbox has nothing left to do."""
    start = clock.now()
    while True:
        await runtime.outbox.drain()
        while await runtime.outbox.run_once():
            pass
        upcoming = await next_delivery(runtime)
        if upcoming is None or upcoming - start > limit:
            return
        clock.advance(max(TICK, TICK * -((clock.now() - upcoming) // TICK)))


async def statuses(runtime: Runtime) -> dict[str, str]:
    async with runtime.db.read() as session:
        return {r.key: r.status for r in (await session.execute(select(OutboxMessage))).scalars()}


def assert_within_budget(times: Sequence[datetime]) -> None:
    assert busiest_window(times, WINDOW) <= LIMIT, busiest_window(times, WINDOW)
    # The margin: not even a window 2 s longer than the platform's holds a 21st post.
    assert busiest_window(times, WINDOW + timedelta(seconds=2)) <= LIMIT


async def test_wecom_robot_gets_at_most_20_a_minute_on_every_path(config: Config, clock: ManualClock) -> None:
    async with running(config, clock) as w:
        fake: FakeWecom = w.fake
        fake.now = clock.now
        runtime = w.bot.runtime
        now = clock.now()
        fake.answer_next(DUTY_KEY, *[-1] * RETRIED)  # "system busy": retried later, through the budget
        await enqueue_long(runtime, "wecom_duty", now, lines=70)  # ~6,000 bytes: three text posts each
        for n in range(REFUSED_VIA_CALLBACK):  # the platform's own path: callback → reply → response_url
            code = f"RC-CB{n}"
            fake.answer_next(code, REPLY_CODE_USED)
            await w.say("ZhaoMin", f"上报 城关镇人民路第{n}号商铺门前积水", response_code=code)
        refused = [f"RC-Q{n}" for n in range(REFUSED_QUEUED)]
        for code in refused:
            fake.answer_next(code, REPLY_CODE_USED)
        await enqueue_replies(runtime, "wecom_duty", now, [(fake.response_url(c), now + timedelta(minutes=30))
                                                           for c in refused], "refused")
        await enqueue_replies(runtime, "wecom_duty", now, [(fake.response_url(f"RC-OLD{n}"), now - TICK)
                                                           for n in range(EXPIRED)], "expired")
        await drive(clock, runtime)

        robot = fake.webhook_posts(DUTY_KEY)
        assert_within_budget([p.received_at for p in robot if p.received_at is not None])
        assert len(robot) > LIMIT  # the burst really was over one window's budget
        assert sum(1 for p in robot if p.answer.errcode == -1) == RETRIED
        # The refused replies reached the robot (alone, or as lines of a digest).
        texts = "\n".join(p.content for p in robot)
        assert all(f"refused答复{n}" in texts for n in range(REFUSED_QUEUED))
        assert all(f"expired答复{n}" in texts for n in range(EXPIRED))
        assert "已受理舆情线索" in texts
        assert len(fake.reply_posts()) == REFUSED_VIA_CALLBACK + REFUSED_QUEUED  # each URL tried once, never twice
        # Split messages went out part by part (a later part starts inside the text).
        assert any(SPLIT_PART.match(p.content) for p in robot)
        assert set((await statuses(runtime)).values()) <= {outbox.SENT, outbox.MERGED}
        assert fake.problems == []


async def test_dingtalk_robot_gets_at_most_20_a_minute_on_every_path(config: Config, clock: ManualClock) -> None:
    async with FakeDingTalk(clock) as fake:
        client = await start_bot(config, clock, fake.environ())
        bot = Bot(client, clock, config)
        runtime = bot.runtime
        try:
            now = clock.now()
            fake.answer("robot", *[DingtalkAnswer(errcode=-1, errmsg="system busy")] * RETRIED)
            await enqueue_long(runtime, "dingtalk_duty", now, lines=280)  # ~24,000 bytes: two posts each
            for n in range(REFUSED_VIA_CALLBACK):
                message = fake.message(f"上报 西岸滨河路第{n}段路灯不亮", msg_id=f"msgRL{n:04d}")
                fake.sessions.clear()  # the session closed before the bot answered: the robot must carry it
                response = await fake.call(client, message)
                assert response.status == 200, await response.text()
            await runtime.outbox.drain()
            gone: Callable[[int], str] = lambda n: f"{fake.base_url}/robot/sendBySession?session=gone{n}"  # noqa: E731
            await enqueue_replies(runtime, "dingtalk_duty", now, [(gone(n), now + timedelta(minutes=30))
                                                                  for n in range(REFUSED_QUEUED)], "refused")
            await enqueue_replies(runtime, "dingtalk_duty", now, [(gone(100 + n), now - TICK)
                                                                  for n in range(EXPIRED)], "expired")
            await drive(clock, runtime)

            robot = fake.posts_of("robot")
            assert_within_budget([p.received_at for p in robot if p.received_at is not None])
            assert len(robot) > LIMIT
            assert sum(1 for p in robot if p.answer.get("errcode") == -1) == RETRIED
            texts = "\n".join(p.text for p in robot)
            assert all(f"refused答复{n}" in texts for n in range(REFUSED_QUEUED))
            assert all(f"expired答复{n}" in texts for n in range(EXPIRED))
            assert "已受理舆情线索" in texts
            sessions = fake.posts_of("session")
            assert len(sessions) == REFUSED_VIA_CALLBACK + REFUSED_QUEUED and not any(p.ok for p in sessions)
            assert any(SPLIT_PART.match(p.text) for p in robot)  # split messages went out part by part
            assert set((await statuses(runtime)).values()) <= {outbox.SENT, outbox.MERGED}
            assert fake.problems == []
        finally:
            await client.close()
