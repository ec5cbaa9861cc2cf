"""Documents (handlers/records/document.py) as Word files in the official layout (GB/T 9704-2012,
the 党政机关公文格式 offices follow for what they hand to leaders).

A4; margins 37 / 35 / 28 / 26 mm (top / bottom / left / right); the title in 方正小标宋简体 22pt
(二号), centred; the body in 仿宋_GB2312 16pt (三号), lines exactly 28pt apart, paragraphs indented
two characters; 一、 headings in 黑体 and （一） headings in 楷体_GB2312; tables with borders and a
header row repeated on each page; the page number "— N —" centred in the footer in 宋体 14pt.

Chinese font names are set on every run as w:eastAsia (Word picks the font of CJK text from that
attribute, not from w:ascii, which is what python-docx's `font.name` sets) and the theme fonts of
the default template are removed, for a theme font overrides a named one. An office without
方正小标宋简体 or the _GB2312 fonts gets the alternate named in the font table (黑体, 仿宋, 楷体):
Word's substitution reads w:altName there.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

from docx import Document as new_document
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.oxml import serialize_part_xml
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Emu, Mm, Pt
from docx.table import Table as DocxTable
from docx.text.paragraph import Paragraph as DocxParagraph
from docx.text.run import Run

from bot.documents.markdown import cell_text, title_of
from bot.documents.tables import display_width
from handlers.records.document import Document, Heading, Paragraph, Signature, Table

TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
HEADING_FONT = "黑体"
SUBHEADING_FONT = "楷体_GB2312"
PAGE_NUMBER_FONT = "宋体"
WESTERN_FONT = "Times New Roman"  # digits and Latin letters in the body, as offices set them
# Fonts an office may lack, and what Word should use instead.
ALTERNATES = {TITLE_FONT: "黑体", BODY_FONT: "仿宋", SUBHEADING_FONT: "楷体", HEADING_FONT: "SimHei",
              PAGE_NUMBER_FONT: "SimSun"}

TITLE_SIZE = Pt(22)  # 二号
BODY_SIZE = Pt(16)  # 三号
TABLE_SIZE = Pt(12)  # 小四: a timeline of six columns fits the width of the page
PAGE_NUMBER_SIZE = Pt(14)  # 四号
LINE = Pt(28)  # fixed line spacing: 22 lines to the page
TITLE_LINE = Pt(35)  # a 22pt title does not fit in 28pt lines
TABLE_LINE = Pt(20)
INDENT = Pt(32)  # two characters of 16pt

PAGE_WIDTH, PAGE_HEIGHT = Mm(210), Mm(297)
MARGINS = {"top": Mm(37), "bottom": Mm(35), "left": Mm(28), "right": Mm(26)}
FOOTER_DISTANCE = Mm(23)  # the page number 7 mm below the text area
TEXT_WIDTH = PAGE_WIDTH - MARGINS["left"] - MARGINS["right"]
LONG_TOKEN = re.compile(r"[!-~]{25,}")  # a link: 25 or more ASCII characters no line breaks inside
MAX_COLUMN_WEIGHT = 30  # a long 说明 wraps in its column instead of squeezing the others


def to_docx(doc: Document) -> bytes:
    """The document as a .docx file."""
    word = new_document()
    _page(word)
    _defaults(word)
    _title(word, doc)
    for block in doc.blocks:
        if isinstance(block, Heading):
            _heading(word, block)
        elif isinstance(block, Paragraph):
            for line in block.text.split("\n"):
                _body(word.add_paragraph(), line)
        elif isinstance(block, Table):
            _table(word, block)
        else:
            _signature(word, block)
    word.core_properties.title = title_of(doc)
    word.core_properties.author = "舆情值班助手"
    word.core_properties.last_modified_by = "舆情值班助手"
    out = io.BytesIO()
    word.save(out)
    return out.getvalue()


# -- page and defaults ------------------------------------------------------------------------------------


def _page(word: DocxDocument) -> None:
    section = word.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = PAGE_WIDTH, PAGE_HEIGHT
    section.top_margin, section.bottom_margin = MARGINS["top"], MARGINS["bottom"]
    section.left_margin, section.right_margin = MARGINS["left"], MARGINS["right"]
    section.footer_distance = FOOTER_DISTANCE
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _spacing(footer, None)
    _run(footer, "— ", PAGE_NUMBER_FONT, PAGE_NUMBER_SIZE)
    _page_field(_run(footer, "", PAGE_NUMBER_FONT, PAGE_NUMBER_SIZE))
    _run(footer, " —", PAGE_NUMBER_FONT, PAGE_NUMBER_SIZE)


def _page_field(run: Run) -> None:
    """The PAGE field in `run`: Word and LibreOffice write each page's own number there."""
    begin, separate, end = (OxmlElement("w:fldChar") for _ in range(3))
    begin.set(qn("w:fldCharType"), "begin")
    separate.set(qn("w:fldCharType"), "separate")
    end.set(qn("w:fldCharType"), "end")
    instruction = OxmlElement("w:instrText")
    instruction.set(qn("xml:space"), "preserve")
    instruction.text = " PAGE "
    shown = OxmlElement("w:t")
    shown.text = "1"
    for element in (begin, instruction, separate, shown, end):
        run._r.append(element)


