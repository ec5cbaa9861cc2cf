"""定期通报 posted (issue #16 point 4) on SQLite and PostgreSQL, on the shared fixture (tests/records_fixture.py):
the schedule (once whatever the replicas, 补发 after downtime), `统计` in chat, and
`dutybot report period` (xlsx opened back with openpyxl, csv with its BOM). The figures themselves
are checked by hand in tests/test_records_period.py."""

from __future__ import annotations

import argparse
import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.cli import build_parser
from bot.cli_locate import CliError
from bot.cli_report_period import cmd_report_period
from bot.clock import ManualClock
from bot.documents.markdown import chat_replies
from bot.engine import build_engine, work_for
from domain.config import Config
from handlers.engine import run_cycles
from handlers.ops.base import Work
from handlers.records.period_jobs import MONTHLY_MODULE, WEEKLY_MODULE, MonthlyNotice, WeeklyNotice
from store import engine_runs
from store.models import OutboxMessage
from tests.conftest import EXAMPLE_CONFIG, Bot, start_bot
from tests.records_fixture import RecordsWorld, local, records_world, running_since

HEADERS = ("排名", "单位", "重大", "较大", "一般", "未定级", "合计", "应签收", "按时签收", "按时签收率", "应回应",
           "按时回应", "按时回应率", "提醒", "催办", "零报告缺报天数")


@pytest.fixture
async def world(config: Config) -> AsyncIterator[RecordsWorld]:
    async with records_world(config) as built:
        yield built


# -- the schedule ----------------------------------------------------------------------------------------------


async def notices_posted(bot: Bot) -> dict[str, list[OutboxMessage]]:
    """The 定期通报 rows queued, by kind (weekly, monthly) and in key order."""
    async with bot.runtime.db.read() as session:
        rows = (await session.execute(select(OutboxMessage).where(OutboxMessage.key.startswith("period:"))
                                      .order_by(OutboxMessage.key))).scalars().all()
    found: dict[str, list[OutboxMessage]] = {}
    for row in rows:
        found.setdefault(row.key.split(":")[1], []).append(row)
    return found


async def test_posted_once_whatever_the_replicas_and_a_missed_month_late(world: RecordsWorld) -> None:
    """Mon 10-05 09:00: the weekly notice of 09-28 … 10-04 goes to the coordinators' chat once, though two
    replicas run both modules three times; the monthly one of 10-01 09:00 was missed (nothing ran then):
    September's notice goes once, now, marked 补发. Last week's occurrence (09-28) is not posted any more."""
    other = await start_bot(world.config, world.clock)
    try:
        replica = Bot(other, world.clock, world.config)
        # Running since before 10-01 09:00, then down over it.
        await running_since(world.runtime.db, [WEEKLY_MODULE, MONTHLY_MODULE], local(9, 30, 12, 0))
        world.clock.set(local(10, 5, 9, 0))
        mine = [WeeklyNotice(chat_replies), MonthlyNotice(chat_replies)]
        theirs = [WeeklyNotice(chat_replies), MonthlyNotice(chat_replies)]
        for _ in range(3):
            await asyncio.gather(*(run_cycles(world.runtime.db, m, work_for(world.runtime)) for m in mine),
                                 *(run_cycles(replica.runtime.db, m, work_for(replica.runtime)) for m in theirs))
    finally:
        await other.close()
    posted = await notices_posted(world.bot)
    weekly, monthly = posted["week"], posted["month"]
    assert {r.chat_id for r in weekly + monthly} == {"coordinators"}  # the only coordinators' chat
    assert [r.key for r in weekly] == [f"period:week:2026-09-28..2026-10-04:coordinators:{n}"
                                       for n in range(len(weekly))]
    assert weekly[0].text.splitlines()[:2] == [f"舆情处置情况周通报{part(weekly)}",
                                               "统计时段：2026年9月28日至10月4日"]
    assert [r.key for r in monthly] == [f"period:month:2026-09-01..2026-09-30:coordinators:{n}"
                                        for n in range(len(monthly))]
    assert monthly[0].text.splitlines()[:2] == [f"舆情处置情况月通报（补发）{part(monthly)}",
                                                "统计时段：2026年9月1日至9月30日"]
    assert "应签收10条，按时签收7条，按时签收率70.0%" in monthly[0].text
    async with world.runtime.db.read() as session:
        weekly_runs = await engine_runs.runs(session, WEEKLY_MODULE)
        monthly_runs = await engine_runs.runs(session, MONTHLY_MODULE)
    assert [(r.due_at, r.late) for r in weekly_runs] == [(local(10, 5, 9), False)]
    assert [(r.due_at, r.late) for r in monthly_runs] == [(local(10, 1, 9), True)]
    assert {WEEKLY_MODULE, MONTHLY_MODULE} <= set(build_engine(world.runtime).slots)


def part(rows: list[OutboxMessage]) -> str:
    return f"（1/{len(rows)}）" if len(rows) > 1 else ""


async def test_the_modules_ask_to_run_at_their_next_time(world: RecordsWorld) -> None:
    """At 10-05 09:05 the week's notice is on time (within the 10-minute grace), the month's late."""
    await running_since(world.runtime.db, [WEEKLY_MODULE, MONTHLY_MODULE], local(9, 30, 12, 0))
    world.clock.set(local(10, 5, 9, 5))
    async with world.runtime.db.transaction() as session:
        work = Work(session, world.runtime.config, world.runtime.directory, world.runtime.duty, world.clock.now())
        weekly = await WeeklyNotice(chat_replies).cycle(work)
        monthly = await MonthlyNotice(chat_replies).cycle(work)
    assert (weekly.next_at, monthly.next_at) == (local(10, 12, 9), local(11, 1, 9))
    assert (weekly.late, monthly.late) == (0, 1)  # the month was missed at 10-01 09:00


