"""A database that cannot be written, as a test makes it: another holder of the write lock."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

from tests.conftest import Bot


@asynccontextmanager
async def database_held(bot: Bot) -> AsyncIterator[None]:
    """Another process takes the database's write lock (SQLite) or locks the table every message
    writes first (PostgreSQL) and holds it: writes wait past the budget, as in an outage."""
    url = bot.config.database.url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        holder = sqlite3.connect(path, isolation_level=None, timeout=0)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("LOCK TABLE inbound_seen, counters IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            await transaction.rollback()
    finally:
        await conn.close()
