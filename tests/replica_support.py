"""Helpers for the reliability tests (tests/test_reliability*.py).

- `ChaosRobot`: one loopback server playing many group robots at once — DingTalk custom robots
  (`/robot/send`, access_token + 加签 checked per robot) and WeCom group robots
  (`/cgi-bin/webhook/send?key=`). It enforces 20 posts per robot in any 60 seconds on the
  *injected* clock, the platforms' body limits, and injects faults from a seeded RNG: HTTP 500, a
  stall past the client timeout *without accepting*, HTTP 200 with the rate-limit errcode, and
  "accepted, then the answer was lost" (a stall or a dropped connection after recording). Every
  request is kept as a `Received`; only `accepted` ones count as delivered. Webhook URLs may carry
  `replica=<name>` so that the robot knows which process posted (the kill -9 test).
- `reliability_config`: the example config plus N chats with a robot of their own each.
- `seed_reminders`: items whose grade clock has exactly one reminder point (50 %) at a chosen time.
- accounting: which item numbers the robots accepted, and how often (digests included).
- `next_activity`: when a tick next has something to do (idle ticks are skipped by the tests).
- `write_config_file`: the same extra chats as TOML, for real `dutybot serve` processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from sqlalchemy import func, select

from domain.config import ChatConfig, Config, DingtalkChannelConfig, WecomChannelConfig
from domain.vocab import FINAL_STATUSES, ItemStatus, Platform
from store import outbox
from store.db import Database
from store.models import Counter as CounterRow
from store.models import Item, OutboxMessage
from tests.fakes.dingtalk import dingtalk_sign
from tests.fakes.wecom import AES_KEY, TOKEN

WINDOW = timedelta(seconds=60)
LIMIT = 20
DINGTALK_MAX_BODY = 20_000
WECOM_TEXT_LIMIT = 2048
WECOM_MARKDOWN_LIMIT = 4096
HOUR_MS = 3_600_000
# The grade clock of a seeded item: 24 h, so that its 50 % reminder comes 12 h after the report
# and the next point (80 %) 7.2 h later — far outside any test's window.
GRADE_SPAN = timedelta(hours=24)
# One duty officer per extra chat, and reporters that vary per item, so that mentions differ.
OFFICERS = ["sun_li", "zhao_min", "feng_xue", "jiang_bo", "yang_fan", "you_jia", "zhang_jing"]
REPORTERS = ["liu_yang", "xu_ming", "wang_jun", "li_hua", "chen_gang", "zhou_tao", "wu_fang", "zheng_qiang",
             "chu_yi", "wei_na", "shen_hao", "han_mei", "zhu_lin", "qin_lei", "shi_wei"]
# Summaries of varied length (the longest are cut at 60 characters by the reminder text).
SUMMARIES = [
    "城关镇人民路商户反映占道经营整治问题",
    "网传东风乡学校食堂食材过期，家长在群内转发视频，要求教育部门说明情况并公开检测结果和处理意见",
    "西岸滨河路路灯不亮",
    "有网民在短视频平台发布县医院急诊候诊时间过长的视频，评论区出现大量负面留言，部分留言称医护人员态度冷漠，点赞数已过万并被多个本地自媒体转载",
]
# The first line of a reminder (alone, or as a line of a digest) names its item.
REMINDER_NUMBER = re.compile(r"【(?:提醒|超时[^】]*)】(?:第\d+次 )?#(\d+)")


# -- config ------------------------------------------------------------------------------------------------


def chat_ids(robots: int) -> list[str]:
    return [f"rel{i:02d}" for i in range(robots)]


def reliability_config(base: Config, *, platform: str = "dingtalk", robots: int = 10, **delivery: Any) -> Config:
    """The example config plus `robots` chats on `platform`, each with a robot of its own
    (webhook_env, and secret_env on DingTalk), bound to that platform's channel."""
    kind = Platform(platform)
    extra = [
        ChatConfig(
            id=chat_id, platform=kind, name=f"可靠性测试群{i:02d}", unit="gov_office",
            platform_chat_id=f"rel-{platform}-{i:02d}", webhook_env=f"DUTYBOT_REL{i:02d}_WEBHOOK",
            secret_env=f"DUTYBOT_REL{i:02d}_SECRET" if kind is Platform.DINGTALK else None,
            duty_officers=[OFFICERS[i % len(OFFICERS)]], duty_leaders=["li_hua"],
        )
        for i, chat_id in enumerate(chat_ids(robots))
    ]
    channel_type = DingtalkChannelConfig if kind is Platform.DINGTALK else WecomChannelConfig
    channels = [
        c.model_copy(update={"chats": [*c.chats, *(chat.id for chat in extra)]}) if isinstance(c, channel_type) else c
        for c in base.channels
    ]
    return base.model_copy(update={
        "chats": [*base.chats, *extra], "channels": channels,
        "delivery": base.delivery.model_copy(update=delivery),
    })


