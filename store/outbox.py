"""Outbox repository: idempotent enqueue and lease-based claiming.

Producers insert with the intent's idempotency key and ON CONFLICT DO NOTHING, so any number of
ticks or replicas create a notice once. Workers claim due rows with a lease; a crashed worker's
rows become claimable again when the lease runs out, and a worker that stops cleanly releases
its claims at once (`release_claims_of`). A notice a robot refuses for a configuration reason is
HELD, not failed: a periodic probe (`probe_held`) puts one back in line per chat, and the first
post the robot accepts again releases the rest (`unhold_chat`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Update, bindparam, case, func, or_, select, union_all, update
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
HELD = "held"  # refused by the robot for a configuration reason; sent once the robot accepts again
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
# Set in a session's info while handling a message replayed after an outage (see mark_delayed).
_DELAYED_NOTE = "outbox.delayed_note"


def _claimable(now: Any) -> ColumnElement[bool]:
    return or_(
        (OutboxMessage.status == PENDING) & (OutboxMessage.due_at <= now),
        (OutboxMessage.status == CLAIMED) & (OutboxMessage.lease_until < now),
    )


def _build_claim(dialect: ModuleType, *, some_chats: bool = False, skip_busy: bool = False) -> Update:
    now: BindParameter[datetime] = bindparam("p_now")
    limit: BindParameter[int] = bindparam("p_limit")
    # Two branches, each read in index order (ix_outbox_status_due) and cut at the limit, then the
    # oldest of both. One query with `pending and due or claimed and lapsed` cannot use the index
    # for its order: PostgreSQL read and sorted every due row on each claim — under a flood, when
    # thousands wait for a robot's rate budget, 9 ms a claim, several claims a second, and growing.
    due = select(OutboxMessage.id, OutboxMessage.due_at).where(
        OutboxMessage.status == PENDING, OutboxMessage.due_at <= now)
    lapsed = select(OutboxMessage.id, OutboxMessage.due_at).where(
        OutboxMessage.status == CLAIMED, OutboxMessage.lease_until < now)
    if some_chats:
        chats: BindParameter[Any] = bindparam("p_chats", expanding=True)
        due, lapsed = due.where(OutboxMessage.chat_id.in_(chats)), lapsed.where(OutboxMessage.chat_id.in_(chats))
    if skip_busy:
        # New rows for a robot this worker is already posting to (perhaps hanging on it) are left
        # for later or for another replica; a claim whose lease ran out is taken over all the same.
        due = due.where(OutboxMessage.chat_id.not_in(bindparam("p_busy", expanding=True)))
    branches = []
    for branch in (due, lapsed):
        branch = branch.order_by(OutboxMessage.due_at, OutboxMessage.id).limit(limit)
        if dialect is postgresql:
            # Replicas skip each other's locked rows instead of queueing behind them.
            branch = branch.with_for_update(skip_locked=True)
        branches.append(branch.subquery())
    both = union_all(*(select(b.c.id, b.c.due_at) for b in branches)).subquery()
    # A WITH query that locks rows is run once (PostgreSQL never inlines it). As a subquery of the
    # IN, the plan may run it again for each outer row, each time skipping what the last locked:
    # a claim of 4 was seen taking 5 rows (tests/test_outbox_claim_order.py).
    candidates = select(both.c.id).order_by(both.c.due_at, both.c.id).limit(limit).cte("claimable")
    return (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(select(candidates.c.id)), _claimable(now))
        .values(status=CLAIMED, claimed_by=bindparam("p_worker"), lease_until=bindparam("p_lease_until"),
                attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage)
        .execution_options(synchronize_session=False)
    )


_CLAIM = Prepared(_build_claim)
_CLAIM_SOME_CHATS = Prepared(lambda dialect: _build_claim(dialect, some_chats=True))
_CLAIM_SKIPPING = Prepared(lambda dialect: _build_claim(dialect, skip_busy=True))
_MINE = (_OUTBOX.c.id == bindparam("p_id")) & (_OUTBOX.c.claimed_by == bindparam("p_worker")) & (
    _OUTBOX.c.status == CLAIMED
)
# A settled row's reply URL is spent: erased with the settling (it lets its holder post as the bot).
_SPENT = {"reply_url": None, "reply_url_expires_at": None}
_SETTLE_SENT = update(_OUTBOX).where(_MINE).values(
    status=SENT, sent_at=bindparam("p_now"), last_error=bindparam("p_error"), lease_until=None, **_SPENT
)
_SETTLE_RETRY = update(_OUTBOX).where(_MINE).values(
    status=PENDING, due_at=bindparam("p_retry_at"), claimed_by=None, last_error=bindparam("p_error"), lease_until=None
)
_SETTLE_FINAL = update(_OUTBOX).where(_MINE).values(
    status=bindparam("p_status"), last_error=bindparam("p_error"), lease_until=None, **_SPENT
)
_SETTLE_HOLD = update(_OUTBOX).where(_MINE).values(
    status=HELD, claimed_by=None, last_error=bindparam("p_error"), lease_until=None, **_SPENT
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
    note = session.info.get(_DELAYED_NOTE)
    if note and (due_at is None or due_at <= now):
        text += note
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


async def enqueue_many(session: AsyncSession, messages: Sequence[dict[str, Any]], *, now: datetime) -> None:
    """`enqueue` for many messages in one executemany (each dict: key, chat_id, text, mentions and
    optionally item_id); a key already queued is skipped."""
    if not messages:
        return
    note = session.info.get(_DELAYED_NOTE) or ""
    await session.execute(_ENQUEUE.on(session), [
        {"key": m["key"], "chat_id": m["chat_id"], "text": m["text"] + note, "mentions": list(m["mentions"]),
         "item_id": m.get("item_id"), "created_at": now, "due_at": now, "status": PENDING, "attempts": 0,
         "reply_url": None, "reply_url_expires_at": None, "clock": None, "clock_due": None, "late": False}
        for m in messages
    ])
    session.info[_QUEUED] = True


def mark_delayed(session: AsyncSession, note: str) -> None:
    """The notices this transaction queues for now carry `note`: they come from a message kept
    in the spool during an outage and handled late. (Reminders for later are on time: unmarked.)"""
    session.info[_DELAYED_NOTE] = note


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
    chat_ids: Sequence[str] | None = None, busy_chats: Sequence[str] = (),
) -> list[OutboxMessage]:
    """Claim up to `limit` due rows (or rows whose lease ran out) for `worker`; due rows of
    `busy_chats` are skipped (their robot is busy with this worker's posts)."""
    params: dict[str, object] = {"p_now": now, "p_limit": limit, "p_worker": worker, "p_lease_until": now + lease}
    if chat_ids is not None:
        params["p_chats"] = list(chat_ids)
        statement = _CLAIM_SOME_CHATS.on(session)
    elif busy_chats:
        params["p_busy"] = list(busy_chats)
        statement = _CLAIM_SKIPPING.on(session)
    else:
        statement = _CLAIM.on(session)
    result = await session.execute(statement, params)
    return sorted(result.scalars(), key=lambda row: (row.due_at, row.id))


async def anything_to_claim(session: AsyncSession, *, now: datetime, busy_chats: Sequence[str] = ()) -> bool:
    """Whether `claim` would find a row: one read, for a caller that would otherwise take the
    writer only to claim nothing (SQLite has one writer, and each request's kick asked for it)."""
    candidates = select(OutboxMessage.id).where(_claimable(now))
    if busy_chats:
        candidates = candidates.where(
            or_(OutboxMessage.status != PENDING, OutboxMessage.chat_id.not_in(list(busy_chats))))
    return (await session.execute(candidates.limit(1))).first() is not None


async def finish(
    session: AsyncSession, row_id: int, *, worker: str, status: str, now: datetime,
    error: str | None = None, retry_at: datetime | None = None,
) -> bool:
    """Settle a claimed row; only the worker holding the claim may (a taken-over claim is not ours)."""
    params: dict[str, object] = {"p_id": row_id, "p_worker": worker, "p_error": error}
    if status == SENT:
        statement, params["p_now"] = _SETTLE_SENT, now
    elif status == HELD:
        statement = _SETTLE_HOLD
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
    values: dict[str, object] = {"status": status, "last_error": error, "lease_until": None, **_SPENT}
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
    session: AsyncSession, row_ids: Sequence[int], *, worker: str, due_at: datetime | None = None,
    error: str | None = None,
) -> int:
    """Put claimed rows back, unsent and not counted as an attempt (e.g. they wait for the rate
    budget until `due_at`, or the worker is stopping and leaves them due as they were): attempts
    drive the retry backoff, and waiting for a slot is not a failed delivery."""
    if not row_ids:
        return 0
    values: dict[str, object] = {
        "status": PENDING, "claimed_by": None, "lease_until": None, "last_error": error,
        "attempts": case((OutboxMessage.attempts > 0, OutboxMessage.attempts - 1), else_=0),
    }
    if due_at is not None:
        values["due_at"] = due_at
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(list(row_ids)), OutboxMessage.claimed_by == worker,
               OutboxMessage.status == CLAIMED)
        .values(**values)
    )
    return int(getattr(result, "rowcount", 0))


