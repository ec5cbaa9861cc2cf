"""Documents (handlers/records/document.py) as Markdown: a file, and the messages of a chat.

`to_markdown(doc)`: the whole document as a Markdown file (GitHub tables), for `-o FILE.md`.

`chat_parts(doc, limit_bytes)`: the document as chat messages, each at most `limit_bytes` UTF-8
bytes. Neither WeCom's nor DingTalk's robot Markdown draws tables, so a table becomes a header
line and one line per row, the cells parted by "｜". Messages are cut between blocks (a heading
is never left at the foot of a message without what follows it), inside a table between rows
(each continuation repeating the header line), and only a block longer than a whole message is
cut at line ends and then between characters — by the outbox's own splitter
(bot/channels/wecom_send.split_utf8). When there is more than one message, each starts with the
title and "（i/n）", so a reader can tell the parts of a long record among other posts.

`chat_replies(doc, config, chat)`: the replies for one chat (handlers/records/document.ChatWriter):
Markdown or plain text as the chat's channel posts, the limit that channel's robot takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from bot.channels.wecom_send import MARKDOWN_LIMIT, TEXT_LIMIT, split_utf8, utf8_size
from domain.config import ChatConfig, Config
from domain.messages import Reply
from domain.vocab import Platform
from handlers.records.document import Block, Document, Heading, Paragraph, Signature, Table

CELL_SEPARATOR = "｜"
EMPTY_CELL = "—"
LATE = "（补发）"
# DingTalk takes 20,000 bytes of serialized JSON per post: newlines escape to two bytes (four
# with the Markdown hard break), and the title and the `at` object take their share.
DINGTALK_LIMIT = 15_000
# Room left in every message for the @-mentions the sender appends to the last one.
MENTION_RESERVE = 256
MIN_BUDGET = 200  # below this a message could not hold a line of a table: a caller's mistake


# -- cells ----------------------------------------------------------------------------------------------


def cell_text(value: str | int | float | None) -> str:
    """A cell as text: None is empty; a float shows at most two decimals (93.333 → 93.33, 2.0 → 2)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def title_of(doc: Document) -> str:
    return doc.title + (LATE if doc.late else "")


# -- the file -------------------------------------------------------------------------------------------


def to_markdown(doc: Document) -> str:
    """The document as a Markdown file: # title, ## 一、 sections, ### （一） subsections, tables."""
    out = [f"# {title_of(doc)}"]
    if doc.subtitle:
        out.append(doc.subtitle)
    out += [_file_block(block) for block in doc.blocks]
    return "\n\n".join(out) + "\n"


def _file_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * (block.level + 1)} {block.text}"
    if isinstance(block, Paragraph):
        # A single line break is no break in Markdown: the two trailing spaces keep the writer's.
        return block.text.replace("\n", "  \n")
    if isinstance(block, Table):
        return _file_table(block)
    return "  \n".join(block.lines)


