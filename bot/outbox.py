"""The outbox worker: claim due messages, post them through the chat's platform, record them.

Claims carry a lease; a worker that dies mid-delivery leaves rows that the next worker takes
over when the lease runs out. Every delivered message is also written to the chat log, which is
what the simulator shows and what the records keep.

Delivery works per robot: a claimed batch is split into lanes, one per robot webhook, posted side
by side; while a lane is busy its robot's new rows are left to the next claim (or another
replica). A robot that hangs or times out thus holds back only its own rows.

Each robot gets at most `rate_limit` posts in any `rate_window` plus a skew allowance, counted in
the database so that replicas share the budget (store/ratelimit.py), on every path that reaches
a robot: notices, every part of a split message, retries, and replies whose reply URL the
platform refused (the worker posts those on the robot itself, after reserving). A message over
the budget waits for the next free slot; a backlog past `digest_after` is folded into digests
(bot/outbox_digest.py). A robot that refuses for a configuration reason has its messages held
until it accepts again (bot/outbox_held.py).

Outgoing webhooks' events (bot/webhook_send.py) go the same way, addressed to a subscriber's
target instead of a chat: their sender is an Endpoint (bot/outbox_parts.py), which brings its own
rate budget and is told of a final refusal; their rows are never folded into digests nor logged
in a chat.

Just before sending, a worker renews its claim on the row: a row it claimed in a batch but whose
lease ran out while earlier rows were being sent may have been taken over, and is then left to
the worker that holds it. At a clean stop (`begin_stop`, `shutdown`) posts in flight may finish
within a bound, and every claim not used is released at once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.channels.base import Sender
from bot.clock import Clock
from bot.logs import FailureLog
from bot.metrics import Metrics
from bot.outbox_digest import digest_log
from bot.outbox_parts import Endpoint, Lane
from bot.outbox_steps import RATE_WAIT, STOPPED, LaneSteps
from domain.config import ChatConfig
from domain.directory import Directory
from store import outbox
from store.db import Database
from store.models import OutboxMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

KICK_GAP_SECONDS = 0.2  # kick_soon: at most one run per this long (an announcement waits at most this)

CLAIM_ID_MAX = 64  # outbox.claimed_by
CLAIM_TAG = 40  # the end of the worker id every claim id keeps (release_claims_of)
CANCEL_GRACE = 0.5  # seconds cut-off posts get to unwind at a stop
RELEASE_BUDGET = 1.0  # seconds the release of claims may take at a stop
# Inside a drain (run_due) a batch's lanes are left running (tracked) instead of awaited: the
# drain, and the scheduler's tick, go on claiming for the other robots while one robot is slow.
_DETACHED: ContextVar[bool] = ContextVar("outbox_detached", default=False)


class OutboxWorker(LaneSteps):
    def __init__(
        self, *, db: Database, clock: Clock, directory: Directory, senders: Mapping[str, Sender],
        worker_id: str, lease: timedelta = timedelta(minutes=2), batch: int = 50,
        metrics: Metrics | None = None, webhook_envs: Mapping[str, str] | None = None,
        rate_limit: int = 20, rate_window: timedelta = timedelta(seconds=60), digest_after: int = 10,
        post_timeout: timedelta = timedelta(seconds=10), rate_skew: timedelta | None = None,
    ) -> None:
        delivery = directory.config.delivery
        # The longest one post may take ([delivery] timeout_seconds): a claim is renewed to cover
        # every post of a message split in parts, whatever the configured lease.
        self.post_timeout = post_timeout
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.rate_skew = timedelta(seconds=delivery.rate_skew_seconds) if rate_skew is None else rate_skew
        # A chat with more than this many messages waiting past the rate budget gets a digest.
        self.digest_after = digest_after
        self.stop_bound = delivery.shutdown_seconds
        self.probe_seconds = delivery.held_probe_seconds
        self.db = db
        self.metrics = metrics or Metrics()
        # channel id → the env var naming its default robot webhook (identifies the rate budget)
        self.webhook_envs = dict(webhook_envs or {})
        self.clock = clock
        self.directory = directory
        self.senders: dict[str, Sender] = {}
        self.targets: dict[str, ChatConfig] = {}
        self.add_senders(senders)
        self.worker_id = worker_id
        self._runs = itertools.count(1)
        self.lease = lease
        self.batch = batch
        self._rng = random.Random()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._draining = False  # run_due in progress
        self._again = False  # …and asked for again meanwhile
        self._soon: asyncio.Task[None] | None = None  # kick_soon's delayed run, while one is waiting
        self._soon_last = float("-inf")  # the event loop's time of kick_soon's last run
        self._busy: Counter[str] = Counter()  # robot → lanes of this process posting to it
        # robot → when its next rate slot frees, as a lane of this process last found it spent
        # (see _defer_spent). In memory only: forgetting it costs one lane that finds the same.
        self._spent: dict[str, datetime] = {}
        self._lanes: set[Lane] = set()
        self._skipped: set[str] = set()  # busy robots a claim passed over (their lanes re-claim at the end)
        self.failures = FailureLog(log)  # a lane per robot fails each tick while the database is away
        self.digest_log = digest_log()  # one warning per chat per five minutes while a backlog folds
        self._held: set[str] = set()  # chats that may have held rows (this process probed or held them)
        self._stopping = False
        self._stop_at: float | None = None  # the event loop's time by which a stop ends

    def add_senders(self, senders: Mapping[str, Sender]) -> None:
        """Route the given chats (chat id → sender) through a platform channel; an endpoint (a
        webhook subscriber) also brings the target its rows are addressed to."""
        self.senders.update(senders)
        self.targets.update({key: sender.target for key, sender in senders.items() if isinstance(sender, Endpoint)})

    def kick(self, *, until_idle: bool = False) -> None:
        """Deliver soon, without waiting for the next scheduler tick (e.g. a reply just queued);
        `until_idle` keeps claiming batches while there are due rows (a sweep queued many)."""
        if self._stopping:
            return
        self.track(asyncio.get_running_loop().create_task(self.run_due() if until_idle else self.run_once()))

    def kick_soon(self) -> None:
        """`kick(until_idle=True)` for a door that may queue rows hundreds of times a second (the
        intake API under a push): the first kick runs at once, later ones at most once per
        KICK_GAP_SECONDS, each run taking everything due by then. A kick per request made a claim
        per group commit — on PostgreSQL a quarter of the CPU of each create, and the requests'
        wait — for announcements that mostly wait for the robot's budget anyway."""
        if self._stopping or self._soon is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._soon_last + KICK_GAP_SECONDS - loop.time()
        if wait <= 0:
            self._soon_last = loop.time()
            self.kick(until_idle=True)
            return
        self._soon = loop.create_task(self._kick_later(wait))
        self.track(self._soon)  # drain() waits for it

    async def _kick_later(self, wait: float) -> None:
        try:
            await asyncio.sleep(wait)
        finally:
            self._soon = None
        self._soon_last = asyncio.get_running_loop().time()
        if not self._stopping:
            await self.run_due()

    def track(self, task: asyncio.Task[Any]) -> None:
        """Keep `task` until done, and make `drain` wait for it (the direct answers to strangers too)."""
        self._tasks.add(task)  # keep a reference: the loop holds tasks only weakly
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for kicked deliveries and running lanes (used by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def run_due(self) -> int:
        """Deliver batch after batch until a claim comes back short: the scheduler's job. One
        batch per tick would cap a replica at `batch` messages a second, well under a burst of
        reminders falling due together. The lanes are not awaited: a slow robot never holds up the
        next claim for the others. One drain at a time per process: a call while one runs makes
        that one go round again instead of starting a second. Returns the rows claimed."""
        if self._draining:
            self._again = True
            return 0
        self._draining = True
        detached = _DETACHED.set(True)
        claimed = 0
        try:
            while True:
                self._again = False
                count = await self.run_once()
                claimed += count
                if count < self.batch and not self._again:
                    return claimed
        finally:
            _DETACHED.reset(detached)
            self._draining = False

    async def run_once(self) -> int:
        """Claim one batch of what is due now and post it, lane by lane; returns the rows claimed.

        Rows of robots this worker is posting to already are not claimed. Each lane works in as
        few transactions as its posts allow: a step records the post just made and takes rows
        until one needs a post — rows whose clock stopped are cancelled and rows for a chat no
        channel serves are recorded on the way. A post is re-checked (its claim renewed when the
        lease might not cover it, its rate slots reserved) just before it goes out and recorded
        right after (a kill loses at most the post in flight). Awaits the lanes, except inside a
        drain (run_due). (A reply skips the claim: its message's transaction claims it, see `deliver`.)
        """
        if self._stopping:
            return 0
        run = self.claim_id(next(self._runs))
        busy = self._busy_chats()
        # The robots whose rows this claim leaves alone get a claim of their own as soon as their
        # lane ends, not a tick later (see _unregister).
        self._skipped.update(self._busy)
        if self.db.sqlite and not await self._worth_claiming(busy):
            return 0
        async with self.db.transaction() as session:
            now = self.clock.now()
            rows = await outbox.claim(session, worker=run, now=now, lease=self.lease, limit=self.batch,
                                      busy_chats=busy)
            rows, deferred = await self._defer_spent(session, run, rows, now)
        if deferred:  # counted once committed, as the lanes' put-backs are
            self.metrics.rate_limit_waits.inc(deferred)
            self.metrics.deliveries.labels("rate_limited").inc(deferred)
        lanes: dict[str, deque[OutboxMessage]] = {}
        for row in rows:
            lanes.setdefault(self._lane_key(row), deque()).append(row)
        tasks = [self._start(Lane(run, key, queue)) for key, queue in lanes.items()]
        if tasks and not _DETACHED.get():
            await asyncio.gather(*tasks)
        return len(rows)

    async def _defer_spent(
        self, session: AsyncSession, run: str, rows: Sequence[OutboxMessage], now: datetime
    ) -> tuple[list[OutboxMessage], int]:
        """Put back, in the claim's own transaction, the rows for a robot whose budget a lane of
        this process found spent until a time still to come; they are due again then. Under a flood
        of intake announcements every request kicks a claim, and handing each new row to a lane only
        to put it back took three transactions (claim, step, put back) of SQLite's one writer. Rows
        that go to a reply URL instead of the robot are not deferred. Returns the rows kept and how
        many were put back."""
        if not self._spent:
            return list(rows), 0
        self._spent = {key: free_at for key, free_at in self._spent.items() if free_at > now}
        kept: list[OutboxMessage] = []
        deferred: dict[datetime, list[int]] = {}
        for row in rows:
            chat, sender = self._chat_and_sender(row)
            key = self.rate_key(sender, chat, row) if chat is not None and sender is not None else None
            free_at = self._spent.get(key) if key is not None else None
            if free_at is None:
                kept.append(row)
            else:
                deferred.setdefault(free_at, []).append(row.id)
        for free_at, row_ids in deferred.items():
            await outbox.release(session, row_ids, worker=run, due_at=free_at, error=RATE_WAIT)
        return kept, len(rows) - len(kept)

    async def _worth_claiming(self, busy: Sequence[str]) -> bool:
        """SQLite has one writer: a claim that finds nothing (every kick of a burst while the robot's
        lane is busy) would still queue the intake's commits behind it. A read does not."""
        async with self.db.read() as session:
            return await outbox.anything_to_claim(session, now=self.clock.now(), busy_chats=busy)

    def reply_claim(self, now: datetime) -> tuple[str, datetime]:
        """A claim for the replies of one message, taken by the transaction that queues them
        (store.outbox.enqueue_claimed). Its lease covers one post and the moment before it; if this
        process dies before posting, any worker takes the replies over when it runs out."""
        return self.claim_id(next(self._runs)), now + self.post_timeout * 3

    def deliver(self, claim: str, rows: Sequence[OutboxMessage], *, kick: bool) -> None:
        """Post a message's replies, committed already claimed under `claim`, without a claim
        transaction: the first goes out at once and its record shares a transaction with the
        next. `kick`: the message queued other rows too (notices), for a worker to claim. While
        stopping, the replies are released for another replica (or the next start) at once."""
        loop = asyncio.get_running_loop()
        if rows and self._stopping:
            self.track(loop.create_task(self._release(claim, [row.id for row in rows])))
        elif rows:
            self._start(Lane(claim, "", deque(rows), fast=True))
        if kick:
            self.kick()

    def claim_id(self, run: int) -> str:
        """Who holds a claim: this worker and the run. Each run claims under its own id, so that a
        run started while another is still busy (a kick next to the scheduled tick) cannot renew or
        settle the other's rows as if they were its own after taking them over."""
        suffix = f"#{run}"
        # claimed_by holds 64 characters; the end of the worker id (pid, engine) is what tells apart.
        return self.worker_id[-(CLAIM_ID_MAX - len(suffix)):] + suffix

    # -- lanes -------------------------------------------------------------------------------------

    def _lane_key(self, row: OutboxMessage) -> str:
        chat, sender = self._chat_and_sender(row)
        return self.robot_key(sender, chat) if chat is not None and sender is not None else ""

    def _busy_chats(self) -> list[str]:
        busy = {key for key, count in self._busy.items() if count > 0}
        if not busy:
            return []
        return [chat.id for chat in [*self.directory.chats.values(), *self.targets.values()]
                if chat.id in self.senders and self.robot_key(self.senders[chat.id], chat) in busy]

    def _start(self, lane: Lane) -> asyncio.Task[None]:
        # Registered before the task first runs: a drain's next claim, made at once, must already
        # leave this robot's rows alone.
        if lane.key and not lane.fast:
            self._busy[lane.key] += 1
        self._lanes.add(lane)
        task = asyncio.get_running_loop().create_task(self._lane(lane))
        self.track(task)
        task.add_done_callback(lambda _: self._unregister(lane))
        return task

    def _unregister(self, lane: Lane) -> None:
        self._lanes.discard(lane)
        if lane.key and not lane.fast:
            self._busy[lane.key] -= 1
            if self._busy[lane.key] <= 0:
                del self._busy[lane.key]
                if lane.key in self._skipped:  # a claim left this robot's due rows while it was busy
                    self._skipped.discard(lane.key)
                    self.kick(until_idle=True)

    async def _lane(self, lane: Lane) -> None:
        try:
            await self._work(lane)
        except Exception as exc:  # a database outage, say: the claims are taken over when their lease runs out
            self.failures.failure("outbox-lane", "发件箱一路发送因错误中止，所认领的消息待租约到期后接手", exc=exc)
        else:
            self.failures.recovered("outbox-lane")

    # -- held messages -------------------------------------------------------------------------------

    async def probe_held(self) -> int:
        """Put one held message per chat back in line (the scheduler's job, every
        [delivery] held_probe_seconds and at start): the robot's answer to it decides whether the
        chat's other held messages follow. Returns the chats probed."""
        if self._stopping:
            return 0
        async with self.db.transaction() as session:
            chats = await outbox.probe_held(session)
        if chats:
            self._held.update(chats)
            log.info("probing %d chat(s) with held messages: %s", len(chats), ", ".join(chats))
            self.kick(until_idle=True)
        return len(chats)

    # -- stopping ------------------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop_left(self) -> float:
        """Seconds left of the stop's bound (the whole bound before a stop begins)."""
        if self._stop_at is None:
            return self.stop_bound
        return max(0.0, self._stop_at - asyncio.get_running_loop().time())

    def begin_stop(self, bound: float | None = None) -> None:
        """Stop taking new work (SIGTERM): no more claims, and the rows claimed but not yet being
        posted are released at once, for another replica or the next start. Posts in flight go on
        until `shutdown` ends them, `bound` seconds from now at the latest."""
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        self._stopping = True
        self._stop_at = loop.time() + (self.stop_bound if bound is None else bound)
        for lane in list(self._lanes):
            ids = [row.id for row in lane.queue]
            lane.queue.clear()  # the lane finds nothing more to take once its post in flight is recorded
            if ids:
                self.track(loop.create_task(self._release(lane.run, ids)))

    async def shutdown(self) -> tuple[int, int]:
        """Let posts in flight finish until the stop's bound, cut off the rest, then release every
        claim this worker still holds (one UPDATE). Returns (posts cut off, claims released)."""
        self.begin_stop()
        pending = {task for task in self._tasks if not task.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.stop_left())
        cut = sum(1 for lane in self._lanes if lane.in_flight is not None)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=CANCEL_GRACE)
        released = 0
        try:
            async with asyncio.timeout(RELEASE_BUDGET):
                async with self.db.transaction() as session:
                    released = await outbox.release_claims_of(session, self.worker_id[-CLAIM_TAG:], error=STOPPED)
        except Exception:  # the database is away: the claims are taken over when their lease runs out
            log.exception("could not release the outbox claims at shutdown")
        log.info("outbox stopped: %d post(s) cut off, %d claim(s) released", cut, released)
        return cut, released
