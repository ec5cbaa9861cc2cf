"""The runtime side of the spool: replay when writes succeed again, tell the admins, report state.

- `replay_once` is run every few seconds (and once at start, for files left by a process that
  died): if anything waits and a write probe succeeds, every kept message is handled in order,
  marked as delayed; a failure stops the replay and leaves the rest for the next try.
- The admins' chat is told once when an outage starts to keep messages (posted directly through
  the platform: the outbox lives in the database that is away) and once when the spool has
  drained (through the outbox, which works again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Protocol

from bot.channels.base import Sender
from bot.clock import Clock
from bot.logs import FailureLog
from bot.metrics import Metrics
from bot.spool import Spool
from domain.directory import Directory
from domain.messages import InboundMessage, OutboundMessage
from domain.vocab import Role
from store import outbox
from store.db import Database

log = logging.getLogger(__name__)

OUTAGE = (
    "【系统告警】数据库暂时无法写入。群内消息已暂存本机（spool），数据库恢复后将按顺序自动补办，"
    "补办的答复会注明延迟。请尽快检查数据库（dutybot doctor）。"
)
RECOVERED = "【系统恢复】数据库已恢复写入，故障期间暂存的 {count} 条消息已按顺序补办。"


class Handles(Protocol):
    """What replays a message: the message handler (bot/dispatch.MessageHandler)."""

    async def handle(self, message: InboundMessage, *, delayed: bool = False, keep: bool = True) -> object: ...


class SpoolKeeper:
    def __init__(
        self, *, spool: Spool, db: Database, clock: Clock, directory: Directory, metrics: Metrics,
        senders: Mapping[str, Sender],
    ) -> None:
        self.spool = spool
        self.db = db
        self.clock = clock
        self.directory = directory
        self.metrics = metrics
        self.senders = senders  # chat id → sender, shared with the outbox worker
        self.failures = FailureLog(log)
        self._outage_told = False
        self._replayed = 0
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def spooled(self) -> None:
        """A message was just kept in the spool: tell the admins once per outage, and let the
        replay loop look at once (the database may be back and this message queued behind others)."""
        self.metrics.spooled.inc()
        self._wake.set()
        if not self._outage_told:
            self._outage_told = True
            task = asyncio.get_running_loop().create_task(self._tell_admins_directly(OUTAGE))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _tell_admins_directly(self, text: str) -> None:
        admins = tuple(p.id for p in self.directory.people_with(Role.ADMIN))
        for chat in self.directory.admin_chats():
            sender = self.senders.get(chat.id)
            if sender is None:
                continue  # a local chat is a table in the database that is away
            try:
                result = await sender.send(chat, OutboundMessage(chat.id, text, admins))
            except Exception as exc:  # best effort: the log line below is the record
                self.failures.failure("admin_alert", "无法向运维群发送数据库故障告警", exc=exc)
                continue
            if not result.ok:
                self.failures.failure("admin_alert", f"运维群未收到数据库故障告警：{result.detail}")

    def state(self) -> tuple[int, float]:
        """How many messages wait in the spool and the age in seconds of the oldest; updates /metrics."""
        depth, oldest = self.spool.state()
        age = max(0.0, (self.clock.now() - oldest).total_seconds()) if oldest is not None else 0.0
        self.metrics.spool_depth.set(depth)
        self.metrics.spool_oldest_age.set(age)
        return depth, age

    async def replay_once(self, handler: Handles) -> int:
        """Replay what waits, if the database takes writes again; returns how many were handled."""
        async with self._lock:  # one replay at a time in this process
            if not self.spool.waiting():
                self.state()
                return 0
            if not await self.db.write_probe():
                self.state()
                return 0
            try:
                done = await self.spool.replay(lambda m: handler.handle(m, delayed=True, keep=False))
            except Exception as exc:
                self.failures.failure("spool_replay", "暂存消息补办中断，稍后重试", exc=exc)
                return 0
            self.failures.recovered("spool_replay")
            self._replayed += done
            if self.state()[0] == 0:
                await self._tell_admins_drained()
            return done

    async def _tell_admins_drained(self) -> None:
        count, self._replayed = self._replayed, 0
        told, self._outage_told = self._outage_told, False
        if not count and not told:
            return
        now = self.clock.now()
        admins = [p.id for p in self.directory.people_with(Role.ADMIN)]
        async with self.db.transaction() as session:
            for chat in self.directory.admin_chats():
                await outbox.enqueue(session, key=f"spool:drained:{now.isoformat()}:{chat.id}", chat_id=chat.id,
                                     text=RECOVERED.format(count=count), mentions=admins, now=now)

    async def run(self, handler: Handles, every: float = 2.0) -> None:
        """The replay loop of a running bot (cancelled at shutdown)."""
        while True:
            try:
                await self.replay_once(handler)
            except Exception as exc:  # never let the loop die: the next round tries again
                self.failures.failure("spool_replay", "暂存消息补办出错", exc=exc)
            # Every `every` seconds, or at once when a message was just spooled.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), every)
            self._wake.clear()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.spool.close()