def _file_table(table: Table) -> str:
    def row(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    lines = [row(table.headers), "|" + "|".join("---" for _ in table.headers) + "|"]
    lines += [row(tuple(cell_text(value) for value in values)) for values in table.rows]
    return "\n".join(lines)


# -- the chat -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    """A piece a message may end after: a block, or one row of a table (`header` is the table's
    header line, repeated when a message starts inside the table)."""

    text: str
    glue: str  # what joins it to the chunk before it in the same message
    heading: bool = False
    header: str | None = None


def chat_parts(doc: Document, limit_bytes: int, *, markdown: bool = True) -> list[str]:
    """The document as chat messages of at most `limit_bytes` UTF-8 bytes each (see the module's
    docstring); plain text when not `markdown` (a channel that posts text would show the marks)."""
    title = title_of(doc)
    budget = limit_bytes - utf8_size(_strong(f"{title}（99/99）", markdown) + "\n\n")
    if budget < MIN_BUDGET:
        raise ValueError(f"limit_bytes {limit_bytes} cannot hold the title and a line")
    opening = _strong(title, markdown) + (f"\n{doc.subtitle}" if doc.subtitle else "")
    chunks = [_Chunk(opening, "")]
    for block in doc.blocks:
        chunks += _chat_chunks(block, markdown)
    messages = _pack(_fitting(chunks, budget), budget)
    if len(messages) == 1:
        return messages
    count = len(messages)

    def numbered(index: int) -> str:
        return _strong(f"{title}（{index}/{count}）", markdown)

    # The first message opens with the title already; the others get it as their first line.
    first = numbered(1) + messages[0].removeprefix(_strong(title, markdown))
    return [first] + [f"{numbered(index)}\n\n{text}" for index, text in enumerate(messages[1:], 2)]


def _strong(text: str, markdown: bool) -> str:
    return f"**{text}**" if markdown else text


def _chat_chunks(block: Block, markdown: bool) -> list[_Chunk]:
    if isinstance(block, Heading):
        return [_Chunk(_strong(block.text, markdown), "\n\n", heading=True)]
    if isinstance(block, Paragraph):
        return [_Chunk(block.text, "\n\n")]
    if isinstance(block, Signature):
        return [_Chunk("\n".join(block.lines), "\n\n")]
    header = CELL_SEPARATOR.join(block.headers)
    if not block.rows:
        return [_Chunk(header, "\n\n")]
    rows = [CELL_SEPARATOR.join(cell_text(v).replace("\n", " ") or EMPTY_CELL for v in values)
            for values in block.rows]
    # The header travels with the first row: a message never ends on a table's header alone.
    return [_Chunk(f"{header}\n{rows[0]}", "\n\n"), *(_Chunk(row, "\n", header=header) for row in rows[1:])]


def _fitting(chunks: list[_Chunk], budget: int) -> Iterator[_Chunk]:
    """Chunks of at most `budget` bytes (with a repeated table header): a longer one is cut."""
    for chunk in chunks:
        room = budget - (utf8_size(chunk.header) + 1 if chunk.header else 0)
        if utf8_size(chunk.text) <= room:
            yield chunk
            continue
        pieces = split_utf8(chunk.text, room)
        yield _Chunk(pieces[0], chunk.glue, chunk.heading, chunk.header)
        for piece in pieces[1:]:
            yield _Chunk(piece, "\n", chunk.heading, chunk.header)


def _pack(chunks: Iterator[_Chunk], budget: int) -> list[str]:
    """Fill messages in order; a message that would end on a heading hands it to the next."""
    messages: list[list[_Chunk]] = [[]]
    for chunk in chunks:
        current = messages[-1]
        if not current or utf8_size(_join([*current, chunk])) <= budget:
            current.append(chunk)
            continue
        carried = [current.pop()] if len(current) > 1 and current[-1].heading else []
        opener = _Chunk(f"{chunk.header}\n{chunk.text}", "\n\n") if chunk.header else chunk
        following = [*carried, opener]
        if utf8_size(_join(following)) > budget:  # the heading and its text cannot share: as it was
            current += carried
            following = [opener]
        messages.append(following)
    return [_join(message) for message in messages if message]


def _join(chunks: list[_Chunk]) -> str:
    text = chunks[0].text
    for chunk in chunks[1:]:
        text += chunk.glue + chunk.text
    return text


# -- one chat's replies -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatFormat:
    limit_bytes: int
    markdown: bool


def chat_format(config: Config, chat: ChatConfig) -> ChatFormat:
    """How the chat's channel posts (bot/channels/*_send.py): WeCom's group robot takes 4,096 bytes
    of Markdown or 2,048 of text, DingTalk's custom robot 20,000 bytes of JSON; a chat no channel
    serves (the local simulator) is shown as a WeCom text chat would be."""
    channel = next((c for c in config.channels if chat.id in c.chats), None)
    markdown = channel is not None and channel.message_format == "markdown"
    if chat.platform is Platform.DINGTALK:
        limit = DINGTALK_LIMIT
    else:
        limit = MARKDOWN_LIMIT if markdown else TEXT_LIMIT
    return ChatFormat(limit - MENTION_RESERVE, markdown)


def chat_replies(doc: Document, config: Config, chat: ChatConfig) -> tuple[Reply, ...]:
    """The replies that post `doc` in `chat`, the document's @-mentions on the last."""
    form = chat_format(config, chat)
    parts = chat_parts(doc, form.limit_bytes, markdown=form.markdown)
    return (*(Reply(part) for part in parts[:-1]), Reply(parts[-1], doc.mentions()))