# -- on demand -----------------------------------------------------------------------------------------------


async def test_stats_in_chat(world: RecordsWorld) -> None:
    """At Mon 10-05 00:00: 上周 is 09-28 … 10-04; a run of days in full-width characters; a month; refusals."""
    last = await world.bot.post("coordinators", "wang_jun", "统计 上周")
    text = "\n".join(r["text"] for r in last)
    assert last[0]["text"].splitlines()[:2] == [f"舆情处置情况周通报（1/{len(last)}）",
                                                "统计时段：2026年9月28日至10月4日"]
    assert "应签收4条，按时签收3条，按时签收率75.0%；应回应4条，按时回应2条，按时回应率50.0%" in text
    assert "#8｜国家税务总局清河县税务局｜一般｜回应｜9月28日 16:00｜未回应（截至10月5日 00:00）｜6天8小时" in text
    days = await world.bot.post("wecom_duty", "zhao_min", "统计　９－２１　至　９－２７")
    assert days[0]["text"].splitlines()[1] == "统计时段：2026年9月21日至9月27日"
    assert "按时签收率71.4%" in days[0]["text"]
    month = await world.bot.post("coordinators", "wang_jun", "统计 9月")
    assert month[0]["text"].splitlines()[1] == "统计时段：2026年9月1日至9月30日"
    now = await world.bot.post("coordinators", "wang_jun", "统计")  # this week, begun at 00:00 today
    assert now[0]["text"].splitlines()[1] == "统计时段：2026年10月5日至10月11日（截至10月5日 00:00）"
    assert "本期受理舆情线索0条，其中合并重复线索0条" in now[0]["text"]
    say = world.bot.say
    assert (await say("wang_jun", "统计 9-30 至 9-21", chat="coordinators"))["text"] == (
        "起始日期（2026-09-30）晚于结束日期（2026-09-21），请核对。")
    assert (await say("wang_jun", "统计 2-30 至 3-1", chat="coordinators"))["text"] == "没有“2-30”这一天，请核对日期。"
    assert (await say("wang_jun", "统计 随便", chat="coordinators"))["text"].startswith("用法：统计")


def cli_args(world: RecordsWorld, *extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["report", "period", "--config", str(EXAMPLE_CONFIG),
                                      "--database", world.config.database.url, *extra])


async def test_cli_markdown_xlsx_and_csv(world: RecordsWorld, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    clock = ManualClock(local(10, 5, 9, 0))
    week = ("--from", "2026-09-21", "--to", "2026-09-27")
    await asyncio.to_thread(cmd_report_period, cli_args(world, *week), clock)
    text = capsys.readouterr().out
    assert text.startswith("# 舆情处置情况通报\n\n统计时段：2026年9月21日至9月27日\n")
    assert "| 1 | 清河县西岸街道办事处 | 0 | 0 | 1 | 0 | 1 | 1 | 1 | 100.0% | 1 | 1 | 100.0% | 0 | 0 | 1 |" in text

    xlsx = tmp_path / "通报.xlsx"
    await asyncio.to_thread(cmd_report_period, cli_args(world, *week, "-o", str(xlsx)), clock)
    book = load_workbook(io.BytesIO(xlsx.read_bytes()))
    assert book.sheetnames == ["各单位情况", "办理用时", "超时事项"]
    sheet = book["各单位情况"]
    assert [c.value for c in sheet[1]] == list(HEADERS)
    assert sheet.freeze_panes == "A2" and all(c.font.bold for c in sheet[1])
    assert sheet.column_dimensions["B"].width >= 28  # the units' full names
    assert [c.value for c in sheet[2]] == [1, "清河县西岸街道办事处", 0, 0, 1, 0, 1, 1, 1, "100.0%", 1, 1, "100.0%",
                                          0, 0, 1]
    late = book["超时事项"]
    assert [c.value for c in late[5]] == ["#8", "国家税务总局清河县税务局", "一般", "签收", "9月27日 16:00",
                                         "未签收（截至9月28日 00:00）", "8小时", "网友称在县税务局办理业务排队三小时"]
    assert late.freeze_panes == "A2"

    csv = tmp_path / "通报.csv"
    await asyncio.to_thread(cmd_report_period, cli_args(world, "--from", "2026-09-01", "--to", "2026-09-30",
                                                        "--format", "csv", "-o", str(csv)), clock)
    raw = csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the Chinese right
    lines = raw.decode("utf-8-sig").split("\r\n")
    assert lines[:2] == ["各单位情况", ",".join(HEADERS)]
    assert lines[2] == "1,清河县西岸街道办事处,0,0,2,0,2,2,2,100.0%,1,1,100.0%,0,0,21"
    assert "超时事项" in lines and "办理用时" in lines


async def test_cli_defaults_and_refusals(world: RecordsWorld, capsys: pytest.CaptureFixture[str]) -> None:
    clock = ManualClock(local(10, 5, 9, 0))
    await asyncio.to_thread(cmd_report_period, cli_args(world), clock)  # no dates: last Monday–Sunday
    assert "统计时段：2026年9月28日至10月4日" in capsys.readouterr().out
    for extra, message in (((["--from", "2026-09-21"]), "--from 与 --to 须同时给出"),
                           ((["--from", "2026-9-1", "--to", "2026-09-30"]), "日期“2026-9-1”格式不对"),
                           ((["--format", "xlsx"]), "Excel 文件不能输出到终端")):
        with pytest.raises(CliError, match=message):
            await asyncio.to_thread(cmd_report_period, cli_args(world, *extra), clock)
