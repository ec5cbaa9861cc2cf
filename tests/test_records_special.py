"""舆情专报 (issue #16 point 3): the 首报/续报/终报 rule, the timeline of the records fixture's items
against values worked out by hand from its story (tests/records_fixture.py), the chat (split to the
platforms' byte limits, 涉密 as its authorised summary only) and the CLI (Markdown, DOCX opened back
with python-docx, --classified recorded in the audit trail)."""

from __future__ import annotations

import argparse
import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import docx
import pytest
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from sqlalchemy import select

from bot.channels import dingtalk_send
from bot.cli import build_parser
from bot.cli_report_item import cmd_report_item
from bot.clock import ManualClock
from bot.documents.markdown import MENTION_RESERVE
from domain.config import Config
from handlers.ops.close import progress
from handlers.records.document import Document, Table
from handlers.records.special import Kind, kind_of, special_report
from store import audit
from store import items as item_store
from store.models import Item, ItemEvent
from tests.conftest import EXAMPLE_CONFIG
from tests.records_fixture import COORDINATOR, END, RecordsWorld, local, records_world

BOT = "舆情值班助手"
MONITOR = "yuqing_monitor（系统接入）"


@pytest.fixture
async def world(config: Config) -> AsyncIterator[RecordsWorld]:
    async with records_world(config) as built:
        yield built


async def report_of(world: RecordsWorld, number: int, **options: object) -> Document:
    async with world.work() as work:
        doc = await special_report(work.session, work.config, work.directory, number, work.now, **options)  # type: ignore[arg-type]
    assert doc is not None
    return doc


def timeline(doc: Document) -> list[tuple[str, ...]]:
    (table,) = [t for t in doc.tables() if t.name == "处置经过"]
    return [tuple(str(v) for v in row) for row in table.rows]


def paragraphs(doc: Document) -> list[str]:
    return [b.text for b in doc.blocks if hasattr(b, "text") and not isinstance(b, Table)]


# -- the kind ---------------------------------------------------------------------------------------------


def _item(status: str) -> Item:
    return Item(status=status)


def _event(action: str) -> ItemEvent:
    return ItemEvent(action=action, at=END, actor="x", after={}, before={})


@pytest.mark.parametrize(("status", "actions", "kind"), [
    ("待定级", ["reported"], Kind.FIRST),
    ("已签收", ["reported", "graded", "acknowledged"], Kind.FIRST),  # 签收 alone is no news yet
    ("已签收", ["reported", "graded", "acknowledged", "progress"], Kind.UPDATE),
    ("已回应", ["reported", "graded", "responded"], Kind.UPDATE),
    ("已办结", ["reported", "graded", "responded", "closed"], Kind.FINAL),
    ("不予回应", ["reported", "no_response"], Kind.FINAL),
    ("已合并", ["reported", "merged"], Kind.FINAL),
])
def test_the_kind_follows_the_state(status: str, actions: list[str], kind: Kind) -> None:
    assert kind_of(_item(status), [_event(a) for a in actions]) is kind


async def test_kinds_of_the_fixture_and_a_progress_note(world: RecordsWorld) -> None:
    # At END: #1 办结, #6 合并, #10 不予回应 → 终报; #12 responded, open → 续报; #8 nobody acted → 首报.
    titles = {n: (await report_of(world, n)).title for n in (1, 6, 8, 10, 12)}
    assert titles[1].endswith("（终报）") and titles[6].endswith("（终报）") and titles[10].endswith("（终报）")
    assert titles[12] == "关于“网传县人民医院节日期间停诊”的舆情专报（续报）"
    assert titles[8] == "关于“网友称在县税务局办理业务排队三小时”的舆情专报（首报）"
    async with world.work() as work:
        item = await item_store.by_number(work.session, 8)
        assert item is not None
        await progress(work, COORDINATOR, world.duty_chat, item, "已电话督促县税务局核实")
    assert (await report_of(world, 8)).title.endswith("（续报）")
    assert (await report_of(world, 8, kind=Kind.FINAL)).title.endswith("（终报）")  # asked for: as asked


# -- the timeline against the story ---------------------------------------------------------------------


