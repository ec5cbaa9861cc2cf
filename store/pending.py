"""Pending questions: the bot asked someone something and waits for the answer.

Keyed by platform+chat+user like an FSM storage, but in the database so a restart keeps them.
One question per person and chat: asking replaces the earlier one, so the most recent question is
the one a bare answer ("1", "同意") answers. Kinds: "grade" (handlers/report.py asks, grading.py
reads the answer), "swap" (handlers/roster.py), OFFER_REPORT (handlers/offer.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import PendingQuestion, table_of

# "Register this message as a report?" — payload: the text, the message id, and the item whose
# grade question it replaced, if any.
OFFER_REPORT = "offer_report"

_QUESTIONS = table_of(PendingQuestion)
# Built once (see store/dialect.Prepared): every 上报 and every answer runs them.
_REPLACE = delete(_QUESTIONS).where(
    _QUESTIONS.c.platform == bindparam("platform"),
    _QUESTIONS.c.chat_id == bindparam("chat_id"),
    _QUESTIONS.c.user_id.in_(bindparam("users", expanding=True)),
)
_ASK = insert(_QUESTIONS)
_OPEN_OF = select(_QUESTIONS.c.kind, _QUESTIONS.c.payload).where(
    _QUESTIONS.c.platform == bindparam("platform"),
    _QUESTIONS.c.chat_id == bindparam("chat_id"),
    _QUESTIONS.c.user_id == bindparam("user_id"),
    _QUESTIONS.c.expires_at > bindparam("now"),
)
_FIND = select(PendingQuestion).where(
    PendingQuestion.platform == bindparam("platform"),
    PendingQuestion.chat_id == bindparam("chat_id"),
    PendingQuestion.user_id == bindparam("user_id"),
)


async def ask(
    session: AsyncSession,
    *,
    platform: str,
    chat_id: str,
    users: Iterable[str],
    kind: str,
    item_id: int | None,
    asked_at: datetime,
    expires_at: datetime,
    payload: dict[str, Any] | None = None,
) -> None:
    """Put the question to each user, replacing any earlier question to the same user in that chat."""
    wanted = sorted(set(users))
    if not wanted:
        return
    await session.execute(_REPLACE, {"platform": platform, "chat_id": chat_id, "users": wanted})
    # One executemany, not one ORM INSERT per person: on SQLite the ORM must insert row by row to
    # read back each id, and every statement is a round trip on the message's hot path (every
    # 上报 asks 3–5 people). Nothing reads the new rows back as objects in this transaction.
    await session.execute(
        _ASK,
        [
            {
                "platform": platform, "chat_id": chat_id, "user_id": user, "kind": kind, "item_id": item_id,
                "payload": payload or {}, "asked_at": asked_at, "expires_at": expires_at,
            }
            for user in wanted
        ],
    )


async def find(session: AsyncSession, platform: str, chat_id: str, user_id: str) -> PendingQuestion | None:
    result = await session.execute(_FIND, {"platform": platform, "chat_id": chat_id, "user_id": user_id})
    return result.scalar_one_or_none()


async def open_question(
    session: AsyncSession, platform: str, chat_id: str, user_id: str, now: datetime
) -> tuple[str, dict[str, Any]] | None:
    """The kind and payload of the question put to the user that is still open, if any (a Core
    read for the hot path: `find` loads the ORM object, for callers that delete it)."""
    row = (await session.execute(
        _OPEN_OF, {"platform": platform, "chat_id": chat_id, "user_id": user_id, "now": now}
    )).first()
    return None if row is None else (str(row.kind), dict(row.payload or {}))


async def open_in_chat(session: AsyncSession, platform: str, chat_id: str, kind: str, now: datetime) -> int | None:
    """The item number of the latest open question of this kind put to anyone in the chat."""
    result = await session.execute(
        select(PendingQuestion.payload)
        .where(PendingQuestion.platform == platform, PendingQuestion.chat_id == chat_id,
               PendingQuestion.kind == kind, PendingQuestion.expires_at > now)
        .order_by(PendingQuestion.asked_at.desc(), PendingQuestion.id.desc())
        .limit(1)
    )
    payload = result.scalar_one_or_none()
    number = (payload or {}).get("number")
    return int(number) if number is not None else None


async def close_for_item(session: AsyncSession, item_id: int, kind: str) -> None:
    """The question was answered (by anyone asked, or by a command): nobody needs to answer it now."""
    await session.execute(
        delete(PendingQuestion).where(PendingQuestion.item_id == item_id, PendingQuestion.kind == kind)
    )


async def purge_expired(session: AsyncSession, before: datetime) -> int:
    """Drop questions expired before `before` (kept a while so a late answer gets a clear message)."""
    result = await session.execute(delete(PendingQuestion).where(PendingQuestion.expires_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
