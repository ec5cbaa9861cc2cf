"""A record as a document, independent of its format.

The business layer builds a `Document` (a 日志, a 专报, a 通报, an audit export); the runtime
writes it: Markdown for the chat (split to the platform's byte limits), DOCX in official layout
for leaders, XLSX/CSV for the tables (bot/documents/). One model, so every format says the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from domain.config import ChatConfig, Config
from domain.messages import Reply


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 1  # 1: 一、 sections; 2: （一） subsections (the numbering is in the text)


@dataclass(frozen=True)
class Paragraph:
    text: str
    mentions: tuple[str, ...] = ()  # person ids @-mentioned when the document is posted in a chat


@dataclass(frozen=True)
class Table:
    """One table: a sheet of its own in XLSX (named `name`), a table in DOCX and Markdown."""

    name: str  # the sheet's name (≤ 31 characters, no []:*?/\)
    headers: tuple[str, ...]
    rows: tuple[tuple[str | int | float | None, ...], ...]
    widths: tuple[int, ...] = ()  # column widths in characters for XLSX (empty: from the content)


@dataclass(frozen=True)
class Signature:
    """The lines left blank for signature at the end of a 专报 (拟稿, 审核/签发)."""

    lines: tuple[str, ...]


Block = Heading | Paragraph | Table | Signature


@dataclass(frozen=True)
class Document:
    title: str
    blocks: Sequence[Block] = field(default_factory=tuple)
    subtitle: str = ""  # e.g. the issuing office and date line under the title
    late: bool = False  # a scheduled post made after its time (补发): the title says so when posted

    def tables(self) -> list[Table]:
        return [block for block in self.blocks if isinstance(block, Table)]

    def mentions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for b in self.blocks if isinstance(b, Paragraph) for p in b.mentions))


class ChatWriter(Protocol):
    """How a document is posted in one chat: the replies, Markdown or plain text as the chat's
    channel posts, each within the platform's byte limit, the document's mentions on the last.

    The writer is the runtime's (bot/documents/markdown.py `chat_replies`, which knows the
    platforms' limits); handlers may not import the runtime, so a chat router that answers with
    a document receives it when the app includes the router (bot/runtime.py build_dispatcher)."""

    def __call__(self, doc: Document, config: Config, chat: ChatConfig) -> tuple[Reply, ...]: ...