async def test_major_late_timeline(world: RecordsWorld) -> None:
    # #3 教育局, 重大, reported Tue 09-22 10:00, graded 10:05 (grade clock 15 min: 5 min, on time).
    # 签收 due 10:30 (30 min): 提醒 10:15 (50 %) and 10:24 (80 %), 催办 10:30; 蒋波 signs 10:50:
    # 50 min from the report, 20 min late. 回应 due 09-23 10:00 (24 h): 提醒 09-22 22:00, 09-23 05:12,
    # 催办 10:00 and 10:30 (the second); 回应 11:20: 25 h 20 min, 1 h 20 min late. 办结 16:00.
    doc = await report_of(world, 3, drafter="赵敏")
    rows = timeline(doc)
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("9月22日 10:00", "上报", MONITOR, ""),
        ("9月22日 10:05", "定级", "王军", "用时5分钟，时限15分钟，按时"),
        ("9月22日 10:15", "提醒", BOT, ""),
        ("9月22日 10:24", "提醒", BOT, ""),
        ("9月22日 10:30", "催办", BOT, ""),
        ("9月22日 10:50", "签收", "蒋波", "用时50分钟，时限30分钟，超时20分钟"),
        ("9月22日 22:00", "提醒", BOT, ""),
        ("9月23日 05:12", "提醒", BOT, ""),
        ("9月23日 10:00", "催办", BOT, ""),
        ("9月23日 10:30", "催办", BOT, ""),
        ("9月23日 11:20", "回应", "蒋波", "用时25小时20分钟，时限24小时，超时1小时20分钟"),
        ("9月23日 16:00", "办结", "王军", ""),
    ]
    assert rows[2][3].startswith("签收时限已过50%，提醒蒋波") and rows[3][3].startswith("签收时限已过80%")
    assert rows[4][3].startswith("签收超时，提醒") and rows[9][3].startswith("回应超时，第2次催办")
    assert rows[5][3] == "清河县教育局"
    assert rows[10][3] == ("首次回应：网上发布 https://gov.example.cn/notice/major_late；"
                           "县教育局通报：涉事校车已停运，司机停职调查")
    text = paragraphs(doc)
    assert "签收：用时50分钟，时限30分钟，超时20分钟。" in text
    assert "回应：用时25小时20分钟，时限24小时，超时1小时20分钟。" in text
    assert "研判依据：类别为“教育”；按重大舆情办理，签收时限30分钟、回应时限24小时（均自上报时起算）。" in text
    assert "截至10月5日 00:00，已办结（9月23日 16:00，王军），结果：已处置完毕，群众表示满意。" in text
    assert doc.subtitle == "清河县人民政府办公室　2026年10月5日 00:00"
    assert doc.blocks[-1].lines == ("拟稿人：赵敏", "签发：________")  # type: ignore[union-attr]


async def test_regraded_counts_lateness_from_the_regrade(world: RecordsWorld) -> None:
    # #9 教育局: reported 09-28 09:00, graded 一般 09:05 (签收 due 09-29 09:00), regraded 重大 by 王军
    # 10:00: 签收 due 09:30 — already past, so its lateness runs from 10:00 (催办 at once, 10:00). 蒋波
    # signs 10:20: 1 h 20 min from the report against 30 min, 20 min late (after the regrade).
    # 回应 due 09-29 09:00 (24 h from the report, the 重大 clock): 回应 08:00, 23 h, on time.
    doc = await report_of(world, 9)
    rows = timeline(doc)
    assert [(r[0], r[1], r[3]) for r in rows[:4]] == [
        ("9月28日 09:00", "上报", "来源：其他"),
        ("9月28日 09:05", "定级", "定为一般"),
        ("9月28日 10:00", "调整等级", "由一般调整为重大"),
        ("9月28日 10:00", "催办", "签收超时，提醒蒋波、卫娜、赵敏、周涛"),
    ]
    ack = next(r for r in rows if r[1] == "签收")
    assert ack[4] == "用时1小时20分钟，时限30分钟，超时20分钟（调整等级时已过时限，自9月28日 10:00起算）"
    answer = next(r for r in rows if r[1] == "回应")
    assert (answer[0], answer[4]) == ("9月29日 08:00", "用时23小时，时限24小时，按时")
    text = paragraphs(doc)
    assert "9月28日 09:05，王军定为一般。" in text and "9月28日 10:00，王军由一般调整为重大。" in text
    assert "当前等级：重大。" in text


