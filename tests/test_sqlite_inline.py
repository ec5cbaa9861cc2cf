"""SQLite without aiosqlite's thread: statements run on the loop, yet another process's write lock
is waited for without blocking the loop, and the WAL is checkpointed from a thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from store import db as db_module
from store.db import Database
from store.sqlite_inline import InlineConnection, is_busy


async def _migrated(tmp_path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    await db.upgrade()
    return db


async def test_statements_run_on_the_loop_thread(tmp_path: Path) -> None:
    db = await _migrated(tmp_path)
    try:
        async with db.transaction() as session:
            raw = (await (await session.connection()).get_raw_connection()).dbapi_connection
            driver = raw._connection  # type: ignore[union-attr]
            assert isinstance(driver, InlineConnection)
            assert not driver._thread.is_alive()
            await session.execute(text("INSERT INTO counters (name, value) VALUES ('inline', 1)"))
        async with db.read() as session:
            assert (await session.execute(text("SELECT value FROM counters WHERE name = 'inline'"))).scalar() == 1
    finally:
        await db.dispose()


async def test_pragmas_leave_waiting_and_checkpoints_off_the_loop(tmp_path: Path) -> None:
    db = await _migrated(tmp_path)
    try:
        async with db.read() as session:
            pragmas = {
                name: (await session.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "busy_timeout", "wal_autocheckpoint", "foreign_keys")
            }
        assert pragmas == {"journal_mode": "wal", "busy_timeout": 0, "wal_autocheckpoint": 0, "foreign_keys": 1}
    finally:
        await db.dispose()


async def test_a_writer_waits_for_another_process_without_blocking_the_loop(tmp_path: Path) -> None:
    db = await _migrated(tmp_path)
    statements: list[str] = []

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement.split()[0] + (" IMMEDIATE" if "IMMEDIATE" in statement else ""))

    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process (a CLI command) holds the write lock
    try:
        async def write() -> None:
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO counters (name, value) VALUES ('waited', 7)"))

        writer = asyncio.create_task(write())
        ticks = 0
        for _ in range(20):  # the loop keeps running while the writer waits
            await asyncio.sleep(0.005)
            ticks += 1
        assert ticks == 20 and not writer.done()
        other.execute("COMMIT")
        await asyncio.wait_for(writer, 5)
        # Tried and refused while the other process wrote, then the INSERT inside a transaction
        # that holds the lock (never in autocommit after a failed BEGIN).
        assert statements.count("BEGIN IMMEDIATE") >= 2
        assert statements[-2:] == ["BEGIN IMMEDIATE", "INSERT"]
        async with db.read() as session:
            assert (await session.execute(text("SELECT value FROM counters WHERE name = 'waited'"))).scalar() == 7
    finally:
        other.close()
        await db.dispose()


async def test_a_writer_gives_up_after_the_busy_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "BUSY_WAIT_SECONDS", 0.05)
    db = await _migrated(tmp_path)
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError) as raised:
            async with db.transaction() as session:
                await session.execute(text("SELECT 1"))
        assert is_busy(raised.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    try:  # the lock is free again: the next transaction goes through
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO counters (name, value) VALUES ('after', 1)"))
    finally:
        await db.dispose()


async def test_an_error_rolls_back_and_releases_the_lock(tmp_path: Path) -> None:
    db = await _migrated(tmp_path)
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO counters (name, value) VALUES ('lost', 1)"))
                raise RuntimeError("handler failed")
        async with db.transaction() as session:
            assert (await session.execute(text("SELECT count(*) FROM counters WHERE name = 'lost'"))).scalar() == 0
    finally:
        await db.dispose()


async def test_the_wal_is_checkpointed_from_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "CHECKPOINT_INTERVAL", 0.0)
    db = await _migrated(tmp_path)
    checkpoints: list[str] = []
    assert db._checkpointer is not None
    original = db._checkpointer._checkpoint

    def spy() -> None:
        checkpoints.append(threading.current_thread().name)
        original()

    monkeypatch.setattr(db._checkpointer, "_checkpoint", spy)
    try:
        for n in range(3):
            async with db.transaction() as session:
                await session.execute(text(f"INSERT INTO counters (name, value) VALUES ('c{n}', {n})"))
            await asyncio.sleep(0)
    finally:
        await db.dispose()  # a last checkpoint on the way out
    assert len(checkpoints) >= 2  # after the commits, and the last one on the way out
    assert threading.main_thread().name not in checkpoints


async def test_a_read_never_waits_for_a_writer(tmp_path: Path) -> None:
    db = await _migrated(tmp_path)
    begins: list[str] = []

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("BEGIN"):
            begins.append(statement)

    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing
    other.execute("INSERT INTO counters (name, value) VALUES ('uncommitted', 1)")
    try:
        async with db.read() as session:  # WAL: the read sees the last commit, at once
            names = set((await session.execute(text("SELECT name FROM counters"))).scalars())
        assert "uncommitted" not in names
        assert begins == ["BEGIN"]
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with db.transaction() as session:
        await session.execute(text("INSERT INTO counters (name, value) VALUES ('written', 1)"))
    assert begins == ["BEGIN", "BEGIN IMMEDIATE"]  # only the writer takes the write lock up front
    await db.dispose()


async def test_the_migration_waits_for_another_process_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE elsewhere (x INTEGER)")
    other.execute("BEGIN IMMEDIATE")
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        upgrade = asyncio.create_task(db.upgrade())
        for _ in range(10):
            await asyncio.sleep(0.005)
        assert not upgrade.done()
        other.execute("COMMIT")
        await asyncio.wait_for(upgrade, 10)
        async with db.read() as session:
            assert (await session.execute(text("SELECT count(*) FROM counters"))).scalar() is not None
    finally:
        other.close()
        await db.dispose()
