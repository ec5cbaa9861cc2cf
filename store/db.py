"""Engine, transactions and migrations.

One `Database` per process. Writes go through `transaction()`: on SQLite a process-wide lock
makes the single writer explicit (SQLite allows one writer at a time; queuing in asyncio is
cheaper and fairer than spinning on "database is locked"), and BEGIN IMMEDIATE takes the write
lock up front so a second process (a CLI command next to the server) makes us wait instead of
failing half-way. Reads (`read()`) begin deferred: in WAL mode they never wait for a writer.
SQLite statements run on the event-loop thread (`store/sqlite_inline.py`); waiting for another
process's lock is an `asyncio.sleep`, and WAL checkpoints run in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from store.sqlite_inline import inline_creator, is_busy

MIGRATIONS = Path(__file__).parent / "migrations"
# How long a writer waits for another process's SQLite write lock before giving up (the same as
# the busy timeout a threaded driver would have had).
BUSY_WAIT_SECONDS = 10.0
# At most one WAL checkpoint per this many seconds, and only after commits.
CHECKPOINT_INTERVAL = 1.0
# The execution option that marks a connection as the writer's (BEGIN IMMEDIATE on SQLite).
WRITER = "dutybot_writer"

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_path(url: str) -> str:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError("SQLite needs a file: sqlite+aiosqlite:///PATH")
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    return database


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # No busy handler: it would block the event loop. Database._begin_writing waits instead.
        cursor.execute("PRAGMA busy_timeout=0")
        # Checkpoints (and their fsyncs) run in a thread: _Checkpointer below.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front (a second writer waits in Database, instead of
        # failing half-way); a reader begins deferred: in WAL mode it never waits for a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITER) else "BEGIN")


# The health probe's write: bumps a counters row (created by the migrations' seed or here).
_PROBE = text(
    "INSERT INTO counters (name, value) VALUES (:name, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1"
)
PROBE_SECONDS = 2.0
CONNECT_SECONDS = 10.0
STATEMENT_SECONDS = 60.0  # no statement of the bot's takes near this; a migration's neither


class Database:
    def __init__(self, url: str, *, echo: bool = False, lock_wait_seconds: float | None = None) -> None:
        """`lock_wait_seconds`: on PostgreSQL, a statement waiting longer than this for a lock
        fails at once on the server (lock_timeout) — the bot keeps the message elsewhere instead of
        cancelling a query from the client, whose connection would stay busy until the lock went."""
        self.url = url
        self.sqlite = is_sqlite(url)
        # Statement parameters carry message text and reply URLs: never in an error message or a log.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        self.path = _sqlite_path(url) if self.sqlite else None
        if self.path is not None:
            kwargs.update(async_creator=inline_creator(self.path))
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
            # An unreachable server (packets dropped, no reset) would keep a connect or a statement
            # waiting until the kernel gives up, hours later: bound both, so that a job fails and
            # tries again on its next run instead of hanging.
            connect_args: dict[str, Any] = {"timeout": CONNECT_SECONDS, "command_timeout": STATEMENT_SECONDS}
            if lock_wait_seconds is not None:
                connect_args["server_settings"] = {"lock_timeout": f"{max(1, round(lock_wait_seconds * 1000))}ms"}
            kwargs.update(connect_args=connect_args)
        self.engine = create_async_engine(url, **kwargs)
        if self.sqlite:
            _sqlite_pragmas(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()
        self._checkpointer: _Checkpointer | None = _Checkpointer(self.path) if self.path else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on any error."""
        if not self.sqlite:
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock:
            session = await self._begin_writing()
            async with session:
                try:
                    yield session
                except BaseException:
                    await session.rollback()
                    raise
                await session.commit()
        if self._checkpointer is not None:
            self._checkpointer.after_commit()

    async def _begin_writing(self) -> AsyncSession:
        """A session holding SQLite's write lock (BEGIN IMMEDIATE, from the "begin" event).

        Another process may hold the lock for a moment: wait for it here, without blocking the
        event loop, for up to BUSY_WAIT_SECONDS."""
        async def begin() -> AsyncSession:
            session = self.sessions()
            try:
                await session.connection(execution_options={WRITER: True})
            except BaseException:
                await session.close()
                raise
            return session

        return await _when_unlocked(begin)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; it never takes the writer lock."""
        async with self.sessions() as session:
            yield session

    async def ping(self) -> bool:
        """Whether the database answers now (bounded: an unreachable server may never answer)."""
        try:
            async with asyncio.timeout(PROBE_SECONDS), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def write_probe(self) -> bool:
        """Whether a write commits now: a real write (SELECT 1 answers on a full disk, a read-only
        replica or while another process holds SQLite's write lock), cheap — one counter row."""
        try:
            async with asyncio.timeout(PROBE_SECONDS), self.transaction() as session:
                await session.execute(_PROBE, {"name": "write_probe"})
        except Exception:
            return False
        return True

    async def upgrade(self) -> None:
        """Apply Alembic migrations up to head (safe to call from several instances at once)."""
        # SQLite: begin holding the write lock, waiting for another process; PostgreSQL: an
        # advisory lock serialises replicas starting together.
        conn = await (_when_unlocked(self._writer_connection) if self.sqlite else self.engine.connect())
        try:
            if not self.sqlite:
                # Replicas starting together wait for each other's migration however long it takes.
                await conn.execute(text("SET lock_timeout = 0"))
                await conn.execute(text("SELECT pg_advisory_lock(4242001)"))
            try:
                await conn.run_sync(_upgrade_sync)
                await conn.commit()
            finally:
                if not self.sqlite:
                    await conn.execute(text("SELECT pg_advisory_unlock(4242001)"))
                    await conn.execute(text("RESET lock_timeout"))
                    await conn.commit()
        finally:
            await conn.close()

    async def _writer_connection(self) -> AsyncConnection:
        """A connection inside a transaction that holds SQLite's write lock (BEGIN IMMEDIATE)."""
        conn = await self.engine.connect()
        try:
            conn = await conn.execution_options(**{WRITER: True})
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        return conn

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._checkpointer is not None:
            await self._checkpointer.close()


async def _when_unlocked(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run `attempt` (which begins a SQLite write transaction) until another process no longer
    holds the write lock: retried with asyncio.sleep, never blocking the event loop, for up to
    BUSY_WAIT_SECONDS; any other error at once."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + BUSY_WAIT_SECONDS
    pause = 0.001
    while True:
        try:
            return await attempt()
        except OperationalError as error:
            if not is_busy(error) or loop.time() >= give_up:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)


class _Checkpointer:
    """Copies SQLite's WAL back into the database file from a thread, at most once a second.

    The inline connections never checkpoint (`wal_autocheckpoint = 0`): a checkpoint writes and
    fsyncs, which must not happen on the event loop. PASSIVE never waits for readers or writers;
    what it cannot copy yet, the next one does."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._last = 0.0
        self._dirty = False

    def after_commit(self) -> None:
        self._dirty = True
        loop = asyncio.get_running_loop()
        if (self._task is None or self._task.done()) and loop.time() - self._last >= CHECKPOINT_INTERVAL:
            self._last = loop.time()
            self._dirty = False
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            await asyncio.to_thread(self._checkpoint)
        except Exception:
            # The WAL keeps growing until one succeeds; nothing is lost, so say it and go on.
            log.warning("SQLite WAL checkpoint failed", exc_info=True)

    def _checkpoint(self) -> None:
        if self._connection is None:
            # Used by one checkpoint at a time, from whichever worker thread runs it.
            self._connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def close(self) -> None:
        if self._task is not None:
            await self._task
        if self._dirty or self._task is not None:
            await self._run()
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade_sync(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands against this code's migrations."""

    found: bool  # False: the SQLite file does not exist (nothing was created to find out)
    revisions: tuple[str, ...]  # recorded in alembic_version; empty: never migrated
    heads: tuple[str, ...]  # this code's latest revision(s)
    known: bool  # every recorded revision is one of this code's (False: written by a newer dutybot)

    @property
    def current(self) -> bool:
        return self.found and set(self.revisions) == set(self.heads)

    @property
    def behind(self) -> bool:
        """Exists but needs `dutybot db upgrade` (never migrated, or at an older revision)."""
        return self.found and self.known and not self.current


async def schema_state(url: str) -> SchemaState:
    """The schema's state, changing nothing: an SQLite file is opened read-only and a missing one
    is reported, never created (a mistyped path must not leave an empty database behind)."""
    script = ScriptDirectory.from_config(alembic_config())
    heads = tuple(script.get_heads())
    found = await (asyncio.to_thread(_sqlite_revisions, Path(make_url(url).database or "")) if is_sqlite(url)
                   else _server_revisions(url))
    if found is None:
        return SchemaState(found=False, revisions=(), heads=heads, known=True)
    revisions = found
    known = {revision.revision for revision in script.walk_revisions()}
    return SchemaState(found=True, revisions=revisions, heads=heads, known=set(revisions) <= known)


def _sqlite_revisions(path: Path) -> tuple[str, ...] | None:
    """None: no such file (checked here, and the file opened read-only, so none is created)."""
    if not path.is_file():
        return None
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'").fetchone():
            return tuple(str(row[0]) for row in conn.execute("SELECT version_num FROM alembic_version"))
        return ()


async def _server_revisions(url: str) -> tuple[str, ...] | None:
    engine = create_async_engine(url, connect_args={"timeout": CONNECT_SECONDS})
    try:
        async with engine.connect() as conn:
            if (await conn.execute(text("SELECT to_regclass('alembic_version')"))).scalar() is None:
                return ()
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return tuple(str(v) for v in rows.scalars())
    finally:
        await engine.dispose()


# Errors that say the database cannot be written now (stopped, unreachable, out of disk, its
# write lock not to be had in time) — as opposed to a bug in what was asked of it.
_UNAVAILABLE_WORDS = ("disk is full", "no space left", "database is locked", "unable to open", "disk i/o error",
                      "connection", "terminating", "shutting down", "the database system is", "lock timeout",
                      "statement timeout", "read-only transaction", "could not extend file")


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means "the database cannot take writes now" (keep the message for later)."""
    if isinstance(exc, TimeoutError | ConnectionError | OSError):
        return True
    if isinstance(exc, DisconnectionError | InterfaceError | OperationalError):
        return True
    if isinstance(exc, PendingRollbackError):
        # A statement cut off mid-flight (a write budget's timeout) leaves its connection invalid,
        # and the rollback on leaving the transaction says so: the write did not happen.
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        text = str(exc.orig).lower()
        return any(word in text for word in _UNAVAILABLE_WORDS)
    cause = exc.__cause__
    return isinstance(cause, TimeoutError | ConnectionError | OSError)