async def release_claims_of(session: AsyncSession, tag: str, *, error: str) -> int:
    """At a clean stop: put back every row still claimed by a run of this worker (each run's claim
    id ends with the worker's `tag` and "#<run>"), so another replica or the next start takes them
    at once instead of after the lease. A row whose post was cut off may have reached the platform:
    like one whose lease ran out, it is sent again (its attempt stays counted)."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == CLAIMED, OutboxMessage.claimed_by.contains(f"{tag}#", autoescape=True))
        .values(status=PENDING, claimed_by=None, lease_until=None, last_error=error)
    )
    return int(getattr(result, "rowcount", 0))


async def drop_reply_url(session: AsyncSession, row_id: int, *, worker: str) -> bool:
    """The platform refused the row's reply URL (used, expired, closed): from now on the row goes
    through the chat's robot, whose rate slots the worker reserves like for any notice."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.claimed_by == worker, OutboxMessage.status == CLAIMED)
        .values(reply_url=None, reply_url_expires_at=None)
    )
    return bool(getattr(result, "rowcount", 0))


async def probe_held(session: AsyncSession) -> list[str]:
    """Put one held row per chat back in line (due as it was, so at once): the next post tells
    whether the chat's robot accepts again. The row least tried goes first, so one message the
    robot refuses for its own sake (e.g. a DingTalk keyword setting) does not block the others.
    Returns the chats probed."""
    chats = list((await session.execute(
        select(OutboxMessage.chat_id).where(OutboxMessage.status == HELD).distinct()
    )).scalars())
    probed = []
    for chat_id in chats:
        first = (
            select(OutboxMessage.id)
            .where(OutboxMessage.chat_id == chat_id, OutboxMessage.status == HELD)
            .order_by(OutboxMessage.attempts, OutboxMessage.due_at, OutboxMessage.id)
            .limit(1)
        )
        if on_postgresql(session):
            first = first.with_for_update(skip_locked=True)
        row_id = (await session.execute(first)).scalar_one_or_none()
        if row_id is None:
            continue
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row_id, OutboxMessage.status == HELD).values(status=PENDING)
        )
        probed.append(chat_id)
    return probed


