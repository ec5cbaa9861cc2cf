"""What a lane of the outbox worker records of its rows (bot/outbox_steps.py posts them): a post's
outcome — sent into the chat log and the item's audit trail, retried with backoff, held when the
robot refuses for a configuration reason (the admins alerted), failed — and, in bulk, the rows of a
step that needed no post (cancelled because their clock stopped, or recorded because no channel
serves their chat). Always in the caller's transaction: a step records the post just made and takes
the next rows in one.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot.channels.base import DeliveryResult, Sender
from bot.dispatch import render_mentions
from bot.metrics import Metrics
from bot.outbox_held import alert_admins
from bot.outbox_parts import Endpoint, Posted, backoff, log_fields
from domain.config import ChatConfig
from domain.directory import Directory
from store import audit, channel_status, chatlog, outbox, ratelimit
from store.models import Item, OutboxMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("bot.outbox")


class LaneOutcomes:
    """The recording half of the lanes (LaneSteps posts): its state is set up by OutboxWorker.__init__."""

    directory: Directory
    metrics: Metrics
    senders: dict[str, Sender]
    targets: dict[str, ChatConfig]  # endpoints' targets (webhook subscribers): addressed like chats
    webhook_envs: dict[str, str]
    probe_seconds: int
    _rng: random.Random
    _held: set[str]

    def robot_key(self, sender: Sender, chat: ChatConfig) -> str:
        """The chat's robot webhook: the unit of the rate budget and of a delivery lane."""
        env = chat.webhook_env or self.webhook_envs.get(sender.channel_id, "default")
        return f"{sender.channel_id}:{env}"

    def _chat_and_sender(self, row: OutboxMessage) -> tuple[ChatConfig | None, Sender | None]:
        chat = self.directory.chats.get(row.chat_id) or self.targets.get(row.chat_id)
        return chat, self.senders.get(chat.id) if chat is not None else None

    async def _finish_unposted(
        self, session: AsyncSession, run: str, cancelled: Sequence[OutboxMessage], recorded: Sequence[OutboxMessage],
        now: datetime, items: Mapping[int, Item],
    ) -> None:
        """Settle, in bulk, the rows of this step that needed no post."""
        if cancelled:
            await outbox.finish_many(session, [r.id for r in cancelled], worker=run, status=outbox.CANCELLED, now=now,
                                     error="clock stopped before sending")
            self.metrics.deliveries.labels("cancelled").inc(len(cancelled))
            for row in cancelled:
                log.info("reminder cancelled: its clock stopped before sending",
                         extra=log_fields(row, items, outcome="cancelled"))
        if recorded:
            mine = set(await outbox.finish_many(session, [r.id for r in recorded], worker=run, status=outbox.SENT,
                                                now=now))
            for row in recorded:
                if row.id in mine:
                    await self._record_sent(session, row, now, log_fields(row, items))

    async def _settle(
        self, session: AsyncSession, run: str, posted: Posted, now: datetime, unheld: list[str] | None = None
    ) -> bool:
        """Record a post's outcome in the caller's transaction; True when it was delivered. A chat
        whose held messages this post released is added to `unheld`."""
        row, result, channel = posted.row, posted.result, posted.channel or None
        if posted.rate is not None:
            await ratelimit.settle(session, posted.rate.key, reserved=posted.rate.stamp, answered=now,
                                   slots=posted.rate.count)
        if channel is not None:
            await channel_status.record(session, channel=channel, chat_id=row.chat_id, now=now, ok=result.ok,
                                        error=result.detail, config_error=result.config_error)
        if result.ok:
            if await outbox.finish(session, row.id, worker=run, status=outbox.SENT, now=now):
                await self._record_sent(session, row, now, posted.log_fields)
            if row.chat_id in self._held:
                self._held.discard(row.chat_id)
                if await outbox.unhold_chat(session, row.chat_id):
                    log.warning("chat %s accepts posts again: its held messages are sent now", row.chat_id)
                    if unheld is not None:
                        unheld.append(row.chat_id)
            return True
        if result.retryable:
            self.metrics.deliveries.labels("retry").inc()
            await outbox.finish(session, row.id, worker=run, status=outbox.PENDING, now=now, error=result.detail,
                                retry_at=now + backoff(row.attempts, self._rng))
        elif result.config_error and channel is not None:
            self.metrics.deliveries.labels("held").inc()
            await outbox.finish(session, row.id, worker=run, status=outbox.HELD, now=now, error=result.detail)
            self._held.add(row.chat_id)
            await self._alert_admins(session, channel, row, result, now)
        else:
            self.metrics.deliveries.labels("failed").inc()
            failed = await outbox.finish(session, row.id, worker=run, status=outbox.FAILED, now=now,
                                         error=result.detail)
            endpoint = self.senders.get(row.chat_id) if row.chat_id in self.targets else None
            if failed and isinstance(endpoint, Endpoint):  # a receiver's final refusal: the admins are told
                await endpoint.refused(session, row=row, result=result, now=now)
        return False

    async def _alert_admins(
        self, session: AsyncSession, channel: str, row: OutboxMessage, result: DeliveryResult, now: datetime
    ) -> None:
        chat, sender = self._chat_and_sender(row)
        robot = self.robot_key(sender, chat) if chat is not None and sender is not None else None
        await alert_admins(session, directory=self.directory, senders=self.senders, channel=channel, row=row,
                           result=result, now=now, robot=robot, robot_of=self.robot_key,
                           probe_seconds=self.probe_seconds)

    async def _record_sent(
        self, session: AsyncSession, row: OutboxMessage, now: datetime, fields: Mapping[str, object]
    ) -> None:
        """A delivered row goes into the chat log (what the simulator shows) and, when it is about
        an item, into the item's audit trail."""
        self.metrics.deliveries.labels("sent").inc()
        late_by = max(0.0, (now - row.due_at).total_seconds())
        if row.clock is not None:
            self.metrics.reminder_lateness.observe(late_by)
        if row.chat_id in self.targets:
            # A webhook delivery: the outbox row is its record (no chat saw it, the item's trail
            # keeps what people were told).
            log.info("outbox row %s sent", row.id, extra={**fields, "outcome": "sent", "late_by_s": round(late_by, 3)})
            return
        await chatlog.append(
            session, chat_id=row.chat_id, at=now, sender="bot", mentions=row.mentions, kind="notice",
            text=render_mentions(row.text, row.mentions, self.directory),
        )
        if row.item_id is not None:
            await self._audit_notice(session, row, now)
        log.info("outbox row %s sent", row.id,
                 extra={**fields, "outcome": "sent", "late_by_s": round(late_by, 3)})

    async def _audit_notice(self, session: AsyncSession, row: OutboxMessage, now: datetime) -> None:
        """Every reminder and notice sent about an item goes into its audit trail (考核 needs it)."""
        first_line = row.text.splitlines()[0] if row.text else ""
        await audit.record(
            session, at=now, actor="bot", action="notice", item_id=row.item_id, chat_id=row.chat_id,
            detail=first_line[:200],
            after={"key": row.key, "due_at": row.due_at.isoformat(), "late": row.late, "mentions": list(row.mentions)},
        )
