"""Outbox repository: idempotent enqueue and lease-based claiming.

Producers insert with the intent's idempotency key and ON CONFLICT DO NOTHING, so any number of
ticks or replicas create a notice once. Workers claim due rows with a lease; a crashed worker's
rows become claimable again when the lease runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Update, and_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import Prepared, on_postgresql
from store.models import OutboxMessage, table_of

PENDING = "pending"
CLAIMED = "claimed"
SENT = "sent"
FAILED = "failed"
CANCELLED = "cancelled"  # a reminder whose clock stopped (or whose deadline moved) before sending
MERGED = "merged"  # folded into a digest because the chat's backlog outgrew its rate budget
DIGEST_PREFIX = "digest:"  # the key of a digest (bot/outbox.py)

_OUTBOX = table_of(OutboxMessage)
# The statements of every reply and notice, built once (see store/dialect.Prepared). Bound
# parameters are named p_* so that they never clash with the columns an UPDATE sets.
_ENQUEUE = Prepared(lambda dialect: dialect.insert(_OUTBOX).on_conflict_do_nothing(index_elements=["key"]))
_ENQUEUE_CLAIMED = Prepared(
    lambda dialect: dialect.insert(_OUTBOX).on_conflict_do_nothing(index_elements=["key"]).returning(_OUTBOX.c.id)
)
# Set in a session's info when a transaction queued a message for a worker to claim.
_QUEUED = "outbox.queued"


def _claimable(now: Any) -> ColumnElement[bool]:
    return or_(
        (OutboxMessage.status == PENDING) & (OutboxMessage.due_at <= now),
        (OutboxMessage.status == CLAIMED) & (OutboxMessage.lease_until < now),
    )


def _build_claim(dialect: ModuleType, *, some_chats: bool = False) -> Update:
    now: BindParameter[datetime] = bindparam("p_now")
    candidates = select(OutboxMessage.id).where(_claimable(now))
    if some_chats:
        candidates = candidates.where(OutboxMessage.chat_id.in_(bindparam("p_chats", expanding=True)))
    candidates = candidates.order_by(OutboxMessage.due_at, OutboxMessage.id).limit(bindparam("p_limit"))
    if dialect is postgresql:
        # Replicas skip each other's locked rows instead of queueing behind them.
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(candidates.scalar_subquery()), _claimable(now))
        .values(status=CLAIMED, claimed_by=bindparam("p_worker"), lease_until=bindparam("p_lease_until"),
                attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )


_CLAIM = Prepared(_build_claim)
_CLAIM_SOME_CHATS = Prepared(lambda dialect: _build_claim(dialect, some_chats=True))
_MINE = (_OUTBOX.c.id == bindparam("p_id")) & (_OUTBOX.c.claimed_by == bindparam("p_worker")) & (
    _OUTBOX.c.status == CLAIMED
)
_SETTLE_SENT = update(_OUTBOX).where(_MINE).values(
    status=SENT, sent_at=bindparam("p_now"), last_error=bindparam("p_error"), lease_until=None
)
_SETTLE_RETRY = update(_OUTBOX).where(_MINE).values(
    status=PENDING, due_at=bindparam("p_retry_at"), claimed_by=None, last_error=bindparam("p_error"), lease_until=None
)
_SETTLE_FINAL = update(_OUTBOX).where(_MINE).values(
    status=bindparam("p_status"), last_error=bindparam("p_error"), lease_until=None
)
_RENEW = update(_OUTBOX).where(_MINE).values(lease_until=bindparam("p_lease_until"))


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    chat_id: str,
    text: str,
    mentions: Sequence[str],
    now: datetime,
    due_at: datetime | None = None,
    item_id: int | None = None,
    reply_url: str | None = None,
    reply_url_expires_at: datetime | None = None,
    clock: str | None = None,
    clock_due: datetime | None = None,
    late: bool = False,
) -> bool:
    """Queue a message once per key. Returns False when the key already existed."""
    values = {
        "key": key, "chat_id": chat_id, "text": text, "mentions": list(mentions), "item_id": item_id,
        "created_at": now, "due_at": due_at or now, "status": PENDING, "attempts": 0,
        "reply_url": reply_url, "reply_url_expires_at": reply_url_expires_at,
        "clock": clock, "clock_due": clock_due, "late": late,
    }
    result = await session.execute(_ENQUEUE.on(session), values)
    queued = bool(getattr(result, "rowcount", 0))
    if queued:
        session.info[_QUEUED] = True
    return queued


def queued_in(session: AsyncSession) -> bool:
    """Whether this session's transaction queued a message for a worker to claim (`enqueue`)."""
    return bool(session.info.get(_QUEUED))


async def enqueue_claimed(
    session: AsyncSession, *, key: str, chat_id: str, text: str, mentions: Sequence[str], now: datetime,
    claimed_by: str, lease_until: datetime, reply_url: str | None = None,
    reply_url_expires_at: datetime | None = None,
) -> OutboxMessage | None:
    """Queue a reply already claimed by `claimed_by`, who posts it once this transaction commits:
    the queuing transaction is its claim. Returns the row (not attached to the session), or None
    when the key already existed. If the claimant dies first, the lease runs out and any worker
    takes the row over, as with any claim."""
    values = {
        "key": key, "chat_id": chat_id, "text": text, "mentions": list(mentions), "item_id": None,
        "created_at": now, "due_at": now, "status": CLAIMED, "attempts": 1, "claimed_by": claimed_by,
        "lease_until": lease_until, "reply_url": reply_url, "reply_url_expires_at": reply_url_expires_at,
        "clock": None, "clock_due": None, "late": False,
    }
    row_id = (await session.execute(_ENQUEUE_CLAIMED.on(session), values)).scalar_one_or_none()
    return None if row_id is None else OutboxMessage(id=row_id, **values)


