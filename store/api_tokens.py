"""Intake-API tokens: created, verified, listed and revoked.

A token is `dtb_` + 32 random bytes in URL-safe base64 (43 characters, no padding). Only its
SHA-256 is stored: the token has 256 bits of entropy, so a fast hash cannot be brute-forced and a
slow password hash would only cost every request time. The first characters (`prefix`) find the
row; the digests are then compared in constant time. Creating and revoking write an audit entry
in the same transaction, so no caller can change a token without a trace.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.vocab import Scope
from store import audit
from store.models import ApiToken, table_of

TOKEN_PREFIX = "dtb_"
TOKEN_BYTES = 32
PREFIX_LENGTH = 12  # "dtb_" and 8 random characters: 48 bits, enough to tell tokens apart
# Anything else is refused before the database is asked.
TOKEN_SHAPE = re.compile(r"dtb_[A-Za-z0-9_-]{43}")
# last_used_at is for operators ("is this token still in use?"): a minute's precision is plenty,
# and a write per request would not be.
TOUCH_INTERVAL = timedelta(minutes=1)
CREATED = "api_token_created"
REVOKED = "api_token_revoked"


class Used(Protocol):
    @property
    def last_used_at(self) -> datetime | None: ...


class LiveToken(NamedTuple):
    """A verified, unrevoked token as a request needs it (read without the ORM: it is read on
    every request)."""

    id: int
    source: str
    scopes: list[str]
    last_used_at: datetime | None


_T = table_of(ApiToken).c


def digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _new_plaintext() -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode()


async def _by_prefix(session: AsyncSession, prefix: str) -> ApiToken | None:
    result = await session.execute(select(ApiToken).where(ApiToken.prefix == prefix))
    return result.scalar_one_or_none()


def _detail(token: ApiToken) -> str:
    return f"来源：{token.source}；前缀：{token.prefix}；权限：{'、'.join(token.scopes)}"


def _summary(token: ApiToken) -> dict[str, object]:
    return {"token_id": token.id, "source": token.source, "prefix": token.prefix, "scopes": list(token.scopes)}


async def create(
    session: AsyncSession, source: str, scopes: Sequence[Scope], now: datetime, created_by: str
) -> tuple[ApiToken, str]:
    """A new token for `source` with `scopes`: the row, and the plaintext — the only time it exists."""
    if not scopes:
        raise ValueError("a token needs at least one scope")
    plaintext = _new_plaintext()
    # 48 random bits make a clash of prefixes all but impossible; should one happen, draw again
    # rather than fail on the unique constraint half-way through the caller's transaction.
    while await _by_prefix(session, plaintext[:PREFIX_LENGTH]) is not None:
        plaintext = _new_plaintext()
    token = ApiToken(
        source=source, scopes=[s.value for s in Scope if s in scopes], prefix=plaintext[:PREFIX_LENGTH],
        token_hash=digest(plaintext), created_at=now, created_by=created_by,
    )
    session.add(token)
    await session.flush()
    await audit.record(session, at=now, actor=created_by, action=CREATED, detail=_detail(token), after=_summary(token))
    return token, plaintext


async def verify(session: AsyncSession, plaintext: str, now: datetime) -> ApiToken | None:
    """The live token `plaintext` is, or None (unknown, wrong, malformed or revoked), marked used
    (at most once per TOUCH_INTERVAL): call it inside a transaction to keep that. Reads alone go
    through `verify_many`."""
    if not TOKEN_SHAPE.fullmatch(plaintext):
        return None
    presented = digest(plaintext)
    token = await _by_prefix(session, plaintext[:PREFIX_LENGTH])
    if token is None or not hmac.compare_digest(token.token_hash, presented) or token.revoked_at is not None:
        return None
    if needs_touch(token, now):
        token.last_used_at = now
        await session.flush()
    return token


async def verify_many(session: AsyncSession, plaintexts: Iterable[str]) -> dict[str, LiveToken]:
    """The live tokens among `plaintexts` (unknown, wrong, malformed and revoked ones are left out),
    in one query whatever their number: the API checks the tokens of concurrent requests together
    (bot/api/auth.py). Read only: the use is marked by `verify` in a transaction of its own."""
    wanted = {plaintext: plaintext[:PREFIX_LENGTH] for plaintext in plaintexts if TOKEN_SHAPE.fullmatch(plaintext)}
    if not wanted:
        return {}
    rows = await session.execute(
        select(_T.id, _T.source, _T.scopes, _T.last_used_at, _T.prefix, _T.token_hash)
        .where(_T.prefix.in_(sorted(set(wanted.values()))), _T.revoked_at.is_(None)))
    by_prefix = {row.prefix: row for row in rows}
    found: dict[str, LiveToken] = {}
    for plaintext, prefix in wanted.items():
        row = by_prefix.get(prefix)
        if row is not None and hmac.compare_digest(row.token_hash, digest(plaintext)):
            found[plaintext] = LiveToken(row.id, row.source, list(row.scopes), row.last_used_at)
    return found


def needs_touch(token: Used, now: datetime) -> bool:
    """Whether the token's last use is older than TOUCH_INTERVAL (and so is to be written)."""
    return token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL


def allows(token: ApiToken, scope: Scope) -> bool:
    return scope.value in token.scopes


async def list_all(session: AsyncSession) -> list[ApiToken]:
    """Every token, revoked ones too (they stay as the record of who could send what), oldest first."""
    result = await session.execute(select(ApiToken).order_by(ApiToken.id))
    return list(result.scalars())


async def find(session: AsyncSession, key: int | str) -> ApiToken | None:
    """A token by its id, its prefix, or the whole token (an operator may paste what they hold)."""
    if isinstance(key, int):
        return await session.get(ApiToken, key)
    if TOKEN_SHAPE.fullmatch(key):
        token = await _by_prefix(session, key[:PREFIX_LENGTH])
        return token if token is not None and hmac.compare_digest(token.token_hash, digest(key)) else None
    return await _by_prefix(session, key)


async def revoke(session: AsyncSession, key: int | str, now: datetime, by: str) -> ApiToken | None:
    """Revoke the token `key` names (see `find`); None when there is none. A token revoked
    before is returned as it is (its revoked_at tells when), with nothing written."""
    token = await find(session, key)
    if token is None or token.revoked_at is not None:
        return token
    token.revoked_at = now
    token.revoked_by = by
    await session.flush()
    await audit.record(session, at=now, actor=by, action=REVOKED, detail=_detail(token),
                       before={"revoked_at": None}, after=_summary(token) | {"revoked_at": now.isoformat()})
    return token
