"""Group commit for POST /api/v1/items: the creates that arrive while one transaction runs are
taken together in the next one.

A monitoring system pushing items one request each keeps many connections busy at once. Taken one
transaction each, every item pays a dozen statements and a commit, and the requests queue behind
the database's one writer (SQLite) or the item counter's row lock (PostgreSQL). Taken together,
a group costs a fixed number of statements (handlers/ops/intake.take_many) and one commit, so the
wait of each request shrinks as the load grows. There is no waiting on purpose: a request that
finds no transaction running starts one at once; the next group is whatever arrived meanwhile.

Each request still gets its own answer: its item, and whether it was new. A failure of the shared
transaction (the database) is every member's failure — none of them was kept, and each is told so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from handlers.ops.base import Actor, Work
from handlers.ops.intake import Intake, Taken, take_many, units_of_taken

MAX_GROUP = 100  # bounds one transaction's length, and so how long others wait for its locks


@dataclass(frozen=True)
class Took:
    """One request's outcome: what its record became, and the item's units (for its answer)."""

    taken: Taken
    units: list[str]


@dataclass(eq=False)
class _Request:
    actor: Actor
    data: Intake
    answer: asyncio.Future[Took]


class Coalescer:
    """`open_work()` opens one unit of work (a transaction, committed on leaving, and the time)."""

    def __init__(self, open_work: Callable[[], AbstractAsyncContextManager[Work]]) -> None:
        self._open_work = open_work
        self._queue: list[_Request] = []
        self._worker: asyncio.Task[None] | None = None

    async def take(self, actor: Actor, data: Intake) -> Took:
        """What `data` became, committed — or the exception that kept it from being kept."""
        answer: asyncio.Future[Took] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(actor, data, answer))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="intake-group-commit")
        # The request may be cancelled (its client hung up); the group goes on: what it commits
        # is found by the client's retry (same external id or link), never taken twice.
        return await asyncio.shield(answer)

    async def _run(self) -> None:
        try:
            while self._queue:
                group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                await self._commit(group)
        finally:  # stopped (shutdown) with requests still queued: they were not kept, say so
            left, self._queue = self._queue, []
            for request in left:
                if not request.answer.done():
                    request.answer.set_exception(ConnectionAbortedError("the intake worker stopped"))

    async def _commit(self, group: list[_Request]) -> None:
        try:
            results = await self._take(group)
        except BaseException as exc:  # handed to every request of the group: none of them was kept
            for request in group:
                if not request.answer.done():
                    request.answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for request, took in zip(group, results, strict=True):
            if not request.answer.done():
                request.answer.set_result(took)

    async def _take(self, group: list[_Request]) -> list[Took]:
        taken: dict[int, Taken] = {}
        async with self._open_work() as work:
            # One call per actor (a group may hold several source systems' requests), each in arrival order.
            for actor in dict.fromkeys(request.actor for request in group):
                indexes = [i for i, request in enumerate(group) if request.actor == actor]
                for i, one in zip(indexes, await take_many(work, actor, [group[i].data for i in indexes]), strict=True):
                    taken[i] = one
            units = await units_of_taken(work, list(taken.values()))
        return [Took(taken[i], units.get(taken[i].item.id, [])) for i in range(len(group))]
