"""Engine, transactions and migrations.

One `Database` per process. Writes go through `transaction()`: on SQLite a process-wide lock
makes the single writer explicit (SQLite allows one writer at a time; queuing in asyncio is
cheaper and fairer than spinning on "database is locked"), and BEGIN IMMEDIATE takes the write
lock up front so a second process (a CLI command next to the server) waits instead of failing
half-way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.sqlite:
            _prepare_sqlite_file(url)
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine = create_async_engine(url, **kwargs)
        if self.sqlite:
            _sqlite_pragmas(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on any error."""
        if self.sqlite:
            async with self._write_lock, self.sessions() as session, session.begin():
                yield session
        else:
            async with self.sessions() as session, session.begin():
                yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; it never takes the writer lock."""
        async with self.sessions() as session:
            yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def upgrade(self) -> None:
        """Apply Alembic migrations up to head (safe to call from several instances at once)."""
        async with self.engine.connect() as conn:
            if not self.sqlite:
                # Serialise concurrent upgrades from several replicas starting together.
                await conn.execute(text("SELECT pg_advisory_lock(4242001)"))
            try:
                await conn.run_sync(_upgrade_sync)
                await conn.commit()
            finally:
                if not self.sqlite:
                    await conn.execute(text("SELECT pg_advisory_unlock(4242001)"))
                    await conn.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade_sync(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
