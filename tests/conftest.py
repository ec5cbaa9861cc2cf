"""Shared fixtures: the database matrix (SQLite and PostgreSQL), the bot behind a real aiohttp
test server with a manual clock, and a guard against any non-loopback network call.

PostgreSQL: DUTYBOT_TEST_PG_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test).
Each test session creates its own database on that server and drops it at the end. When the
server is unreachable the PostgreSQL half is skipped with the reason shown — except under CI,
where it fails: CI must never go green without having run it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.app import create_app
from bot.clock import ManualClock
from bot.runtime import RUNTIME, Runtime
from domain.config import Config, load_config
from store.db import Database
from store.models import Base

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = ROOT / "config.example.toml"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Monday morning, local time; tests move the clock from here.
START = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
PG_URL = os.environ.get("DUTYBOT_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
T = TypeVar("T")
# Every table but the counters (reset to 0 instead): a table a migration adds is emptied too.
TABLES = [table.name for table in Base.metadata.sorted_tables if table.name != "counters"]


# -- network guard ----------------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise RuntimeError(f"test tried to reach a non-loopback address: {address!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


# -- PostgreSQL ------------------------------------------------------------------------------------


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def _create_pg_database() -> str:
    name = f"dutybot_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    await db.upgrade()
    await db.dispose()
    return url


async def _drop_pg_database(url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _run_apart(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on its own loop in a thread (callers may be inside a loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    try:
        url = _run_apart(_create_pg_database())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = f"PostgreSQL at {PG_URL} is not reachable: {exc!r}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run the PostgreSQL tests)")
        pytest.skip(reason)
    yield url
    _run_apart(_drop_pg_database(url))


async def _truncate(url: str) -> None:
    db = Database(url)
    async with db.transaction() as session:
        await session.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        await session.execute(text("UPDATE counters SET value = 0"))
    await db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database: a new SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'dutybot.db'}"
        return
    url: str = request.getfixturevalue("pg_database")
    await _truncate(url)
    yield url


# -- the bot -----------------------------------------------------------------------------------------


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Config:
    config = load_config(EXAMPLE_CONFIG).with_database(db_url)
    # Each test its own spool: a message one test kept must never be replayed into another's database.
    spool = config.spool.model_copy(update={"directory": str(tmp_path / "spool")})
    return config.model_copy(update={"spool": spool})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@dataclass
class Bot:
    """A running bot behind a real HTTP server, scripted like a chat."""

    client: TestClient[web.Request, web.Application]
    clock: ManualClock
    config: Config

    @property
    def runtime(self) -> Runtime:
        return self.client.app[RUNTIME]  # type: ignore[index]

    async def post(self, chat: str, sender: str, text: str) -> list[dict[str, Any]]:
        response = await self.client.post("/local/messages", json={"chat": chat, "sender": sender, "text": text})
        assert response.status == 200, await response.text()
        body = await response.json()
        replies: list[dict[str, Any]] = body["replies"]
        return replies

    async def say(self, sender: str, text: str, chat: str = "wecom_duty") -> dict[str, Any]:
        """Send a message and return the one reply it must produce."""
        replies = await self.post(chat, sender, text)
        assert len(replies) == 1, replies
        return replies[0]

    async def messages(self, chat: str, after: int = 0) -> list[dict[str, Any]]:
        response = await self.client.get("/local/messages", params={"chat": chat, "after": str(after)})
        assert response.status == 200, await response.text()
        body = await response.json()
        result: list[dict[str, Any]] = body["messages"]
        return result


async def start_bot(
    config: Config, clock: ManualClock, environ: Mapping[str, str] | None = None
) -> TestClient[web.Request, web.Application]:
    """The bot behind a real test server; channels see only `environ` (never the real environment)."""
    client: TestClient[web.Request, web.Application] = TestClient(
        TestServer(create_app(config, clock=clock, scheduler=False, environ=environ or {}, simulator=True))
    )
    await client.start_server()
    return client


@pytest.fixture
async def bot(config: Config, clock: ManualClock) -> AsyncIterator[Bot]:
    client = await start_bot(config, clock)
    try:
        yield Bot(client, clock, config)
    finally:
        await client.close()