async def test_transferred_item_names_both_units_and_its_reminders(world: RecordsWorld) -> None:
    # #5: reported 09-24 09:00 with 税务局 as lead, 较大 (签收 2 h, due 11:00); 提醒 10:00 (50 %) reaches
    # 税务局 (张静); 转办 to 城关镇 10:30; 提醒 10:36 (80 %) reaches 城关镇 (杨帆); 杨帆 signs 10:50 —
    # 1 h 50 min, on time. #6 merged into it 15:30. 回应 09-25 10:00: 25 h against 48 h, on time.
    doc = await report_of(world, 5)
    rows = timeline(doc)
    by_time = {(r[0], r[1]): r for r in rows}
    assert by_time[("9月24日 10:00", "提醒")][3].startswith("签收时限已过50%，提醒张静")
    assert by_time[("9月24日 10:30", "转办")][3] == "转办至清河县城关镇人民政府（原：国家税务总局清河县税务局）"
    assert by_time[("9月24日 10:36", "提醒")][3].startswith("签收时限已过80%，提醒杨帆")
    assert by_time[("9月24日 10:50", "签收")][4] == "用时1小时50分钟，时限2小时，按时"
    assert by_time[("9月24日 15:30", "并入重复线索")][3] == "#6并入本线索"
    assert by_time[("9月25日 10:00", "回应")][4] == "用时25小时，时限48小时，按时"
    assert "9月24日 10:30，王军转办至清河县城关镇人民政府（原：国家税务总局清河县税务局）。" in paragraphs(doc)
    merged = await report_of(world, 6)
    assert "截至10月5日 00:00，已并入 #5，后续处置情况见 #5 专报。" in paragraphs(merged)


async def test_never_acknowledged_shows_every_chase_and_what_is_overdue(world: RecordsWorld) -> None:
    # #8 税务局, 一般, reported Sat 09-26 16:00. 签收 due 09-27 16:00: 提醒 07:30 (04:00 held) and
    # 11:12; 催办 16:00, 20:00, 09-28 07:30 (00:00 and 04:00 held, sent as one) and 08:00 — four sent.
    # 回应 due 09-28 16:00: 提醒 09-27 16:00 and 09-28 07:30; 催办 16:00, 20:00, 09-29 07:30, 08:00.
    # At END (10-05 00:00) 签收 is 7 d 8 h overdue, 回应 6 d 8 h.
    doc = await report_of(world, 8)
    rows = timeline(doc)
    assert [r[1] for r in rows].count("提醒") == 4 and [r[1] for r in rows].count("催办") == 8
    chases = [(r[0], r[3].split("，提醒")[0]) for r in rows if r[1] == "催办" and r[3].startswith("签收")]
    assert chases == [("9月27日 16:00", "签收超时"), ("9月27日 20:00", "签收超时，第2次催办"),
                      ("9月28日 07:30", "签收超时，第3次催办"), ("9月28日 08:00", "签收超时，第4次催办")]
    text = paragraphs(doc)
    assert "签收：尚未办理，时限9月27日 16:00，已超时7天8小时。" in text
    assert "回应：尚未办理，时限9月28日 16:00，已超时6天8小时。" in text
    assert "尚未公开回应。" in text


async def test_no_response_and_holiday_items(world: RecordsWorld) -> None:
    # #10 西岸街道: 签收 by 尤佳 11:00 (1 h of 24 h); 不予回应 by 王军 15:00: the 回应 clock stops.
    text = paragraphs(await report_of(world, 10))
    assert "签收：用时1小时，时限24小时，按时。" in text and "回应：经批准不予回应。" in text
    assert any(t.startswith("截至10月5日 00:00，经批准不予回应（9月29日 15:00，王军），理由：") for t in text)
    # #11 城关镇 重大 over 国庆节: 签收 20:12 (12 min of 30), 回应 10-01 09:00 (13 h of 24 h).
    rows = timeline(await report_of(world, 11))
    assert [r[4] for r in rows if r[4]] == ["用时5分钟，时限15分钟，按时", "用时12分钟，时限30分钟，按时",
                                           "用时13小时，时限24小时，按时"]