def write_config_file(path: Path, example: Path, *, robots: int, delivery: dict[str, float | int]) -> Path:
    """The example TOML with `robots` DingTalk chats added and [delivery] changed, for real processes."""
    text = example.read_text(encoding="utf-8")
    # As production runs: `serve` refuses the simulator next to live platform channels.
    text, count = re.subn(r"(?m)^simulator = true$", "simulator = false", text)
    assert count == 1
    for name, value in delivery.items():
        text, count = re.subn(rf"(?m)^{name} = .*$", f"{name} = {value}", text)
        assert count == 1, name
    ids = chat_ids(robots)
    listed = ", ".join(f'"{c}"' for c in ids)
    text, count = re.subn(r'(?m)^chats = \["dingtalk_duty"\]$', f'chats = ["dingtalk_duty", {listed}]', text)
    assert count == 1
    blocks = [
        f'\n[[chats]]\nid = "{chat_id}"\nplatform = "dingtalk"\nname = "可靠性测试群{i:02d}"\nunit = "gov_office"\n'
        f'platform_chat_id = "rel-dingtalk-{i:02d}"\nwebhook_env = "DUTYBOT_REL{i:02d}_WEBHOOK"\n'
        f'secret_env = "DUTYBOT_REL{i:02d}_SECRET"\nduty_officers = ["{OFFICERS[i % len(OFFICERS)]}"]\n'
        f'duty_leaders = ["li_hua"]\n'
        for i, chat_id in enumerate(ids)
    ]
    path.write_text(text + "".join(blocks), encoding="utf-8")
    return path


# -- the chaos robot server ------------------------------------------------------------------------------------


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    HTTP_500 = "http_500"
    STALL = "stall"  # no answer until the client gives up; nothing accepted
    THROTTLED = "throttled"  # HTTP 200 with the platform's rate-limit errcode (injected)
    LOST_STALL = "lost_stall"  # accepted, then no answer until the client gives up
    LOST_DROP = "lost_drop"  # accepted, then the connection is dropped without an answer
    # Accepted, but the client had already given up (not injected: a machine too slow for the
    # client timeout). Detected when the connection is gone by the time the answer is ready.
    LOST_LATE = "lost_late"
    OVER_LIMIT = "over_limit"  # the robot's own budget (20 in 60 s) was exceeded: refused
    REJECTED = "rejected"  # bad token, signature or body


LOST = frozenset({Outcome.LOST_STALL, Outcome.LOST_DROP, Outcome.LOST_LATE})
ACCEPTED = frozenset({Outcome.ACCEPTED, *LOST})


@dataclass(frozen=True)
class Faults:
    """Probabilities of each injected fault per request (the rest is accepted)."""

    http_500: float = 0.0
    stall: float = 0.0
    throttled: float = 0.0
    lost_stall: float = 0.0
    lost_drop: float = 0.0

    def pick(self, roll: float) -> Outcome:
        edge = 0.0
        for outcome, chance in ((Outcome.HTTP_500, self.http_500), (Outcome.STALL, self.stall),
                                (Outcome.THROTTLED, self.throttled), (Outcome.LOST_STALL, self.lost_stall),
                                (Outcome.LOST_DROP, self.lost_drop)):
            edge += chance
            if roll < edge:
                return outcome
        return Outcome.ACCEPTED


@dataclass
class Received:
    """One request that reached a robot, and what the robot did with it."""

    seq: int
    platform: str
    robot: str  # the env name of the robot's webhook
    at: datetime  # the injected clock when it arrived
    replica: str | None  # the `replica` query parameter, when the test tags replicas
    text: str
    mentions: tuple[str, ...]  # DingTalk atUserIds + atMobiles / WeCom mentioned_list + mentioned_mobile_list
    outcome: Outcome
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.outcome in ACCEPTED

    @property
    def numbers(self) -> list[int]:
        return reminder_numbers(self.text)


@dataclass(frozen=True)
class Robot:
    platform: str
    env: str  # the variable holding its webhook URL
    secret_env: str | None
    token: str
    secret: str