def _defaults(word: DocxDocument) -> None:
    """The body's font and spacing as the document's defaults, without the template's theme fonts,
    and Chinese as the East Asian language (for line breaking and punctuation)."""
    defaults = word.styles.element.find(qn("w:docDefaults"))
    if defaults is not None:
        for fonts in defaults.iter(qn("w:rFonts")):
            if isinstance(fonts, BaseOxmlElement):
                _set_fonts(fonts, BODY_FONT)
        for lang in defaults.iter(qn("w:lang")):
            lang.set(qn("w:eastAsia"), "zh-CN")
    normal = word.styles["Normal"]
    normal.font.size = BODY_SIZE
    _set_fonts(normal.element.get_or_add_rPr().get_or_add_rFonts(), BODY_FONT)
    paragraph = normal.paragraph_format
    paragraph.space_before = paragraph.space_after = Pt(0)
    paragraph.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    paragraph.line_spacing = LINE
    _alternates(word)


def _alternates(word: DocxDocument) -> None:
    """Declare the fonts with their alternates in the font table (see the module's docstring)."""
    part = word.part.part_related_by(RT.FONT_TABLE)
    table = parse_xml(part.blob)
    for name, alternate in ALTERNATES.items():
        font = OxmlElement("w:font")
        font.set(qn("w:name"), name)
        for tag, value in (("w:altName", alternate), ("w:charset", "86"), ("w:family", "modern"),
                           ("w:pitch", "variable")):
            element = OxmlElement(tag)
            element.set(qn("w:val"), value)
            font.append(element)
        table.append(font)
    # The font table is a plain part to python-docx (no XML object of its own): its bytes are replaced.
    part._blob = serialize_part_xml(table)


# -- runs and paragraphs ----------------------------------------------------------------------------------


def _set_fonts(fonts: BaseOxmlElement, east_asia: str) -> None:
    """Name the fonts on a w:rFonts: CJK text in `east_asia`, the rest in Times New Roman."""
    for theme in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(theme), None)
    fonts.set(qn("w:ascii"), WESTERN_FONT)
    fonts.set(qn("w:hAnsi"), WESTERN_FONT)
    fonts.set(qn("w:cs"), WESTERN_FONT)
    fonts.set(qn("w:eastAsia"), east_asia)


def _run(paragraph: DocxParagraph, text: str, font: str, size: Pt, *, bold: bool = False) -> Run:
    run = paragraph.add_run(text)
    run.font.size = size
    run.font.bold = bold
    _set_fonts(run._r.get_or_add_rPr().get_or_add_rFonts(), font)
    return run


def _spacing(paragraph: DocxParagraph, line: Pt | None, *, indent: bool = False) -> None:
    form = paragraph.paragraph_format
    form.space_before = form.space_after = Pt(0)
    if line is None:
        form.line_spacing = 1.0
    else:
        form.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        form.line_spacing = line
    form.first_line_indent = INDENT if indent else Pt(0)


