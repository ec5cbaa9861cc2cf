"""The document writers (bot/documents/markdown.py, docx.py): Markdown files, chat messages within
the platforms' byte limits (checked with the senders' own payload builders), and DOCX in the
official layout opened back with python-docx."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import docx
import pytest
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docx.text.paragraph import Paragraph as DocxParagraph
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels import dingtalk_send, wecom_send
from bot.documents.docx import to_docx
from bot.documents.markdown import MENTION_RESERVE, chat_format, chat_parts, chat_replies, to_markdown
from domain.config import Config, load_config
from handlers.records.document import Document, Heading, Paragraph, Signature, Table

EXAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "config.example.toml"

TIMELINE = Table(
    name="处置记录",
    headers=("时间", "环节", "办理人", "用时", "时限", "是否按时"),
    rows=tuple((f"9月{day}日 09:{day:02d}", "签收", "张三", "25分钟", "2小时", "按时") for day in range(1, 31)),
)
DOC = Document(
    title="关于城关镇垃圾站异味问题的舆情专报（首报）",
    subtitle="县政府办公室　2026年9月22日",
    blocks=(
        Heading("一、基本情况"),
        Paragraph("网民在微博发帖反映城关镇垃圾站异味扰民，阅读量1.2万。\n评论多为附和。", mentions=("p1",)),
        Heading("（一）处置经过", level=2),
        TIMELINE,
        Paragraph("当前状态：已回应。"),
        Signature(("拟稿人：李四", "签发：________")),
    ),
)


def _words(part: str) -> list[str]:
    return [line for line in part.split("\n") if line]


# -- Markdown file ------------------------------------------------------------------------------------


def test_markdown_file_has_title_sections_and_a_table() -> None:
    text = to_markdown(DOC)
    lines = text.split("\n")
    assert lines[0] == "# 关于城关镇垃圾站异味问题的舆情专报（首报）"
    assert lines[2] == "县政府办公室　2026年9月22日"
    assert "## 一、基本情况" in lines and "### （一）处置经过" in lines
    assert "| 时间 | 环节 | 办理人 | 用时 | 时限 | 是否按时 |" in lines
    assert "| 9月30日 09:30 | 签收 | 张三 | 25分钟 | 2小时 | 按时 |" in lines
    assert "网民在微博发帖反映城关镇垃圾站异味扰民，阅读量1.2万。  \n评论多为附和。" in text
    assert text.endswith("拟稿人：李四  \n签发：________\n")


def test_markdown_escapes_pipes_and_marks_late_posts() -> None:
    doc = Document("舆情日志", (Table("t", ("a", "b"), (("x|y", 0.5), (None, 2.0))),), late=True)
    text = to_markdown(doc)
    assert text.startswith("# 舆情日志（补发）\n")
    assert "| x\\|y | 0.5 |" in text and "|  | 2 |" in text


# -- chat messages ------------------------------------------------------------------------------------


def test_a_short_document_is_one_message_without_a_part_number() -> None:
    parts = chat_parts(DOC, 4096)
    assert len(parts) == 1
    assert parts[0].startswith("**关于城关镇垃圾站异味问题的舆情专报（首报）**\n县政府办公室")
    # Robot Markdown draws no tables: a table is a header line and a line per row.
    assert "时间｜环节｜办理人｜用时｜时限｜是否按时\n9月1日 09:01｜签收｜张三｜25分钟｜2小时｜按时" in parts[0]
    assert "|" not in parts[0]


def test_plain_text_has_no_markdown_marks() -> None:
    part = chat_parts(DOC, 4096, markdown=False)[0]
    assert part.startswith("关于城关镇垃圾站异味问题的舆情专报（首报）\n")
    assert "**" not in part and "\n（一）处置经过\n" in part


def test_long_documents_are_cut_between_rows_with_the_header_repeated() -> None:
    limit = 600
    parts = chat_parts(DOC, limit, markdown=False)
    assert len(parts) > 3
    assert all(len(part.encode("utf-8")) <= limit for part in parts)
    count = len(parts)
    for index, part in enumerate(parts, 1):
        assert part.startswith(f"关于城关镇垃圾站异味问题的舆情专报（首报）（{index}/{count}）")
    rows = [line for part in parts for line in _words(part) if line.startswith("9月")]
    assert rows == [f"9月{d}日 09:{d:02d}｜签收｜张三｜25分钟｜2小时｜按时" for d in range(1, 31)]
    for part in parts:
        lines = _words(part)
        if any(line.startswith("9月") for line in lines):
            # every message holding rows says what the columns are
            assert "时间｜环节｜办理人｜用时｜时限｜是否按时" in lines


def test_a_heading_is_never_left_at_the_foot_of_a_message() -> None:
    blocks = (Paragraph("甲" * 50), Heading("二、处置情况"), Paragraph("乙" * 50))
    parts = chat_parts(Document("专报", blocks), 330, markdown=False)
    assert len(parts) == 2
    assert not parts[0].endswith("二、处置情况")
    assert "二、处置情况\n\n" + "乙" * 50 in parts[1]


def test_a_block_longer_than_a_message_is_cut_and_nothing_is_lost() -> None:
    text = "长" * 1000  # 3,000 bytes in one line
    parts = chat_parts(Document("专报", (Paragraph(text),)), 1000, markdown=False)
    assert all(len(part.encode("utf-8")) <= 1000 for part in parts)
    body = "".join(line for part in parts for line in _words(part)[1:] if not line.startswith("专报"))
    assert body == text


def test_a_limit_too_small_for_a_line_is_a_mistake() -> None:
    with pytest.raises(ValueError):
        chat_parts(DOC, 100)


_TEXT = st.text(alphabet=st.sampled_from("舆情专报ab1 ｜|*#\n"), min_size=1, max_size=120)
_BLOCK = st.one_of(
    st.builds(Heading, _TEXT.map(lambda t: t.replace("\n", "")), st.sampled_from([1, 2])),
    st.builds(Paragraph, _TEXT),
    st.builds(lambda rows: Table("t", ("甲", "乙"), tuple((r, r) for r in rows)),
              st.lists(_TEXT.map(lambda t: t.replace("\n", " ")), max_size=12)),
)


@settings(max_examples=150, deadline=None)
@given(blocks=st.lists(_BLOCK, max_size=12), limit=st.integers(min_value=300, max_value=2000),
       markdown=st.booleans())
def test_every_message_is_within_the_limit_and_the_text_is_all_there(
    blocks: list[Heading | Paragraph | Table], limit: int, markdown: bool
) -> None:
    doc = Document("舆情日志", tuple(blocks))
    parts = chat_parts(doc, limit, markdown=markdown)
    assert all(len(part.encode("utf-8")) <= limit for part in parts)
    joined = "".join(parts)
    for block in blocks:
        if isinstance(block, Paragraph):
            # a cut block may be split at its line ends or between characters: its characters stay in order
            remaining = iter(joined)
            assert all(char in remaining for char in block.text.replace("\n", ""))


# -- one chat's replies, checked with the platforms' own senders -----------------------------------------


def _config(message_format: str) -> Config:
    config = load_config(EXAMPLE_CONFIG)
    channels = [c.model_copy(update={"message_format": message_format}) for c in config.channels]
    return config.model_copy(update={"channels": channels})


def _big() -> Document:
    rows = tuple((f"#{n}", "某镇群众反映道路积水，多日未处理，" * 3, "已回应") for n in range(1, 200))
    return Document("舆情日志", (Heading("一、新增线索"), Table("t", ("编号", "摘要", "状态"), rows)))


@pytest.mark.parametrize(("message_format", "limit"), [("text", 2048), ("markdown", 4096)])
def test_wecom_replies_each_fit_one_robot_post(message_format: str, limit: int) -> None:
    config = _config(message_format)
    chat = next(c for c in config.chats if c.id == "wecom_duty")
    assert chat_format(config, chat).limit_bytes == limit - MENTION_RESERVE
    replies = chat_replies(_big(), config, chat)
    assert len(replies) > 3
    for reply in replies:
        payloads = wecom_send.webhook_payloads(reply.text, wecom_send.Mentions(), message_format)
        assert len(payloads) == 1
        assert payloads[0]["msgtype"] == message_format
    assert all(reply.mentions == () for reply in replies)


@pytest.mark.parametrize("message_format", ["text", "markdown"])
def test_dingtalk_replies_each_fit_one_robot_post(message_format: str) -> None:
    config = _config(message_format)
    chat = next(c for c in config.chats if c.id == "dingtalk_duty")
    replies = chat_replies(_big(), config, chat)
    assert len(replies) > 1
    builder = dingtalk_send.BodyBuilder(message_format)
    for reply in replies:
        bodies = builder.bodies(reply.text, dingtalk_send.Mentions())
        assert len(bodies) == 1
        assert len(dingtalk_send.serialize(bodies[0])) <= dingtalk_send.MAX_POST_BODY


def test_the_documents_mentions_ride_on_the_last_reply() -> None:
    config = _config("markdown")
    chat = next(c for c in config.chats if c.id == "wecom_duty")
    doc = Document("舆情日志", (*_big().blocks, Paragraph("逾期：#3", mentions=("p1", "p2"))))
    replies = chat_replies(doc, config, chat)
    assert [r.mentions for r in replies[:-1]] == [()] * (len(replies) - 1)
    assert replies[-1].mentions == ("p1", "p2")
    assert replies[0].text.startswith("**舆情日志（1/")


# -- DOCX ---------------------------------------------------------------------------------------------


def _east_asia(paragraph: DocxParagraph) -> set[str | None]:
    fonts = set()
    for run in paragraph.runs:
        r_fonts = run._r.rPr.rFonts if run._r.rPr is not None else None
        fonts.add(None if r_fonts is None else r_fonts.get(qn("w:eastAsia")))
    return fonts


def test_docx_page_is_a4_with_the_official_margins() -> None:
    word = docx.Document(io.BytesIO(to_docx(DOC)))
    section = word.sections[0]
    # Word stores twentieths of a point: millimetres come back to a tenth
    lengths = (section.page_width, section.page_height, section.top_margin, section.bottom_margin,
               section.left_margin, section.right_margin)
    assert [round(length.mm, 1) if length is not None else None for length in lengths] == [210, 297, 37, 35, 28, 26]
    assert word.core_properties.title == DOC.title


def test_docx_title_is_centred_22pt_xiaobiaosong_and_the_body_16pt_fangsong() -> None:
    word = docx.Document(io.BytesIO(to_docx(DOC)))
    paragraphs = word.paragraphs
    title = paragraphs[0]
    assert title.text == DOC.title
    assert title.alignment == WD_ALIGN_PARAGRAPH.CENTER
    assert _east_asia(title) == {"方正小标宋简体"}
    assert {run.font.size for run in title.runs} == {Pt(22)}
    assert paragraphs[1].text == DOC.subtitle and _east_asia(paragraphs[1]) == {"楷体_GB2312"}
    by_text = {p.text: p for p in paragraphs}
    assert _east_asia(by_text["一、基本情况"]) == {"黑体"}
    assert _east_asia(by_text["（一）处置经过"]) == {"楷体_GB2312"}
    body = by_text["网民在微博发帖反映城关镇垃圾站异味扰民，阅读量1.2万。"]
    assert "评论多为附和。" in by_text  # each line of a paragraph is a paragraph of its own, indented
    assert _east_asia(body) == {"仿宋_GB2312"}
    assert {run.font.size for run in body.runs} == {Pt(16)}
    form = body.paragraph_format
    assert form.line_spacing_rule == WD_LINE_SPACING.EXACTLY and form.line_spacing == Pt(28)
    assert form.first_line_indent == Pt(32)
    properties = body.runs[0]._r.rPr
    assert properties is not None and properties.rFonts is not None
    run_fonts = properties.rFonts
    assert run_fonts.get(qn("w:ascii")) == "Times New Roman"
    assert not any(key.endswith("Theme") for key in run_fonts.attrib)


def test_docx_defaults_have_no_theme_fonts_and_the_font_table_names_alternates() -> None:
    data = to_docx(DOC)
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        styles = package.read("word/styles.xml").decode("utf-8")
        fonts = package.read("word/fontTable.xml").decode("utf-8")
        footer = next(package.read(n).decode("utf-8") for n in package.namelist() if n.startswith("word/footer"))
    defaults = styles[styles.index("<w:docDefaults>"): styles.index("</w:docDefaults>")]
    assert "Theme" not in defaults and 'w:eastAsia="仿宋_GB2312"' in defaults and 'w:eastAsia="zh-CN"' in defaults
    assert '<w:font w:name="方正小标宋简体"><w:altName w:val="黑体"/>' in fonts
    assert '<w:font w:name="仿宋_GB2312"><w:altName w:val="仿宋"/>' in fonts
    assert " PAGE " in footer and "— " in footer  # the page number "— N —"


def test_docx_table_has_borders_a_repeated_header_and_every_row() -> None:
    word = docx.Document(io.BytesIO(to_docx(DOC)))
    (table,) = word.tables
    assert [c.text for c in table.rows[0].cells] == list(TIMELINE.headers)
    assert [c.text for c in table.rows[30].cells] == list(TIMELINE.rows[29])
    assert len(table.rows) == 31
    borders = table._tbl.tblPr.find(qn("w:tblBorders"))
    assert {child.get(qn("w:val")) for child in borders} == {"single"} and len(borders) == 6
    header_row = table.rows[0]._tr.trPr
    assert header_row is not None and header_row.find(qn("w:tblHeader")) is not None
    header_run = table.rows[0].cells[0].paragraphs[0].runs[0]
    assert header_run._r.rPr.rFonts.get(qn("w:eastAsia")) == "黑体"
    widths = [column.width for column in table.columns]
    assert sum(widths) <= Mm(156) and widths[0] > widths[2]  # the time column is wider than the name's


def test_docx_signature_lines_are_right_aligned_and_blank_for_the_leader() -> None:
    word = docx.Document(io.BytesIO(to_docx(DOC)))
    last = word.paragraphs[-2:]
    assert [p.text for p in last] == ["拟稿人：李四", "签发：________"]
    assert {p.alignment for p in last} == {WD_ALIGN_PARAGRAPH.RIGHT}
    assert all(_east_asia(p) == {"仿宋_GB2312"} for p in last)


def test_docx_of_an_empty_late_document_opens() -> None:
    word = docx.Document(io.BytesIO(to_docx(Document("舆情日志", (), late=True))))
    assert word.paragraphs[0].text == "舆情日志（补发）"