async def claim(
    session: AsyncSession, *, worker: str, now: datetime, lease: timedelta, limit: int = 50,
    chat_ids: Sequence[str] | None = None,
) -> list[OutboxMessage]:
    """Claim up to `limit` due rows (or rows whose lease ran out) for `worker`."""
    params: dict[str, object] = {"p_now": now, "p_limit": limit, "p_worker": worker, "p_lease_until": now + lease}
    if chat_ids is not None:
        params["p_chats"] = list(chat_ids)
    statement = (_CLAIM if chat_ids is None else _CLAIM_SOME_CHATS).on(session)
    result = await session.execute(statement, params)
    return sorted(result.scalars(), key=lambda row: (row.due_at, row.id))


async def finish(
    session: AsyncSession, row_id: int, *, worker: str, status: str, now: datetime,
    error: str | None = None, retry_at: datetime | None = None,
) -> bool:
    """Settle a claimed row; only the worker holding the claim may (a taken-over claim is not ours)."""
    params: dict[str, object] = {"p_id": row_id, "p_worker": worker, "p_error": error}
    if status == SENT:
        statement, params["p_now"] = _SETTLE_SENT, now
    elif retry_at is not None:
        statement, params["p_retry_at"] = _SETTLE_RETRY, retry_at
    else:
        statement, params["p_status"] = _SETTLE_FINAL, status
    result = await session.execute(statement, params)
    return bool(getattr(result, "rowcount", 0))


async def finish_many(
    session: AsyncSession, row_ids: Sequence[int], *, worker: str, status: str, now: datetime, error: str | None = None
) -> list[int]:
    """Settle claimed rows in one statement (SENT or a final status); returns the ids that were ours."""
    if not row_ids:
        return []
    values: dict[str, object] = {"status": status, "last_error": error, "lease_until": None}
    if status == SENT:
        values["sent_at"] = now
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(list(row_ids)), OutboxMessage.claimed_by == worker,
               OutboxMessage.status == CLAIMED)
        .values(**values)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def renew(session: AsyncSession, row_id: int, *, worker: str, now: datetime, lease: timedelta) -> bool:
    """Extend our claim just before sending; False when it is no longer ours.

    A worker delivers its claimed batch one row after another: a row near the end of a slow batch
    may have outlived its lease and been taken over by another replica, which sends it too. The
    conditional UPDATE either extends the claim (the taker's claim re-checks the lease and skips
    the row) or finds the row gone to someone else.
    """
    result = await session.execute(_RENEW, {"p_id": row_id, "p_worker": worker, "p_lease_until": now + lease})
    return bool(getattr(result, "rowcount", 0))


async def release(
    session: AsyncSession, row_ids: Sequence[int], *, worker: str, due_at: datetime, error: str | None = None
) -> int:
    """Put claimed rows back, unsent and not counted as an attempt (e.g. they wait for the rate
    budget): attempts drive the retry backoff, and waiting for a slot is not a failed delivery."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(list(row_ids)), OutboxMessage.claimed_by == worker,
               OutboxMessage.status == CLAIMED)
        .values(status=PENDING, due_at=due_at, claimed_by=None, lease_until=None, last_error=error,
                attempts=case((OutboxMessage.attempts > 0, OutboxMessage.attempts - 1), else_=0))
    )
    return int(getattr(result, "rowcount", 0))


async def backlog(session: AsyncSession, now: datetime) -> tuple[int, datetime | None]:
    """How many messages are not yet delivered, and the due time of the oldest one that is due."""
    undelivered = OutboxMessage.status.in_([PENDING, CLAIMED])
    depth = (await session.execute(select(func.count()).where(undelivered))).scalar_one()
    oldest = (
        await session.execute(select(func.min(OutboxMessage.due_at)).where(undelivered, OutboxMessage.due_at <= now))
    ).scalar_one()
    return int(depth), oldest


def _foldable(chat_id: str, now: datetime) -> ColumnElement[bool]:
    """The chat's due, unclaimed messages that may go into a digest. Digests themselves never do:
    a digest folded into another would keep only its header line and lose the items it carries."""
    return and_(
        OutboxMessage.chat_id == chat_id, OutboxMessage.status == PENDING, OutboxMessage.due_at <= now,
        OutboxMessage.key.not_like(f"{DIGEST_PREFIX}%"),
    )


async def take_pending_for_chat(session: AsyncSession, chat_id: str, now: datetime, limit: int) -> list[OutboxMessage]:
    """Atomically take the chat's due, unclaimed messages (for a digest): they become MERGED.

    Call it in the transaction that also queues the digest (or puts the rows back): rows left
    MERGED without a digest would never be sent.
    """
    ids = (
        select(OutboxMessage.id)
        .where(_foldable(chat_id, now))
        .order_by(OutboxMessage.due_at, OutboxMessage.id)
        .limit(limit)
    )
    if on_postgresql(session):
        ids = ids.with_for_update(skip_locked=True)
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids.scalar_subquery()), OutboxMessage.status == PENDING)
        .values(status=MERGED, lease_until=None)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )
    return sorted(result.scalars(), key=lambda row: (row.due_at, row.id))


async def count_due_for_chat(session: AsyncSession, chat_id: str, now: datetime) -> int:
    result = await session.execute(select(func.count()).where(_foldable(chat_id, now)))
    return int(result.scalar_one())


async def mark_merged(session: AsyncSession, ids: Sequence[int], status: str) -> None:
    """Settle rows taken for a digest: back to PENDING (not folded after all) or CANCELLED."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(list(ids)), OutboxMessage.status == MERGED)
        .values(status=status)
    )