def _title(word: DocxDocument, doc: Document) -> None:
    title = word.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _spacing(title, TITLE_LINE)
    _run(title, title_of(doc), TITLE_FONT, TITLE_SIZE)
    if doc.subtitle:
        subtitle = word.add_paragraph()
        subtitle.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _spacing(subtitle, LINE)
        _run(subtitle, doc.subtitle, SUBHEADING_FONT, BODY_SIZE)
    _spacing(word.add_paragraph(), LINE)  # one empty line between the title and the text


def _heading(word: DocxDocument, heading: Heading) -> None:
    paragraph = word.add_paragraph()
    _spacing(paragraph, LINE, indent=True)
    paragraph.paragraph_format.keep_with_next = True
    _run(paragraph, heading.text, HEADING_FONT if heading.level <= 1 else SUBHEADING_FONT, BODY_SIZE)


def _body(paragraph: DocxParagraph, text: str) -> None:
    # Justified, as official text is; but a line holding a long link cannot break inside it, and
    # justifying the line before it would spread its characters across the page.
    long_token = LONG_TOKEN.search(text) is not None
    paragraph.alignment = WD_ALIGN_PARAGRAPH.LEFT if long_token else WD_ALIGN_PARAGRAPH.JUSTIFY
    _spacing(paragraph, LINE, indent=True)
    _run(paragraph, text, BODY_FONT, BODY_SIZE)


def _signature(word: DocxDocument, signature: Signature) -> None:
    """The lines left for signing, right-aligned under the text after an empty line (落款)."""
    _spacing(word.add_paragraph(), LINE)
    for line in signature.lines:
        paragraph = word.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        _spacing(paragraph, LINE)
        paragraph.paragraph_format.right_indent = INDENT
        paragraph.paragraph_format.keep_with_next = True
        _run(paragraph, line, BODY_FONT, BODY_SIZE)


# -- tables -----------------------------------------------------------------------------------------------


def _table(word: DocxDocument, table: Table) -> None:
    rows = [[cell_text(value) for value in values] for values in table.rows]
    grid = word.add_table(rows=1 + len(rows), cols=len(table.headers))
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    grid.autofit = False
    _borders(grid)
    widths = _widths(table, rows)
    for index, width in enumerate(widths):
        grid.columns[index].width = width
    for row_index, values in enumerate([list(table.headers), *rows]):
        cells = grid.rows[row_index].cells
        for index, value in enumerate(values):
            cells[index].width = widths[index]
            paragraph = cells[index].paragraphs[0]
            _spacing(paragraph, TABLE_LINE)
            header = row_index == 0
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER if header else WD_ALIGN_PARAGRAPH.LEFT
            _run(paragraph, value, HEADING_FONT if header else BODY_FONT, TABLE_SIZE)
    _repeat_header(grid)
    _spacing(word.add_paragraph(), LINE)  # the text goes on after an empty line


def _borders(grid: DocxTable) -> None:
    """Single ½-pt lines round every cell, set on the table itself (not left to a style)."""
    properties = grid._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        line = OxmlElement(f"w:{edge}")
        for attribute, value in (("w:val", "single"), ("w:sz", "4"), ("w:space", "0"), ("w:color", "000000")):
            line.set(qn(attribute), value)
        borders.append(line)
    properties.append(borders)


def _repeat_header(grid: DocxTable) -> None:
    """The header row again at the top of each page; no row split across pages."""
    for index, row in enumerate(grid.rows):
        properties = row._tr.get_or_add_trPr()
        keep = OxmlElement("w:cantSplit")
        properties.append(keep)
        if index == 0:
            properties.append(OxmlElement("w:tblHeader"))


def _widths(table: Table, rows: Sequence[Sequence[str]]) -> list[Emu]:
    """Column widths over the text width, in proportion to `Table.widths` or to the content."""
    if len(table.widths) == len(table.headers):
        weights = [max(1, width) for width in table.widths]
    else:
        weights = []
        for index, header in enumerate(table.headers):
            longest = max([display_width(header), *(display_width(row[index]) for row in rows)])
            weights.append(min(max(longest, 4), MAX_COLUMN_WEIGHT))
    total = sum(weights)
    return [Emu(int(TEXT_WIDTH * weight / total)) for weight in weights]