async def unhold_chat(session: AsyncSession, chat_id: str) -> int:
    """The chat's robot accepted a post again: its held rows go back in line, due as they were."""
    result = await session.execute(
        update(OutboxMessage).where(OutboxMessage.chat_id == chat_id, OutboxMessage.status == HELD)
        .values(status=PENDING)
    )
    return int(getattr(result, "rowcount", 0))


async def held_chats(session: AsyncSession) -> list[str]:
    result = await session.execute(select(OutboxMessage.chat_id).where(OutboxMessage.status == HELD).distinct())
    return list(result.scalars())


async def backlog(session: AsyncSession, now: datetime) -> tuple[int, datetime | None]:
    """How many messages are not yet delivered, and the due time of the oldest one that is due."""
    undelivered = OutboxMessage.status.in_([PENDING, CLAIMED])
    depth = (await session.execute(select(func.count()).where(undelivered))).scalar_one()
    oldest = (
        await session.execute(select(func.min(OutboxMessage.due_at)).where(undelivered, OutboxMessage.due_at <= now))
    ).scalar_one()
    return int(depth), oldest


async def key_exists(session: AsyncSession, key: str) -> bool:
    """Whether a message was ever queued under `key` (sent, held, failed or waiting)."""
    result = await session.execute(select(OutboxMessage.id).where(OutboxMessage.key == key))
    return result.first() is not None


async def enqueue_documents(session: AsyncSession, messages: Sequence[dict[str, Any]], *, now: datetime) -> None:
    """Queue webhook deliveries (handlers/ops/publish.py), each once per key, in one executemany
    (each dict: key, chat_id, text, item_id). Unlike a notice, the text goes as given: it is a JSON
    body signed when it is posted, and never takes the note of a message handled late."""
    if not messages:
        return
    await session.execute(_ENQUEUE.on(session), [
        {"key": m["key"], "chat_id": m["chat_id"], "text": m["text"], "mentions": [], "item_id": m.get("item_id"),
         "created_at": now, "due_at": now, "status": PENDING, "attempts": 0, "reply_url": None,
         "reply_url_expires_at": None, "clock": None, "clock_due": None, "late": False}
        for m in messages
    ])
    session.info[_QUEUED] = True