class ChaosRobot:
    def __init__(
        self, now: Callable[[], datetime], *, seed: int = 0, faults: Faults = Faults(), limit: int | None = LIMIT,
        window: timedelta = WINDOW, hold: float = 0.0,
    ) -> None:
        self.now = now
        self.seed = seed
        self.faults = faults
        self.limit = limit
        self.window = window
        self.hold = hold  # seconds an accepted post waits before its answer (to catch it in flight)
        self.received: list[Received] = []
        self.problems: list[str] = []
        self.script: deque[Outcome] = deque()  # outcomes for the next requests, before the RNG
        self.in_flight: dict[int, Received] = {}
        self._robots: dict[tuple[str, str], Robot] = {}
        self._arrivals: dict[str, deque[datetime]] = defaultdict(deque)
        self._tries: Counter[tuple[str, str]] = Counter()
        self._arrived = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> ChaosRobot:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/robot/send", self._dingtalk)
        app.router.add_post("/cgi-bin/webhook/send", self._wecom)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- robots and the environment that points the bot at them ---------------------------------------------------

    def robot(self, platform: str, env: str, secret_env: str | None = None) -> Robot:
        digest = hashlib.sha256(f"{platform}:{env}".encode()).hexdigest()
        robot = Robot(platform, env, secret_env, token=f"tok{digest[:40]}", secret=f"SEC{digest[20:60]}")
        self._robots[(platform, robot.token)] = robot
        return robot

    def url(self, robot: Robot, replica: str | None = None) -> str:
        base = f"http://127.0.0.1:{self.port}"
        tag = f"&replica={replica}" if replica else ""
        if robot.platform == "dingtalk":
            return f"{base}/robot/send?access_token={robot.token}{tag}"
        return f"{base}/cgi-bin/webhook/send?key={robot.token}{tag}"

    def environ(self, config: Config, replica: str | None = None) -> dict[str, str]:
        """Variables for every channel of the config and every chat with a robot of its own."""
        env: dict[str, str] = {}
        for channel in config.channels:
            if isinstance(channel, DingtalkChannelConfig):
                robot = self.robot("dingtalk", channel.webhook_env, channel.secret_env)
                env |= {channel.app_secret_env: "chaos-app-secret", channel.webhook_env: self.url(robot, replica),
                        channel.secret_env: robot.secret}
            else:
                robot = self.robot("wecom", channel.webhook_env)
                env |= {channel.token_env: TOKEN, channel.aes_key_env: AES_KEY,
                        channel.webhook_env: self.url(robot, replica)}
            for chat in config.chats:
                if chat.id in channel.chats and chat.webhook_env:
                    own = self.robot(channel.platform, chat.webhook_env, chat.secret_env)
                    env[chat.webhook_env] = self.url(own, replica)
                    if chat.secret_env:
                        env[chat.secret_env] = own.secret
        return env

    # -- what arrived ------------------------------------------------------------------------------------------

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if r.accepted]

    def outcomes(self) -> Counter[Outcome]:
        return Counter(r.outcome for r in self.received)

    async def wait_in_flight(self, replica: str, within: float) -> Received:
        """Wait (wall time) until an accepted post from `replica` is held before its answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for post in self.in_flight.values():
                if post.replica == replica:
                    return post
            self._arrived.clear()
            await asyncio.wait_for(self._arrived.wait(), max(0.0, deadline - loop.time()))

    # -- the two platforms ------------------------------------------------------------------------------------

    async def _dingtalk(self, request: web.Request) -> web.StreamResponse:
        at = self.now()
        raw = await request.read()
        params = {k: v[0] for k, v in parse_qs(request.query_string).items()}
        robot = self._robots.get(("dingtalk", params.get("access_token", "")))
        if robot is None:
            return self._refuse("dingtalk", "?", at, params, "", 300001, "token is not exist")
        stamp, signature = params.get("timestamp", ""), params.get("sign", "")
        if not stamp.isdigit() or abs(int(stamp) - round(at.timestamp() * 1000)) > HOUR_MS:
            return self._refuse("dingtalk", robot.env, at, params, "", 310000, "invalid timestamp")
        if signature != dingtalk_sign(stamp, robot.secret):
            return self._refuse("dingtalk", robot.env, at, params, "", 310000, "sign not match")
        body = _json_object(raw)
        text = str(((body or {}).get("text") or {}).get("content", "")) if body else ""
        if body is not None and body.get("msgtype") == "markdown":
            text = str((body.get("markdown") or {}).get("text", ""))
        if len(raw) > DINGTALK_MAX_BODY or body is None or not text:
            self.problems.append(f"dingtalk {robot.env}: body of {len(raw)} bytes refused")
            return self._refuse("dingtalk", robot.env, at, params, text, 460101, "body 大小不合法")
        mention = body.get("at") or {}
        mentions = tuple(mention.get("atUserIds", [])) + tuple(mention.get("atMobiles", []))
        for who in mentions:
            if f"@{who}" not in text:
                self.problems.append(f"dingtalk {robot.env}: {who} in at but not @-named in the text")
        return await self._handle(request, robot, at, params, raw, text, mentions, ok={"errcode": 0, "errmsg": "ok"},
                                  throttled={"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})

    async def _wecom(self, request: web.Request) -> web.StreamResponse:
        at = self.now()
        raw = await request.read()
        params = {k: v[0] for k, v in parse_qs(request.query_string).items()}
        robot = self._robots.get(("wecom", params.get("key", "")))
        if robot is None:
            return self._refuse("wecom", "?", at, params, "", 93000, "invalid webhook url")
        body = _json_object(raw) or {}
        kind = str(body.get("msgtype"))
        part = body.get(kind) if isinstance(body.get(kind), dict) else {}
        text = str(part.get("content", ""))
        limit = WECOM_TEXT_LIMIT if kind == "text" else WECOM_MARKDOWN_LIMIT
        if kind not in ("text", "markdown") or not text.strip() or len(text.encode()) > limit:
            self.problems.append(f"wecom {robot.env}: {kind} of {len(text.encode())} bytes refused")
            return self._refuse("wecom", robot.env, at, params, text, 40058, "content exceed max length")
        mentions = tuple(part.get("mentioned_list", [])) + tuple(part.get("mentioned_mobile_list", []))
        mentions += tuple(re.findall(r"<@([^>]+)>", text))
        return await self._handle(request, robot, at, params, raw, text, mentions, ok={"errcode": 0, "errmsg": "ok"},
                                  throttled={"errcode": 45009, "errmsg": "api freq out of limit"})

    def _refuse(
        self, platform: str, env: str, at: datetime, params: dict[str, str], text: str, code: int, message: str
    ) -> web.Response:
        self._record(platform, env, at, params, text, (), Outcome.REJECTED, f"errcode {code}")
        self.problems.append(f"{platform} {env}: refused with {code} {message}")
        return web.json_response({"errcode": code, "errmsg": message})

    def _record(
        self, platform: str, env: str, at: datetime, params: dict[str, str], text: str, mentions: tuple[str, ...],
        outcome: Outcome, detail: str = "",
    ) -> Received:
        post = Received(len(self.received), platform, env, at, params.get("replica"), text, mentions, outcome, detail)
        self.received.append(post)
        return post

    def _decide(self, robot: Robot, raw: bytes) -> Outcome:
        """Seeded per (robot, body, how many times this body came): the same run of the bot meets the
        same faults whatever order concurrent workers happen to post in."""
        if self.script:
            return self.script.popleft()
        body = hashlib.sha256(raw).hexdigest()
        self._tries[(robot.env, body)] += 1
        roll = random.Random(f"{self.seed}|{robot.env}|{body}|{self._tries[(robot.env, body)]}").random()
        return self.faults.pick(roll)

    def _over_budget(self, robot: Robot, at: datetime) -> bool:
        """Every request counts, failed ones included (as on the platforms)."""
        arrivals = self._arrivals[robot.env]
        while arrivals and arrivals[0] <= at - self.window:
            arrivals.popleft()
        over = self.limit is not None and len(arrivals) >= self.limit
        arrivals.append(at)
        return over

    async def _handle(
        self, request: web.Request, robot: Robot, at: datetime, params: dict[str, str], raw: bytes, text: str,
        mentions: tuple[str, ...], *, ok: dict[str, Any], throttled: dict[str, Any],
    ) -> web.StreamResponse:
        outcome = Outcome.OVER_LIMIT if self._over_budget(robot, at) else self._decide(robot, raw)
        post = self._record(robot.platform, robot.env, at, params, text, mentions, outcome)
        if outcome in (Outcome.OVER_LIMIT, Outcome.THROTTLED):
            return web.json_response(throttled)
        if outcome is Outcome.HTTP_500:
            return web.Response(status=500, text="<html>server error</html>", content_type="text/html")
        if outcome is Outcome.STALL:
            await self._closing.wait()
            return web.Response(status=503)
        if self.hold:
            self.in_flight[post.seq] = post
            self._arrived.set()
            try:
                await asyncio.sleep(self.hold)  # a slow platform: the post is accepted, the answer not yet out
            finally:
                self.in_flight.pop(post.seq, None)
        if outcome is Outcome.LOST_STALL:
            await self._closing.wait()
            return web.Response(status=503)
        if outcome is Outcome.LOST_DROP:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)
        if request.transport is None or request.transport.is_closing():
            post.outcome = Outcome.LOST_LATE
        return web.json_response(ok)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# -- accounting ------------------------------------------------------------------------------------------------


def reminder_numbers(text: str) -> list[int]:
    """The item numbers of the reminders in a post: one per reminder, alone or as digest lines."""
    return [int(n) for n in REMINDER_NUMBER.findall(text)]


def delivered(posts: Iterable[Received]) -> Counter[int]:
    """How many times each item's reminder was accepted by a robot (inside digests too)."""
    counts: Counter[int] = Counter()
    for post in posts:
        if post.accepted:
            counts.update(post.numbers)
    return counts


