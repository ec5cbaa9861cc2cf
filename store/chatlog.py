"""The per-chat message log (what was said where, in order)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import ChatMessage, table_of

# Built once: a chat-log line is written for every message in and every message out.
_APPEND = insert(table_of(ChatMessage))


async def append(
    session: AsyncSession,
    *,
    chat_id: str,
    at: datetime,
    sender: str,
    text: str,
    mentions: Sequence[str] = (),
    kind: str,
) -> None:
    """Add a chat-log line (a Core INSERT: nothing reads the line back as an object)."""
    await session.execute(
        _APPEND,
        {"chat_id": chat_id, "at": at, "sender": sender, "text": text, "mentions": list(mentions), "kind": kind},
    )


async def after(session: AsyncSession, chat_id: str, seq: int, limit: int = 500) -> list[ChatMessage]:
    result = await session.execute(
        select(ChatMessage)
        .where(ChatMessage.chat_id == chat_id, ChatMessage.seq > seq)
        .order_by(ChatMessage.seq)
        .limit(limit)
    )
    return list(result.scalars())
