"""Last delivery outcome per channel and chat."""

from __future__ import annotations

from datetime import datetime
from types import ModuleType
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import Prepared
from store.models import ChannelStatus, table_of

_STATUS = table_of(ChannelStatus)
_OK_COLUMNS = ("last_ok_at", "config_error")
_ERROR_COLUMNS = ("last_error_at", "last_error", "config_error")


def _build_record(dialect: ModuleType, columns: tuple[str, ...]) -> Any:
    """INSERT … ON CONFLICT DO UPDATE of `columns` with the inserted values, built once."""
    statement = dialect.insert(_STATUS)
    return statement.on_conflict_do_update(
        index_elements=["channel", "chat_id"], set_={name: statement.excluded[name] for name in columns}
    )


# After every post (the chat's delivery status), so built once (see store/dialect.Prepared).
_RECORD_OK = Prepared(lambda dialect: _build_record(dialect, _OK_COLUMNS))
_RECORD_ERROR = Prepared(lambda dialect: _build_record(dialect, _ERROR_COLUMNS))


async def record(
    session: AsyncSession, *, channel: str, chat_id: str, now: datetime, ok: bool,
    error: str | None = None, config_error: bool = False,
) -> None:
    """Upsert the outcome (several workers may report for the same chat at once)."""
    if ok:
        await session.execute(
            _RECORD_OK.on(session), {"channel": channel, "chat_id": chat_id, "last_ok_at": now, "config_error": False}
        )
        return
    await session.execute(
        _RECORD_ERROR.on(session),
        {"channel": channel, "chat_id": chat_id, "last_error_at": now, "last_error": error,
         "config_error": config_error},
    )


async def all_rows(session: AsyncSession) -> list[ChannelStatus]:
    result = await session.execute(select(ChannelStatus).order_by(ChannelStatus.channel, ChannelStatus.chat_id))
    return list(result.scalars())
