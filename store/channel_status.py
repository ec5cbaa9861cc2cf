"""Last delivery outcome per channel and chat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import upsert_insert
from store.models import ChannelStatus


async def record(
    session: AsyncSession, *, channel: str, chat_id: str, now: datetime, ok: bool,
    error: str | None = None, config_error: bool = False,
) -> None:
    """Upsert the outcome (several workers may report for the same chat at once)."""
    values: dict[str, object] = (
        {"last_ok_at": now, "config_error": False}
        if ok
        else {"last_error_at": now, "last_error": error, "config_error": config_error}
    )
    statement = upsert_insert(session, ChannelStatus).values(
        channel=channel, chat_id=chat_id, **{"config_error": False, **values}
    )
    statement = statement.on_conflict_do_update(index_elements=["channel", "chat_id"], set_=values)
    await session.execute(statement)


async def all_rows(session: AsyncSession) -> list[ChannelStatus]:
    result = await session.execute(select(ChannelStatus).order_by(ChannelStatus.channel, ChannelStatus.chat_id))
    return list(result.scalars())
