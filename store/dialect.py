"""The few statements that differ between SQLite and PostgreSQL, chosen per session.

`INSERT … ON CONFLICT` has the same meaning on both databases but lives in each dialect's own
`insert()`; row locks (`FOR UPDATE [SKIP LOCKED]`) exist only on PostgreSQL, where replicas run
side by side (SQLite has one writer, which serialises them anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, Generic, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

S = TypeVar("S")


def on_postgresql(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def upsert_insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT that supports `on_conflict_do_nothing` / `on_conflict_do_update`."""
    return postgresql.insert(table) if on_postgresql(session) else sqlite.insert(table)


class Prepared(Generic[S]):
    """A statement built once per dialect and then only executed with parameters.

    Building a statement per call (`insert(Model).values(...)`) walks it again to compute its
    cache key and, for ORM entities, runs the ORM's compile step: on the message path that cost
    more than SQLite itself. A statement built once memoises its cache key, so each call is a
    cache hit with fresh parameters. `build` gets the dialect module (`sqlite` or `postgresql`)
    for the constructs that differ, such as `insert(...).on_conflict_do_nothing()`.
    """

    def __init__(self, build: Callable[[ModuleType], S]) -> None:
        self._build = build
        self._built: dict[bool, S] = {}

    def on(self, session: AsyncSession) -> S:
        postgres = on_postgresql(session)
        statement = self._built.get(postgres)
        if statement is None:
            statement = self._built[postgres] = self._build(postgresql if postgres else sqlite)
        return statement
