"""Who is calling: the bearer token, its scopes, and its rate limit."""

from __future__ import annotations

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


async def caller_of(request: web.Request, db: Database, now: datetime) -> Caller:
    """The verified caller, or 401. The token is checked before the body is read."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", UNAUTHORIZED, headers=CHALLENGE)
    # Read first: a write transaction per request (SQLite's one writer) only to note the token's use
    # would queue every request behind every other; the use is written at most once a minute.
    async with db.read() as session:
        found = await api_tokens.verify(session, token.strip(), now, touch=False)
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
