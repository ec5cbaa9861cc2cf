"""The intake API's grouped token checks (bot/api/auth.TokenChecks): concurrent requests share one
read, each gets the answer for its own token, a request never takes its answer from a read begun
before it arrived (so a revocation is seen at once), and a failed read fails every request waiting
on it without stopping the next. On SQLite and PostgreSQL through the real ORM; the store's
verify_many is only wrapped to count and to hold a read open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.api.auth import TokenChecks
from domain.vocab import Scope
from store import api_tokens
from store.db import Database
from tests.conftest import START

Verify = Callable[[AsyncSession, Iterable[str]], Awaitable[dict[str, api_tokens.LiveToken]]]


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


async def _token(db: Database, source: str) -> str:
    async with db.transaction() as session:
        _, plaintext = await api_tokens.create(session, source, [Scope.ITEMS_WRITE], START, "test")
    return plaintext


async def _revoke(db: Database, plaintext: str) -> None:
    async with db.transaction() as session:
        assert await api_tokens.revoke(session, plaintext, START, "test") is not None


class Reads:
    """verify_many, counted: each call's tokens; optionally held open after its query ran."""

    def __init__(self, real: Verify) -> None:
        self.real = real
        self.calls: list[set[str]] = []
        self.hold: asyncio.Event | None = None  # the next call waits for it after its query
        self.queried = asyncio.Event()
        self.fail_next: Exception | None = None

    async def __call__(self, session: AsyncSession, plaintexts: Iterable[str]) -> dict[str, api_tokens.LiveToken]:
        wanted, hold, self.hold = set(plaintexts), self.hold, None
        self.calls.append(wanted)
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure
        found = await self.real(session, wanted)
        self.queried.set()
        if hold is not None:
            await hold.wait()
        return found

    def arm(self) -> asyncio.Event:
        """Hold the next read open after its query, until the returned event is set."""
        self.hold, self.queried = asyncio.Event(), asyncio.Event()
        return self.hold


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    spy = Reads(api_tokens.verify_many)
    monkeypatch.setattr(api_tokens, "verify_many", spy)
    return spy


async def test_concurrent_checks_share_reads_and_each_gets_its_own_answer(db: Database, reads: Reads) -> None:
    live_a, live_b, revoked = (await _token(db, "监测系统A"), await _token(db, "监测系统B"),
                               await _token(db, "旧系统"))
    await _revoke(db, revoked)
    wrong = live_a[:-4] + ("AAAA" if not live_a.endswith("AAAA") else "BBBB")  # right prefix, wrong secret
    asked = [live_a, live_b, revoked, wrong, "not-a-token"] * 8
    checks = TokenChecks(db)

    # Requests that arrive together are answered by one read.
    together = await asyncio.gather(*(checks.live(token) for token in asked))
    # Requests that arrive while a read runs wait for the next one, and share it.
    hold = reads.arm()
    first = asyncio.create_task(checks.live(live_b))
    await reads.queried.wait()
    meanwhile = [asyncio.create_task(checks.live(token)) for token in asked]
    for _ in range(5):
        await asyncio.sleep(0)
    hold.set()
    later = [await first, *(await asyncio.gather(*meanwhile))]

    def sources(answers: list[api_tokens.LiveToken | None]) -> list[str | None]:
        return [answer.source if answer is not None else None for answer in answers]

    assert sources(together) == ["监测系统A", "监测系统B", None, None, None] * 8
    assert sources(later) == ["监测系统B", *(["监测系统A", "监测系统B", None, None, None] * 8)]
    everything = {live_a, live_b, revoked, wrong, "not-a-token"}
    assert reads.calls == [everything, {live_b}, everything]


async def test_a_request_waits_for_a_read_begun_after_it_so_a_revocation_counts_at_once(
        db: Database, reads: Reads) -> None:
    token = await _token(db, "监测系统")
    checks = TokenChecks(db)
    hold = reads.arm()
    first = asyncio.create_task(checks.live(token))
    await reads.queried.wait()  # the first read saw the token live and is still open

    await _revoke(db, token)
    second = asyncio.create_task(checks.live(token))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not second.done()  # it did not take the running read's answer

    hold.set()
    # The first request came before the revocation: the read begun for it answers live.
    assert (await first) is not None
    # The second waited for the next read, which sees the revocation.
    assert (await second) is None
    assert reads.calls == [{token}, {token}]


async def test_a_failed_read_fails_every_waiting_request_and_the_next_read_runs(db: Database, reads: Reads) -> None:
    token = await _token(db, "监测系统")
    checks = TokenChecks(db)
    reads.fail_next = OperationalError("SELECT", {}, Exception("database is locked"))

    failed = await asyncio.gather(*(checks.live(token) for _ in range(3)), return_exceptions=True)

    # The three were waiting on the one read: each learns of its failure (the API answers 503).
    assert [type(answer) for answer in failed] == [OperationalError] * 3
    # The failure stopped nothing: the next request starts a read of its own.
    answer = await checks.live(token)
    assert answer is not None and answer.source == "监测系统"
    assert reads.calls == [{token}, {token}]
