"""A fresh PostgreSQL database per run on 127.0.0.1:5432 (user postgres, trust), dropped afterwards.

The server is the one the machine runs (DUTYBOT_BENCH_PG_URL to point elsewhere on loopback).
"""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
from sqlalchemy.engine import make_url

from bench.common import Skip

PG_URL = os.environ.get("DUTYBOT_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def _create() -> str:
    name = f"dutybot_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(_dsn(PG_URL), timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


async def _drop(url: str) -> None:
    conn = await asyncpg.connect(_dsn(PG_URL), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


async def _server_version() -> str:
    conn = await asyncpg.connect(_dsn(PG_URL), timeout=5)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def create_database() -> str:
    """A new empty database; Skip (with the reason) when the server cannot be reached."""
    try:
        return asyncio.run(_create())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise Skip(f"PostgreSQL at {make_url(PG_URL).render_as_string(hide_password=True)} is not usable: "
                   f"{exc!r}") from exc


def drop_database(url: str) -> None:
    asyncio.run(_drop(url))


def server_version() -> str:
    try:
        return asyncio.run(_server_version())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"unreachable ({type(exc).__name__})"
