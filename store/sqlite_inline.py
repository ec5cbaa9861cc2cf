"""aiosqlite's connection with every call run on the event-loop thread instead of a worker thread.

Why: aiosqlite sends each call (execute, fetch, commit) to a thread of its own and wakes the
event loop with the result. On this workload that hand-off costs ≈ 200 µs of CPU per statement
(queue, thread wake-up, GIL hand-over, self-pipe write, epoll) while SQLite itself answers a
statement on a local file in a few µs (`bench/README.md`, "SQLite without the thread hop"): the
hop was most of a chat message's cost.

Why it is safe to run SQLite on the loop: in WAL mode a read never waits for a lock, and this
process's writers are already serialised by `Database`'s asyncio lock. The one wait left is a
*second process* (a CLI command next to the server) holding the write lock: the connection has
no busy handler (`busy_timeout = 0`), so `BEGIN IMMEDIATE` fails at once and `Database` retries
it with `asyncio.sleep` — the loop never blocks on another process. Commits do not fsync
(`synchronous = NORMAL` in WAL); the fsyncs of a checkpoint run in a thread (`Database`), never
on the loop (`wal_autocheckpoint = 0` here).

Only the calls that SQLAlchemy's aiosqlite dialect makes are redirected; the dialect, its type
handling and the statement cache are unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite


class _RunNow:
    """Stands in for aiosqlite's work queue: SQLAlchemy's isolation-level setter puts a
    `(future, function)` pair on it directly; run the function and settle the future at once."""

    def put_nowait(self, work: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = work
        try:
            result = function()
        except BaseException as error:  # handed to the waiter, as aiosqlite's thread does
            if future is not None and not future.done():
                future.set_exception(error)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An `aiosqlite.Connection` that never starts its thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _RunNow()  # type: ignore[assignment]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Any:
        return self._connect().__await__()

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()

    async def close(self) -> None:
        self.stop()


def inline_creator(path: str) -> Callable[[], Any]:
    """The `async_creator` for `create_async_engine`: a connection to the SQLite file at `path`."""

    async def create() -> InlineConnection:
        # isolation_level=None: SQLAlchemy, not the driver, decides when a transaction begins;
        # timeout=0: no busy handler, see the module docstring.
        connection = InlineConnection(lambda: sqlite3.connect(path, isolation_level=None, timeout=0))
        return await connection._connect()

    return create


def is_busy(error: BaseException) -> bool:
    """Whether a (wrapped) driver error is SQLite's SQLITE_BUSY: another process holds the lock."""
    original = getattr(error, "orig", error)
    code = getattr(original, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "database is locked" in str(original)
