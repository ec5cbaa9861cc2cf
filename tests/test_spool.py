"""Never a 2xx for a message that is not kept (issue 13 point 1, 2, 10), on SQLite and PostgreSQL.

The database is made unwritable the way an operator meets it — another process holding SQLite's
write lock or a PostgreSQL table lock past the write budget, a full disk under the SQLite file —
while real signed WeCom callbacks arrive. Every callback is either answered 2xx and becomes an
item once writes succeed again (replayed from the spool, in order, once), or answered 5xx.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import _doctor
from bot.clock import ManualClock
from bot.dispatch import DELAYED
from bot.logs import FailureLog
from bot.spool import Spool, _encode
from domain.config import Config, SpoolSection
from domain.messages import InboundMessage
from domain.vocab import Platform
from store.models import Item
from tests.conftest import START, Bot, start_bot
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import COORD_KEY, OPS_KEY, WecomBot, running
from tests.outage_support import database_held

REPORT = "上报 城关镇人民路发生火灾，网传多人受伤"


@pytest.fixture
def spooled_config(config: Config, tmp_path: Path) -> Config:
    spool = SpoolSection(directory=str(tmp_path / "spool"), write_budget_seconds=0.5)
    return config.model_copy(update={"spool": spool})


async def items(bot: Bot) -> list[Item]:
    async with bot.runtime.db.read() as session:
        return list((await session.execute(select(Item).order_by(Item.number))).scalars())


async def replay(w: WecomBot) -> int:
    done = await w.bot.runtime.keeper.replay_once(w.bot.runtime.handler)
    await w.deliver()
    return done


async def test_callbacks_during_an_outage_are_spooled_and_replayed_once_issue13_p1(
    spooled_config: Config, clock: ManualClock,
) -> None:
    async with running(spooled_config, clock) as w:
        async with database_held(w.bot):
            first = await w.say("LiuYang", REPORT, msgid="OUT-1")
            retry = await w.say("LiuYang", REPORT, msgid="OUT-1")  # the platform's retry of the same message
            second = await w.say("ZhaoMin", "上报 西岸滨河路路灯不亮", msgid="OUT-2")
            assert [first[0], retry[0], second[0]] == [200, 200, 200]
            health = await w.bot.client.get("/healthz")
            body = await health.json()
            assert health.status == 503 and "database_writable" in body["failed"] and body["spool_depth"] == 3
            metrics = await (await w.bot.client.get("/metrics")).text()
            assert "dutybot_spool_depth 3.0" in metrics
            assert await w.bot.runtime.keeper.replay_once(w.bot.runtime.handler) == 0  # still held: nothing replayed
        assert await items(w.bot) == []
        w.bot.runtime._probed = None  # the write probe's answer is cached for 5 s
        assert await replay(w) == 3
        found = await items(w.bot)
        # in order, once
        assert [i.summary for i in found] == ["城关镇人民路发生火灾，网传多人受伤", "西岸滨河路路灯不亮"]
        [reply] = w.fake.reply_posts(first[2]) or w.fake.webhook_posts()[:1]
        assert reply.content.startswith("已受理舆情线索 #1")
        assert DELAYED.splitlines()[1][:8] in reply.content  # marked as delayed
        assert w.bot.runtime.keeper.state()[0] == 0
        healthy = await (await w.bot.client.get("/healthz")).json()
        assert healthy["database_writable"] and healthy["spool_depth"] == 0


async def test_the_notices_a_replayed_message_causes_are_marked_delayed_issue13_p1(
    spooled_config: Config, clock: ManualClock,
) -> None:
    async with running(spooled_config, clock) as w:
        async with database_held(w.bot):
            assert (await w.say("ZhaoMin", REPORT, msgid="OUT-R"))[0] == 200
            assert (await w.say("ZhaoMin", "1", msgid="OUT-G"))[0] == 200  # the grade answer, kept too
        w.bot.runtime._probed = None
        assert await replay(w) == 2
        [item] = await items(w.bot)
        assert item.grade == "重大"
        [notice] = [p for p in w.fake.webhook_posts() if p.content.startswith("【舆情通报】#1 重大舆情")]
        assert "恢复后补办，答复有延迟" in notice.content  # in the duty chat the notice is the grade's answer
        assert notice.mentioned_list  # the leaders are still @-mentioned
        [copy] = w.fake.webhook_posts(COORD_KEY)  # the 归口 copy, a notice queued by the grading
        assert copy.content.startswith("【舆情通报】#1 重大舆情") and "恢复后补办，通知有延迟" in copy.content


async def test_a_message_after_the_outage_queues_behind_the_kept_ones_issue13_p1(
    spooled_config: Config, clock: ManualClock,
) -> None:
    async with running(spooled_config, clock) as w:
        async with database_held(w.bot):
            assert (await w.say("ZhaoMin", REPORT, msgid="ORD-R"))[0] == 200
        # The database is back but the report is still in the spool: the grade answer must not
        # overtake it (it would find no question to answer).
        assert (await w.say("ZhaoMin", "1", msgid="ORD-G"))[0] == 200
        assert await items(w.bot) == []
        w.bot.runtime._probed = None
        assert await replay(w) == 2
        [item] = await items(w.bot)
        assert item.grade == "重大"
        assert not w.bot.runtime.spool.holding()
        assert (await w.say("ZhaoMin", "上报 西岸滨河路路灯不亮", msgid="ORD-3"))[0] == 200
        assert len(await items(w.bot)) == 2  # with nothing kept, messages go straight in again


async def test_the_admins_are_told_once_when_an_outage_starts_and_once_when_drained_issue13_p2(
    spooled_config: Config, clock: ManualClock,
) -> None:
    async with running(spooled_config, clock, robots={"DUTYBOT_WECOM_OPS_WEBHOOK": OPS_KEY}) as w:
        async with database_held(w.bot):
            for n in range(3):
                assert (await w.say("LiuYang", f"上报 城关镇第{n}号路口积水", msgid=f"ALERT-{n}"))[0] == 200
            await asyncio.gather(*w.bot.runtime.keeper._tasks)  # the alert goes out beside the callback
            [alert] = w.fake.webhook_posts(OPS_KEY)  # once, not once per message
            assert alert.content.startswith("【系统告警】数据库暂时无法写入")
            assert alert.mentioned_list  # the admins, by their platform ids
        w.bot.runtime._probed = None
        assert await replay(w) == 3
        await w.deliver()
        again, drained = w.fake.webhook_posts(OPS_KEY)
        assert again is alert or again.content == alert.content
        assert drained.content.startswith("【系统恢复】") and "3 条消息" in drained.content
        assert drained.mentioned_list == alert.mentioned_list
        async with database_held(w.bot):  # a second outage is told again
            assert (await w.say("LiuYang", "上报 西岸路灯不亮", msgid="ALERT-9"))[0] == 200
            await asyncio.gather(*w.bot.runtime.keeper._tasks)
        assert len(w.fake.webhook_posts(OPS_KEY)) == 3


async def test_neither_database_nor_spool_means_503_issue13_p1(spooled_config: Config, clock: ManualClock,
                                                               tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    config = spooled_config.model_copy(update={"spool": SpoolSection(directory=str(blocker / "spool"),
                                                                     write_budget_seconds=0.5)})
    async with running(config, clock) as w:
        async with database_held(w.bot):
            status, body, _ = await w.say("LiuYang", REPORT, msgid="LOST-1")
            assert status == 503 and "稍后重试" in body
            local = await w.bot.client.post("/local/messages",
                                             json={"chat": "wecom_duty", "sender": "liu_yang", "text": REPORT})
        assert local.status == 503 and "error" in await local.json()
        status, _, _ = await w.say("LiuYang", REPORT, msgid="LOST-1")  # the platform retries: now kept
        assert status == 200 and len(await items(w.bot)) == 1


async def test_every_callback_is_2xx_and_an_item_or_5xx_issue13_p10(spooled_config: Config, clock: ManualClock) -> None:
    async with running(spooled_config, clock) as w:
        answers: dict[str, int] = {}
        for n in range(3):
            answers[f"M{n}"] = (await w.say("LiuYang", f"上报 测试线索{n}", msgid=f"M{n}"))[0]
        async with database_held(w.bot):
            for n in range(3, 6):
                answers[f"M{n}"] = (await w.say("LiuYang", f"上报 测试线索{n}", msgid=f"M{n}"))[0]
            w.bot.runtime.spool.max_bytes = 1  # the spool is full too: these must be refused
            for n in range(6, 8):
                answers[f"M{n}"] = (await w.say("LiuYang", f"上报 测试线索{n}", msgid=f"M{n}"))[0]
        w.bot.runtime._probed = None
        await replay(w)
        kept = {i.summary for i in await items(w.bot)}
        for n in range(8):
            status = answers[f"M{n}"]
            assert status in (200, 503)
            assert (status == 200) == (f"测试线索{n}" in kept), (n, status)
        assert [answers[f"M{n}"] for n in range(8)] == [200] * 6 + [503] * 2


async def test_local_channel_idempotency_key_cannot_report_twice_issue13_p1(bot: Bot) -> None:
    body = {"chat": "wecom_duty", "sender": "liu_yang", "text": REPORT}
    first = await bot.client.post("/local/messages", json=body, headers={"Idempotency-Key": "client-1"})
    again = await bot.client.post("/local/messages", json=body, headers={"Idempotency-Key": "client-1"})
    assert first.status == again.status == 200
    assert (await again.json()) == {"replies": [], "duplicate": True}
    assert len(await items(bot)) == 1
    bad = await bot.client.post("/local/messages", json=body, headers={"Idempotency-Key": "x" * 129})
    assert bad.status == 400 and "Idempotency-Key" in (await bad.json())["error"]


# -- a full disk under the SQLite file -------------------------------------------------------------------


@contextmanager
def small_disk(path: Path, size: str = "4m") -> Iterator[Path]:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs for the full-disk test: {done.stderr.decode()}")
        pytest.skip(f"a full disk needs a tmpfs mount (root): {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for chunk in (65536, 4096, 1):  # to the last byte: a WAL frame must not fit anywhere
            try:
                while True:
                    handle.write(b"\0" * chunk)
            except OSError:
                continue
    return filler


async def test_a_full_disk_for_the_sqlite_file_spools_then_replays_issue13_p10(
    config: Config, clock: ManualClock, tmp_path: Path,
) -> None:
    if not config.database.url.startswith("sqlite"):
        pytest.skip("the full disk is the SQLite file's (PostgreSQL's disk is the server's)")
    with small_disk(tmp_path / "disk") as disk:
        spool = SpoolSection(directory=str(tmp_path / "spool"), write_budget_seconds=1)
        full_config = config.with_database(f"sqlite+aiosqlite:///{disk / 'dutybot.db'}").model_copy(
            update={"spool": spool})
        async with running(full_config, clock) as w:
            await w.say("LiuYang", "上报 之前的线索", msgid="BEFORE")
            await w.deliver()
            # An emptied WAL must grow for the next write (a WAL already grown is reused in place).
            with sqlite3.connect(disk / "dutybot.db") as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            filler = fill(disk)
            status, _, _ = await w.say("LiuYang", "上报 磁盘满时的线索" + "，详情" * 600, msgid="FULL")
            assert status == 200  # kept in the spool, on another disk
            assert w.bot.runtime.keeper.state()[0] == 1
            filler.unlink()
            w.bot.runtime._probed = None
            assert await replay(w) == 1
            assert [i.summary[:7] for i in await items(w.bot)] == ["之前的线索", "磁盘满时的线索"]


# -- kill -9 ---------------------------------------------------------------------------------------------

_WRITER = """
import os, signal, sys, asyncio
from datetime import datetime, timedelta, UTC
sys.path.insert(0, {root!r})
from bot.spool import Spool
from domain.messages import InboundMessage
from domain.vocab import Platform
async def main():
    spool = Spool(__import__("pathlib").Path({directory!r}), max_bytes=1 << 20, tag="victim")
    start = datetime.fromisoformat({start!r})
    for n in range(3):
        await spool.append(InboundMessage(platform=Platform.WECOM, chat_id="wecom_duty", sender_id="liu_yang",
            text=f"上报 停电线索{{n}}", received_at=start + timedelta(seconds=n), channel="wecom",
            message_id=f"K{{n}}"))
    print("kept", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
asyncio.run(main())
"""


async def test_a_spool_left_by_kill_9_is_replayed_by_the_next_start_issue13_p10(
    spooled_config: Config, clock: ManualClock,
) -> None:
    directory = spooled_config.spool.directory
    script = _WRITER.format(root=str(Path(__file__).parents[1]), directory=directory, start=START.isoformat())
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", script], capture_output=True,
                                   timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL and b"kept" in done.stdout
    async with running(spooled_config, clock) as w:
        assert w.bot.runtime.keeper.state()[0] == 3
        assert await replay(w) == 3
        assert [i.summary for i in await items(w.bot)] == ["停电线索0", "停电线索1", "停电线索2"]
        assert not await asyncio.to_thread(lambda: list(Path(directory).glob("spool-*")))


async def test_a_live_processes_spool_is_not_taken_by_another(tmp_path: Path) -> None:
    mine = Spool(tmp_path, max_bytes=1 << 20, tag="alive")
    other = Spool(tmp_path, max_bytes=1 << 20, tag="other")
    message = InboundMessage(platform=Platform.WECOM, chat_id="wecom_duty", sender_id="liu_yang", text="上报 x",
                             received_at=START, channel="wecom", message_id="A1")
    await mine.append(message)
    seen: list[str] = []

    async def handle(m: InboundMessage) -> None:
        seen.append(m.message_id or "")

    assert await other.replay(handle) == 0 and seen == []  # "alive" still holds its lock
    assert await mine.replay(handle) == 1 and seen == ["A1"]
    mine.close()
    other.close()


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    message = InboundMessage(platform=Platform.DINGTALK, chat_id="dingtalk_duty", sender_id="sun_li", text="上报 y",
                             received_at=START, channel="dingtalk", message_id="B1")
    line = _encode(message)
    (tmp_path / "spool-dead.jsonl").write_bytes(line + line[: len(line) // 2])
    spool = Spool(tmp_path, max_bytes=1 << 20, tag="reader")
    [kept] = spool.pending()
    assert kept.message == message


def test_one_error_line_per_failure_kind_per_interval_issue13_p6(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    failures = FailureLog(logging.getLogger("test.failures"), interval_seconds=60)
    boom = OSError("connection refused")
    for second in range(0, 120):  # twice a second for a minute, then once more
        failures.failure("database_write", "数据库无法写入", exc=boom, now=second / 2)
    failures.failure("database_write", "数据库无法写入", exc=boom, now=61)
    lines = [r for r in caplog.records if r.name == "test.failures"]
    assert len(lines) == 2
    assert lines[0].exc_info is not None and lines[1].exc_info is None  # one traceback, not one per second
    assert "又发生 119 次" in lines[1].getMessage()


async def test_write_budget_bounds_the_answer_time(spooled_config: Config, clock: ManualClock) -> None:
    async with running(spooled_config, clock) as w, database_held(w.bot):
        loop = asyncio.get_running_loop()
        began = loop.time()
        status, _, _ = await w.say("LiuYang", REPORT, msgid="FAST-1")
        took = loop.time() - began
    assert status == 200 and took < 0.5 + 1.5  # the budget, plus the spool's fsync and the HTTP exchange
    clock.advance(timedelta(seconds=1))


async def test_replay_waits_for_the_database_not_for_ever(spooled_config: Config, clock: ManualClock) -> None:
    client = await start_bot(spooled_config, clock)
    try:
        bot = Bot(client, clock, spooled_config)
        assert await bot.runtime.keeper.replay_once(bot.runtime.handler) == 0  # nothing waits
    finally:
        await client.close()


async def test_dingtalk_http_callbacks_are_answered_200_only_once_kept_issue13_p1(
    spooled_config: Config, clock: ManualClock,
) -> None:
    async with FakeDingTalk(clock) as fake:
        client = await start_bot(spooled_config, clock, fake.environ())
        bot = Bot(client, clock, spooled_config)
        try:
            async with database_held(bot):
                kept = await fake.call(client, fake.message("上报 城关镇人民路发生火灾", msg_id="msgHTTP-KEPT"))
                assert kept.status == 200
                bot.runtime.spool.max_bytes = 1  # the spool is full too
                lost = await fake.call(client, fake.message("上报 西岸滨河路路灯不亮", msg_id="msgHTTP-LOST"))
                assert lost.status == 503  # DingTalk retries
            assert await items(bot) == []
            bot.runtime._probed = None
            assert await bot.runtime.keeper.replay_once(bot.runtime.handler) == 1
            await bot.runtime.outbox.drain()
            assert [i.summary for i in await items(bot)] == ["城关镇人民路发生火灾"]
            [reply] = fake.posts_of("session")
            assert reply.text.startswith("已受理舆情线索 #1") and "恢复后补办" in reply.text
            bot.runtime.spool.max_bytes = 1 << 20
            retry = await fake.call(client, fake.message("上报 西岸滨河路路灯不亮", msg_id="msgHTTP-LOST"))
            assert retry.status == 200 and len(await items(bot)) == 2
        finally:
            await client.close()


async def test_doctor_shows_what_waits_in_the_spool_issue13_p2(spooled_config: Config, clock: ManualClock) -> None:
    """A process that died with messages kept: doctor names how many wait and for how long."""
    directory = Path(spooled_config.spool.directory)
    left = Spool(directory, max_bytes=1 << 20, tag="dead-process")
    for n in range(2):
        await left.append(InboundMessage(platform=Platform.WECOM, chat_id="wecom_duty", sender_id="liu_yang",
                                         text=f"上报 {n}", received_at=START, channel="wecom", message_id=f"D{n}"))
    left.close()  # its lock goes with it, as when the process is killed
    checks, _ = await _doctor(spooled_config)
    [line] = [c for c in checks if "本地暂存" in c.text]
    assert not line.ok and "有 2 条消息待补办" in line.text and str(directory) in line.text
    assert "自动补办" in line.text