async def test_classified_item_shows_only_its_authorised_summary_unless_in_full(world: RecordsWorld) -> None:
    # #7 涉密 (authorised summary "某医疗机构相关舆情（涉密）"): 回应 09-27 11:50, 49 h 50 min against
    # 48 h, 1 h 50 min late. Its summary, response text and result must not appear unless in full.
    async with world.work() as work:
        item = await item_store.by_number(work.session, 7)
        assert item is not None and item.classified
        secret = [item.summary, item.response_text or "", item.verdict or ""]
    doc = await report_of(world, 7)
    md = "\n".join(paragraphs(doc)) + str(timeline(doc))
    assert doc.title == "关于“某医疗机构相关舆情（涉密）”的舆情专报（终报）"
    assert not any(s and s in md for s in secret)
    answer = next(r for r in timeline(doc) if r[1] == "回应")
    assert answer[4] == "用时49小时50分钟，时限48小时，超时1小时50分钟"
    full = await report_of(world, 7, full=True)
    text = "\n".join(paragraphs(full)) + str(timeline(full))
    assert all(s in text for s in secret)
    assert paragraphs(full)[0].startswith("【涉密】本专报含涉密内容")


# -- the chat ---------------------------------------------------------------------------------------------


async def test_chat_report_is_split_under_the_wecom_text_limit(world: RecordsWorld) -> None:
    replies = await world.bot.post("wecom_duty", "zhao_min", "专报 #8")
    limit = 2048 - MENTION_RESERVE  # wecom_duty's channel posts text (config.example.toml)
    assert len(replies) > 1
    assert all(len(r["text"].encode("utf-8")) <= limit for r in replies)
    title = "关于“网友称在县税务局办理业务排队三小时”的舆情专报（首报）"
    for index, reply in enumerate(replies, 1):
        assert reply["text"].startswith(f"{title}（{index}/{len(replies)}）")
    text = "\n".join(r["text"] for r in replies)
    assert "时间｜环节｜办理人｜说明｜时效" in text and "**" not in text
    assert text.count("｜催办｜") == 8 and "拟稿人：赵敏\n签发：________" in text


async def test_chat_kind_numbers_and_errors(world: RecordsWorld) -> None:
    replies = await world.bot.post("wecom_duty", "zhao_min", "专报 ＃3 续报")
    assert replies[0]["text"].startswith("关于“网传某中学校车超载，家长聚集学校门口”的舆情专报（续报）")
    replies = await world.bot.post("wecom_duty", "zhao_min", "专报 12号")
    assert replies[0]["text"].startswith("关于“网传县人民医院节日期间停诊”的舆情专报（续报）")
    assert (await world.bot.say("zhao_min", "专报 #99"))["text"].startswith("未找到 #99")
    assert (await world.bot.say("zhao_min", "专报 #3 中报"))["text"].startswith("用法：专报 #编号")


async def test_chat_never_shows_a_classified_items_text(world: RecordsWorld) -> None:
    async with world.work() as work:
        item = await item_store.by_number(work.session, 7)
        assert item is not None
        secret = item.summary
    replies = await world.bot.post("coordinators", "wang_jun", "专报 #7")
    text = "\n".join(r["text"] for r in replies)
    assert "某医疗机构相关舆情（涉密）" in text and secret not in text
    assert "【涉密】本线索为涉密线索，以下仅含授权摘要" in text


async def test_dingtalk_chat_parts_fit_one_robot_post_each(world: RecordsWorld) -> None:
    replies = await world.bot.post("dingtalk_duty", "sun_li", "专报 #8")
    builder = dingtalk_send.BodyBuilder("text")
    for reply in replies:
        bodies = builder.bodies(reply["text"], dingtalk_send.Mentions())
        assert len(bodies) == 1 and len(dingtalk_send.serialize(bodies[0])) <= dingtalk_send.MAX_POST_BODY


# -- the CLI ----------------------------------------------------------------------------------------------


def cli_args(world: RecordsWorld, *extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["report", "item", "--config", str(EXAMPLE_CONFIG),
                                      "--database", world.config.database.url, *extra])


