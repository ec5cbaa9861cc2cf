"""Pending questions: the bot asked someone something and waits for the answer.

Keyed by platform+chat+user like an FSM storage, but in the database so a restart keeps them.
One question per person and chat: asking replaces the earlier one, so the most recent question is
the one a bare answer ("1", "同意") answers. The kinds and their payload models are in
domain/dialogues.py; every payload is validated as it is written and as it is read back, so a
question read here is either typed (`Question`) or reported as `Unreadable`, never half-read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.dialogues import (
    DialogueKind,
    DialoguePayload,
    GradeQuestion,
    UnreadableDialogue,
    dump_payload,
    read_payload,
)
from store.models import PendingQuestion, table_of

P = TypeVar("P", bound=DialoguePayload, covariant=True)

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
_CURRENT = select(
    _QUESTIONS.c.id, _QUESTIONS.c.kind, _QUESTIONS.c.payload, _QUESTIONS.c.item_id, _QUESTIONS.c.asked_at,
    _QUESTIONS.c.expires_at,
).where(
    _QUESTIONS.c.platform == bindparam("platform"),
    _QUESTIONS.c.chat_id == bindparam("chat_id"),
    _QUESTIONS.c.user_id == bindparam("user_id"),
)
_CLOSE = delete(_QUESTIONS).where(_QUESTIONS.c.id == bindparam("question_id"))


@dataclass(frozen=True)
class Question(Generic[P]):
    """An open (or expired, not yet purged) question, its payload validated."""

    id: int
    kind: DialogueKind
    payload: P
    item_id: int | None
    asked_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Unreadable:
    """A stored question that fits no model of this release (see domain/dialogues.py)."""

    id: int
    kind: str
    error: str


async def ask(
    session: AsyncSession,
    *,
    platform: str,
    chat_id: str,
    users: Iterable[str],
    kind: DialogueKind | str,
    item_id: int | None,
    asked_at: datetime,
    expires_at: datetime,
    payload: DialoguePayload | Mapping[str, Any] | None = None,
) -> None:
    """Put the question to each user, replacing any earlier question to the same user in that chat.
    The payload (its model, or the same fields as a mapping) must fit the kind's model: a question
    that could not be read back is refused here (UnreadableDialogue), before it is stored."""
    wanted = sorted(set(users))
    if not wanted:
        return
    stored = dump_payload(read_payload(kind, payload))
    await session.execute(_REPLACE, {"platform": platform, "chat_id": chat_id, "users": wanted})
    # One executemany, not one ORM INSERT per person: on SQLite the ORM must insert row by row to
    # read back each id, and every statement is a round trip on the message's hot path (every
    # 上报 asks 3–5 people). Nothing reads the new rows back as objects in this transaction.
    await session.execute(
        _ASK,
        [
            {
                "platform": platform, "chat_id": chat_id, "user_id": user, "kind": str(kind), "item_id": item_id,
                "payload": stored, "asked_at": asked_at, "expires_at": expires_at,
            }
            for user in wanted
        ],
    )


async def current(
    session: AsyncSession, platform: str, chat_id: str, user_id: str
) -> Question[DialoguePayload] | Unreadable | None:
    """The question put to the user in this chat, expired or not (an answer to an expired question
    is told so), validated."""
    row = (await session.execute(
        _CURRENT, {"platform": platform, "chat_id": chat_id, "user_id": user_id}
    )).first()
    if row is None:
        return None
    try:
        payload = read_payload(str(row.kind), row.payload)
    except UnreadableDialogue as exc:
        return Unreadable(int(row.id), str(row.kind), str(exc))
    return Question(int(row.id), DialogueKind(row.kind), payload, row.item_id, row.asked_at, row.expires_at)


async def close(session: AsyncSession, question_id: int) -> None:
    """The question was answered (or could not be read): it is no longer open."""
    await session.execute(_CLOSE, {"question_id": question_id})


async def open_question(
    session: AsyncSession, platform: str, chat_id: str, user_id: str, now: datetime
) -> tuple[str, dict[str, Any]] | None:
    """The kind and payload of the question put to the user that is still open, if any (a Core
    read for the hot path). A question that cannot be read counts as none: it is replaced by the
    next question put to the user, and answered politely if the user answers it."""
    row = (await session.execute(
        _OPEN_OF, {"platform": platform, "chat_id": chat_id, "user_id": user_id, "now": now}
    )).first()
    if row is None:
        return None
    try:
        payload = read_payload(str(row.kind), row.payload)
    except UnreadableDialogue:
        return None
    return str(row.kind), dump_payload(payload)


async def open_in_chat(session: AsyncSession, platform: str, chat_id: str, kind: str, now: datetime) -> int | None:
    """The item number of the latest open grade question put to anyone in the chat (`kind` must be
    DialogueKind.GRADE: the only kind about an item)."""
    result = await session.execute(
        select(PendingQuestion.payload)
        .where(PendingQuestion.platform == platform, PendingQuestion.chat_id == chat_id,
               PendingQuestion.kind == kind, PendingQuestion.expires_at > now)
        .order_by(PendingQuestion.asked_at.desc(), PendingQuestion.id.desc())
        .limit(1)
    )
    raw = result.scalar_one_or_none()
    if raw is None:
        return None
    try:
        payload = read_payload(kind, raw)
    except UnreadableDialogue:
        return None
    return payload.number if isinstance(payload, GradeQuestion) else None


async def close_for_item(session: AsyncSession, item_id: int, kind: str) -> None:
    """The question was answered (by anyone asked, or by a command): nobody needs to answer it now."""
    await session.execute(
        delete(PendingQuestion).where(PendingQuestion.item_id == item_id, PendingQuestion.kind == kind)
    )


async def purge_expired(session: AsyncSession, before: datetime) -> int:
    """Drop questions expired before `before` (kept a while so a late answer gets a clear message)."""
    result = await session.execute(delete(PendingQuestion).where(PendingQuestion.expires_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
