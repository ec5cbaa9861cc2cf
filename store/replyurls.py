"""Reply URLs (WeCom response_url, DingTalk sessionWebhook) kept no longer than they are useful.

Such a URL lets whoever holds it post in the chat as the bot until it expires, so the outbox row
that carries it loses it as soon as it is spent: once the row is settled (sent, failed, cancelled,
merged into a digest), or once the URL has expired, whichever comes first.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import OutboxMessage

# Rows still to be delivered keep their URL while it is valid; any other status is settled.
_UNSETTLED = ("pending", "claimed")


async def erase_reply_urls(session: AsyncSession, now: datetime) -> int:
    """Null reply_url and reply_url_expires_at of rows already settled or whose URL has expired;
    returns how many rows lost one."""
    statement = (
        update(OutboxMessage)
        .where(
            OutboxMessage.reply_url.is_not(None),
            or_(
                OutboxMessage.status.not_in(_UNSETTLED),
                OutboxMessage.reply_url_expires_at.is_(None),
                OutboxMessage.reply_url_expires_at <= now,
            ),
        )
        .values(reply_url=None, reply_url_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