async def exports(world: RecordsWorld) -> list[ItemEvent]:
    async with world.runtime.db.read() as session:
        result = await session.execute(select(ItemEvent).where(ItemEvent.action == "classified_export"))
        return list(result.scalars())


async def test_cli_docx_in_the_official_layout(world: RecordsWorld, tmp_path: Path) -> None:
    out = tmp_path / "专报.docx"
    clock = ManualClock(END + timedelta(hours=9))
    code = await asyncio.to_thread(cmd_report_item, cli_args(world, "#3", "-o", str(out), "--drafter", "zhao_min"),
                                   clock)
    assert code == 0
    word = docx.Document(io.BytesIO(out.read_bytes()))
    section = word.sections[0]
    lengths = (section.page_width, section.page_height, section.top_margin, section.bottom_margin,
               section.left_margin, section.right_margin)
    assert [round(x.mm) if x is not None else None for x in lengths] == [210, 297, 37, 35, 28, 26]
    title = word.paragraphs[0]
    assert title.text == "关于“网传某中学校车超载，家长聚集学校门口”的舆情专报（终报）"
    assert title.alignment == WD_ALIGN_PARAGRAPH.CENTER
    assert title.runs[0]._r.rPr.rFonts.get(qn("w:eastAsia")) == "方正小标宋简体"  # type: ignore[union-attr]
    assert word.paragraphs[1].text == "清河县人民政府办公室　2026年10月5日 09:00"
    body = next(p for p in word.paragraphs if p.text.startswith("线索编号：#3"))
    assert body.runs[0]._r.rPr.rFonts.get(qn("w:eastAsia")).startswith("仿宋")  # type: ignore[union-attr]
    assert {run.font.size.pt for run in body.runs if run.font.size} == {16}
    (table,) = word.tables
    assert [c.text for c in table.rows[0].cells] == ["时间", "环节", "办理人", "说明", "时效"]
    assert [c.text for c in table.rows[6].cells][:3] == ["9月22日 10:50", "签收", "蒋波"]
    assert table.rows[6].cells[4].text == "用时50分钟，时限30分钟，超时20分钟"
    assert [p.text for p in word.paragraphs[-2:]] == ["拟稿人：赵敏", "签发：________"]
    assert await exports(world) == []  # not 涉密: nothing to record


async def test_cli_markdown_and_the_classified_export(world: RecordsWorld, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    clock = ManualClock(END)
    await asyncio.to_thread(cmd_report_item, cli_args(world, "7"), clock)
    captured = capsys.readouterr()
    assert captured.out.startswith("# 关于“某医疗机构相关舆情（涉密）”的舆情专报（终报）\n")
    assert "仅输出授权摘要" in captured.err and await exports(world) == []
    async with world.work() as work:
        item = await item_store.by_number(work.session, 7)
        assert item is not None
        secret, item_id = item.summary, item.id
    out = tmp_path / "专报.md"
    await asyncio.to_thread(cmd_report_item, cli_args(world, "7号", "--classified", "--kind", "续报",
                                                      "--drafter", "王军", "-o", str(out)), clock)
    text = out.read_text(encoding="utf-8")
    assert secret in text and "（续报）" in text.splitlines()[0]
    (row,) = await exports(world)
    assert (row.item_id, row.actor, row.at) == (item_id, "wang_jun", END)
    assert row.detail == f"专报（续报）涉密全文，拟稿人：王军，输出至：{out.resolve()}"
    async with world.runtime.db.read() as session:
        assert (await audit.timeline(session, item_id))[-1].action == "classified_export"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["report", "item", "3", "--kind", "中报"])


def test_cli_refuses_a_docx_to_the_terminal_and_a_bad_number(tmp_path: Path) -> None:
    from bot.cli_locate import CliError
    from bot.cli_report_item import number_of

    assert number_of("＃12") == 12 and number_of("12号") == 12
    with pytest.raises(CliError):
        number_of("十二")
    args = build_parser().parse_args(["report", "item", "3", "--format", "docx", "--config", str(EXAMPLE_CONFIG),
                                      "--database", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"])
    with pytest.raises(CliError, match="Word 文件不能输出到终端"):
        cmd_report_item(args, ManualClock(local(10, 5, 9)))
