"""The per-chat message log (what was said where, in order)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import ChatMessage


async def append(
    session: AsyncSession,
    *,
    chat_id: str,
    at: datetime,
    sender: str,
    text: str,
    mentions: Sequence[str] = (),
    kind: str,
    flush: bool = True,
) -> ChatMessage:
    """Add a chat-log line; with `flush=False` its INSERT waits for the transaction's next flush."""
    message = ChatMessage(chat_id=chat_id, at=at, sender=sender, text=text, mentions=list(mentions), kind=kind)
    session.add(message)
    if flush:
        await session.flush()
    return message


async def after(session: AsyncSession, chat_id: str, seq: int, limit: int = 500) -> list[ChatMessage]:
    result = await session.execute(
        select(ChatMessage)
        .where(ChatMessage.chat_id == chat_id, ChatMessage.seq > seq)
        .order_by(ChatMessage.seq)
        .limit(limit)
    )
    return list(result.scalars())