def lost_answers(posts: Iterable[Received]) -> Counter[int]:
    """Per item: how many accepted posts carrying it never got their answer to the bot (injected)."""
    counts: Counter[int] = Counter()
    for post in posts:
        if post.outcome in LOST:
            counts.update(post.numbers)
    return counts


def unexplained_duplicates(posts: Sequence[Received]) -> dict[int, int]:
    """Item → extra copies beyond one per lost answer. Empty when every duplicate is explained by
    a post that was accepted while its answer never reached the bot."""
    counts, lost = delivered(posts), lost_answers(posts)
    return {n: c - 1 - lost[n] for n, c in counts.items() if c - 1 != lost[n]}


def busiest_window(times: Sequence[datetime], window: timedelta = WINDOW) -> int:
    """The most posts in any half-open window [t, t + window)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- seeding items -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """An ungraded item whose only reminder in reach (50 % of its grade clock) falls at `remind_at`."""

    chat_id: str
    remind_at: datetime
    reporter: str = "liu_yang"
    summary: str = SUMMARIES[0]


def spread(chats: Sequence[str], count: int, start: datetime, over: timedelta, *, seed: int = 0) -> list[Seed]:
    """`count` seeds over the chats round-robin, due at random moments of [start, start + over)."""
    rng = random.Random(seed)
    return [
        Seed(chats[n % len(chats)], start + over * rng.random(), REPORTERS[rng.randrange(len(REPORTERS))],
             SUMMARIES[rng.randrange(len(SUMMARIES))])
        for n in range(count)
    ]


async def seed_reminders(db: Database, seeds: Sequence[Seed], first_number: int = 1) -> dict[int, Seed]:
    """Insert the items (numbers first_number…) and return number → seed."""
    plan: dict[int, Seed] = {}
    async with db.transaction() as session:
        for offset, seed in enumerate(seeds):
            number = first_number + offset
            reported = seed.remind_at - GRADE_SPAN / 2
            session.add(Item(
                number=number, chat_id=seed.chat_id, source="网络", link=None, summary=seed.summary,
                category="其他", grade=None, lead_unit_id=None, status=ItemStatus.REPORTED.value,
                reported_by=seed.reporter, reported_at=reported, grade_due_at=reported + GRADE_SPAN,
                classified=False, referred_to=[], updated_at=reported, next_reminder_at=seed.remind_at,
                reminded_until=None,
            ))
            plan[number] = seed
        await session.flush()
        counter = await session.get(CounterRow, "item")
        if counter is not None:
            counter.value = max(counter.value, first_number + len(seeds) - 1)
    return plan


async def reminder_rows(db: Database) -> dict[int, OutboxMessage]:
    """Item number → its reminder's outbox row."""
    async with db.read() as session:
        numbers = {row.id: row.number for row in await session.execute(select(Item.id, Item.number))}
        rows = (await session.execute(select(OutboxMessage).where(OutboxMessage.clock.is_not(None)))).scalars()
        return {numbers[row.item_id]: row for row in rows if row.item_id is not None}


async def statuses(db: Database) -> Counter[str]:
    async with db.read() as session:
        result = await session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
        return Counter({status: int(count) for status, count in result})


async def next_activity(db: Database) -> datetime | None:
    """The earliest moment at which a tick has anything to do: a due message, a lease running out,
    an item's next reminder point."""
    async with db.read() as session:
        due = (await session.execute(
            select(func.min(OutboxMessage.due_at)).where(OutboxMessage.status == outbox.PENDING))).scalar_one()
        lease = (await session.execute(
            select(func.min(OutboxMessage.lease_until)).where(OutboxMessage.status == outbox.CLAIMED))).scalar_one()
        item = (await session.execute(
            select(func.min(Item.next_reminder_at)).where(
                Item.status.not_in([s.value for s in FINAL_STATUSES])))).scalar_one()
    moments = [m for m in (due, lease, item) if m is not None]
    return min(moments) if moments else None

