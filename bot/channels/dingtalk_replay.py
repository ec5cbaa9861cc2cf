"""DingTalk callback signatures cannot carry a second body.

The `sign` header is an HMAC of the `timestamp` header only (PROTOCOLS.md D.1): whoever captures
one callback's header pair could post any body with it while the timestamp is fresh. So each pair
is remembered, in the database so that replicas share it, with the msgIds it came with:

- the same msgId again is DingTalk retrying: admitted (the handler de-duplicates it);
- another msgId within REUSE_GRACE of the pair's first use is admitted: a busy robot can sign two
  genuine callbacks in the same millisecond;
- another msgId later than that is refused (401), logged and counted in /metrics.

Rows are purged once their timestamp is outside the skew window (no callback can carry it any
more). When the database cannot be written the process's own memory of the pairs decides, so
that a DingTalk callback is still kept (in the spool) during an outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from datetime import datetime, timedelta

from bot.channels.dingtalk_sign import epoch_ms
from bot.channels.pipeline import ChannelRuntime
from domain.messages import message_key
from store import inbound
from store.db import database_unavailable

log = logging.getLogger(__name__)

REUSE_GRACE = timedelta(seconds=2)
PURGE_EVERY = timedelta(minutes=1)
CHECK_BUDGET = 1.0  # seconds the database gets to answer before the memory decides
MEMORY_LIMIT = 100_000  # pairs remembered in this process (a cache: the database decides)


class SignatureGuard:
    def __init__(self, *, channel_id: str, runtime: ChannelRuntime, max_skew: timedelta) -> None:
        self.channel_id = channel_id
        self.runtime = runtime
        self.max_skew = max_skew
        self._purged_at: datetime | None = None
        # timestamp → (first use, msgIds), in order of first use
        self._memory: OrderedDict[int, tuple[datetime, set[str]]] = OrderedDict()

    async def admit(self, timestamp_ms: int, message_id: str) -> bool:
        """Whether a verified callback with this timestamp may carry this msgId."""
        now = self.runtime.clock.now()
        key = message_key(message_id)
        remembered = self._remember(timestamp_ms, key, now)
        try:
            async with asyncio.timeout(CHECK_BUDGET), self.runtime.db.transaction() as session:
                fresh = await inbound.signature_fresh(session, channel=self.channel_id, timestamp_ms=timestamp_ms,
                                                      message_id=key, now=now, grace=REUSE_GRACE)
                if fresh and (self._purged_at is None or now - self._purged_at >= PURGE_EVERY):
                    self._purged_at = now
                    await inbound.purge_signatures(session, self.channel_id, epoch_ms(now - self.max_skew))
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log.warning("dingtalk %s: the database cannot record a callback signature now; this process's "
                        "memory of the signatures decides", self.channel_id)
            fresh = remembered
        if not fresh:
            self.runtime.metrics.signature_reuse_refused.labels(channel=self.channel_id).inc()
            log.warning("dingtalk %s: a callback signature (timestamp %d) came back with another msgId more than "
                        "%g s after its first use; refused", self.channel_id, timestamp_ms,
                        REUSE_GRACE.total_seconds())
        return fresh

    def _remember(self, timestamp_ms: int, key: str, now: datetime) -> bool:
        """The memory's answer, recording the use when admitted (the same rule as the database's)."""
        while self._memory and (
            len(self._memory) > MEMORY_LIMIT or next(iter(self._memory.values()))[0] < now - 2 * self.max_skew
        ):
            self._memory.popitem(last=False)
        first, keys = self._memory.get(timestamp_ms, (now, set()))
        if key not in keys and keys and first < now - REUSE_GRACE:
            return False
        keys.add(key)
        self._memory.setdefault(timestamp_ms, (first, keys))
        return True
