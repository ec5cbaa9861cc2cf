"""Who is calling: the bearer token, its scopes, and its rate limit."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from bot.api.errors import ApiError
from domain.vocab import Scope
from store import api_tokens
from store.db import Database
from store.models import ApiToken

UNAUTHORIZED = ("未提供有效的接口令牌：请在请求头写 Authorization: Bearer <令牌>"
                "（令牌用 dutybot api token create 生成）。")
REVOKED_OR_WRONG = "接口令牌无效或已吊销。"
FORBIDDEN = "该令牌没有“{scope}”权限。"
RATE_LIMITED = "请求过于频繁：每个令牌每分钟至多 {limit} 次，请 {seconds} 秒后重试。"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dutybot"'}


@dataclass(frozen=True)
class Caller:
    token_id: int
    source: str
    scopes: frozenset[str]

    def require(self, scope: Scope) -> None:
        if scope.value not in self.scopes:
            raise ApiError(403, "forbidden", FORBIDDEN.format(scope=scope.value))

    def may(self, scope: Scope) -> bool:
        return scope.value in self.scopes


class TokenChecks:
    """The token checks of concurrent requests, answered by one read of the database.

    Every request used to open a read transaction of its own only to look its token up, and that
    cost as much as the item it brought. Here a request that finds no read running starts one; the
    requests that arrive meanwhile wait for the next, which reads all their tokens at once. The
    next, not the running one: a read that began before a request arrived could predate a
    revocation the request is entitled to see, so each request's answer comes from a read begun
    after it came — as exact as a read of its own (a revoked token is refused at once)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: dict[str, list[asyncio.Future[api_tokens.LiveToken | None]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def live(self, plaintext: str) -> api_tokens.LiveToken | None:
        """The live token `plaintext` is, or None (unknown, wrong, malformed or revoked)."""
        answer: asyncio.Future[api_tokens.LiveToken | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(plaintext, []).append(answer)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._run(), name="api-token-checks")
        return await asyncio.shield(answer)

    async def _run(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                async with self._db.read() as session:
                    found = await api_tokens.verify_many(session, batch)
            except BaseException as exc:  # every waiting request learns it (503: database unavailable)
                for answers in batch.values():
                    for answer in answers:
                        if not answer.done():
                            answer.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for plaintext, answers in batch.items():
                for answer in answers:
                    if not answer.done():
                        answer.set_result(found.get(plaintext))


async def caller_of(request: web.Request, checks: TokenChecks, db: Database, now: datetime) -> Caller:
    """The verified caller, or 401. The token is checked before the body is read."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", UNAUTHORIZED, headers=CHALLENGE)
    # Read first: a write transaction per request (SQLite's one writer) only to note the token's use
    # would queue every request behind every other; the use is written at most once a minute.
    found: api_tokens.LiveToken | ApiToken | None = await checks.live(token.strip())
    if found is not None and api_tokens.needs_touch(found, now):
        async with db.transaction() as session:
            found = await api_tokens.verify(session, token.strip(), now)
    if found is None:
        raise ApiError(401, "unauthorized", REVOKED_OR_WRONG, headers=CHALLENGE)
    return Caller(found.id, found.source, frozenset(found.scopes))


@dataclass
class RateLimiter:
    """At most `per_minute` requests per token in any 60 seconds (this process; a sliding log).
    Uses the monotonic clock: it limits real request rates, whatever the bot's clock says."""

    per_minute: int
    _log: dict[int, deque[float]] = field(default_factory=dict)

    def check(self, token_id: int) -> None:
        now = time.monotonic()
        log = self._log.setdefault(token_id, deque())
        while log and log[0] <= now - 60:
            log.popleft()
        if len(log) >= self.per_minute:
            wait = max(1, math.ceil(log[0] + 60 - now))
            raise ApiError(429, "rate_limited", RATE_LIMITED.format(limit=self.per_minute, seconds=wait),
                           headers={"Retry-After": str(wait)})
        log.append(now)
