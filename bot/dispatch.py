"""From a neutral inbound message to replies: one transaction per message.

The inbound message, the handler's writes, the queued notices and the replies in the chat log
commit together or not at all, so a crash mid-way leaves no half-written item.

A platform message's replies are queued in the outbox already claimed, and handed to the outbox
worker once the transaction commits: it posts them at once, without a claim transaction of its
own. Anything else the message queued (notices to leaders, copies) is claimed by a kick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.logs import FailureLog
from bot.spool import Spool, SpoolFull
from domain.config import ChatConfig, Config, PersonConfig
from domain.directory import Directory
from domain.messages import Handled, InboundMessage, NotKept, Reply
from domain.vocab import Role
from handlers.context import Context, Outcome
from handlers.duty import DutyLookup
from handlers.parsing import MAX_TEXT, normalize
from handlers.policy import local_time
from handlers.router import Dispatcher
from handlers.standins import with_stand_ins
from store import chatlog, inbound, outbox
from store.db import Database, database_unavailable
from store.models import OutboxMessage

log = logging.getLogger(__name__)

UNKNOWN_SENDER = "您好，您尚未登记为本群值班助手的使用人员，请联系管理员{admins}将您加入配置。"
UNKNOWN_CHAT = "您好，本群尚未接入舆情值班助手，请联系管理员{admins}将本群加入配置。"
DIRECT_CHAT = "您好，请在值班群内 @ 机器人发送指令（单聊消息不予处理）。如需帮助，请联系管理员{admins}。"
TOO_LONG = "消息过长（{length}字），请控制在{limit}字以内后重新发送。"
INTERNAL_ERROR = "抱歉，处理您的消息时出现系统错误，本条指令未生效。请稍后重试，如仍失败请联系管理员。"
TRUNCATED = "…（过长，已截断）"
LOCAL_KEYS = "(local idempotency key)"  # the inbound_seen "channel" of the local channel's Idempotency-Keys
DELAYED = "\n（系统故障期间收到的消息（{at}），恢复后补办，答复有延迟）"
# The name of the task that writes a platform message (named so a profile or the bench can tell it).
HANDLE_TASK = "dutybot-handle"
DELAYED_NOTICE = "\n（系统故障期间收到的消息（{at}），恢复后补办，通知有延迟）"


def render_mentions(text: str, mentions: Sequence[str], directory: Directory) -> str:
    """The text as it reads in the chat: the @-names on a last line (platforms add their own markup)."""
    if not mentions:
        return text
    names = " ".join(f"@{directory.people[p].name if p in directory.people else p}" for p in mentions)
    return f"{text}\n{names}"


class ReplyDelivery(Protocol):
    """Who posts a platform message's replies (bot/outbox.OutboxWorker)."""

    def reply_claim(self, now: datetime) -> tuple[str, datetime]:
        """A claim id for one message's replies, and the lease it holds them until."""
        ...

    def deliver(self, claim: str, rows: Sequence[OutboxMessage], *, kick: bool) -> None:
        """Post the committed `rows` claimed under `claim`; `kick`: also claim what else is due."""
        ...


class MessageHandler:
    def __init__(
        self, *, db: Database, config: Config, directory: Directory, clock: Clock,
        duty: DutyLookup, dispatcher: Dispatcher, delivery: ReplyDelivery,
        spool: Spool | None = None, write_budget: float = 3.0, on_spooled: Callable[[], None] | None = None,
    ) -> None:
        self.spool = spool
        self.write_budget = write_budget
        self._abandoned: set[asyncio.Future[Handled]] = set()  # writes given up on, still unwinding
        self.on_spooled = on_spooled
        self.failures = FailureLog(log)
        self.db = db
        self.delivery = delivery
        self.config = config
        self.directory = directory
        self.clock = clock
        self.duty = duty
        self.dispatcher = dispatcher

    def strip_bot_mention(self, text: str) -> tuple[bool, str]:
        """Remove a leading "@<bot name>" (WeCom and the simulator keep it in the text)."""
        marker = f"@{normalize(self.config.bot.name)}"
        if text.startswith(marker):
            return True, text[len(marker) :].strip()
        return False, text

    def unknown_sender_reply(self) -> Reply:
        return Reply(UNKNOWN_SENDER.format(admins=self._admins()))

    def unknown_chat_reply(self, *, group: bool) -> Reply:
        """The one answer to a message from a chat no channel serves: a group not yet in the
        configuration, or a private (single) chat with the robot. Same words on every platform."""
        return Reply((UNKNOWN_CHAT if group else DIRECT_CHAT).format(admins=self._admins()))

    def _admins(self) -> str:
        admins = "、".join(p.name for p in self.directory.people_with(Role.ADMIN))
        return f"（{admins}）" if admins else ""

    async def handle(self, message: InboundMessage, *, delayed: bool = False, keep: bool = True) -> Handled:
        """Handle one message in one transaction. `delayed`: it comes from the spool, replayed
        after an outage — its replies say so. `keep`: spool it when the database cannot be
        written (a replay does not: it stops, and the spool still holds the message)."""
        chat = self.directory.chats[message.chat_id]
        sender = self.directory.people.get(message.sender_id)
        if len(message.text) > MAX_TEXT:
            reply = Reply(TOO_LONG.format(length=len(message.text), limit=MAX_TEXT))
            return await self._respond_only(message, message.text[:200] + TRUNCATED, reply)
        if sender is None:
            log.info("message from unregistered sender in chat %s", chat.id, extra=_fields(message))
            return await self._respond_only(message, message.text, self.unknown_sender_reply())
        if keep and self.spool is not None and message.channel is not None and self.spool.holding():
            # Messages kept during an outage are not through yet: this one queues behind them
            # (a grade answer must not overtake the report it answers).
            return await self._spool(self.spool, message)
        try:
            if message.channel is None:
                return await self._handle_in_database(message, chat, sender, delayed=delayed)
            work = self._handle_in_database(message, chat, sender, delayed=delayed)
            return await self._within_budget(work, name=f"{HANDLE_TASK}:{message.channel}:{message.message_id}")
        except Exception as exc:
            if not database_unavailable(exc):
                # The transaction rolled back: nothing of this message was written. Say so plainly.
                log.exception("handling a message in chat %s failed", chat.id, extra=_fields(message))
                return await self._respond_only(message, message.text, Reply(INTERNAL_ERROR))
            if not keep:
                raise NotKept("数据库暂时无法写入") from exc
            return await self._keep_for_later(message, exc)

    async def _within_budget(self, work: Coroutine[Any, Any, Handled], *, name: str) -> Handled:
        """A platform gives a few seconds (WeCom retries after 5): a write that cannot finish in
        time goes to the spool instead of keeping the callback waiting. (PostgreSQL's own
        lock_timeout fails a waiting statement first; this bounds the rest.) The answer does not
        wait for the abandoned work to unwind either — cancelling a statement on a connection to a
        server that drops packets can itself take seconds — so it is cancelled and left to finish
        on its own. Should its transaction still commit, the spooled copy is a duplicate that the
        replay skips by message id."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        done, _ = await asyncio.wait({task}, timeout=self.write_budget + 1)
        if task in done:
            return task.result()
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._forget)
        raise TimeoutError(f"the database did not take the message within {self.write_budget + 1:g} s")

    def _forget(self, task: asyncio.Future[Handled]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("abandoned database write ended with %s", type(task.exception()).__name__)

    async def _keep_for_later(self, message: InboundMessage, exc: BaseException) -> Handled:
        """The database cannot be written: keep a platform message in the spool (it is replayed
        when writes succeed again) — or fail, so that the platform or the client retries."""
        self.failures.failure("database_write", "数据库无法写入", exc=exc)
        if message.channel is None or self.spool is None:
            raise NotKept("数据库暂时无法写入") from exc
        return await self._spool(self.spool, message)

    async def _spool(self, spool: Spool, message: InboundMessage) -> Handled:
        try:
            await spool.append(message)
        except (SpoolFull, OSError) as full:
            self.failures.failure("spool_write", "本地暂存（spool）也无法写入，回调将返回 503 由平台重试", exc=full)
            raise NotKept("数据库和本地暂存均无法写入") from full
        log.warning("message kept in the local spool while the database cannot be written", extra=_fields(message))
        if self.on_spooled is not None:
            self.on_spooled()
        return Handled(spooled=True)

    async def _handle_in_database(
        self, message: InboundMessage, chat: ChatConfig, sender: PersonConfig, *, delayed: bool
    ) -> Handled:
        mentioned, text = self.strip_bot_mention(normalize(message.text))
        async with self.db.transaction() as session:
            if not await self._first_time(session, message):
                return Handled(duplicate=True)
            await chatlog.append(session, chat_id=chat.id, at=message.received_at, sender=sender.id,
                                 text=message.text, kind="in")
            if mentioned:
                message = replace(message, mentions_bot=True)
            at = local_time(message.received_at, self.config.tz)
            if delayed:
                outbox.mark_delayed(session, DELAYED_NOTICE.format(at=at))
            ctx = Context(
                session=session, now=self.clock.now(), config=self.config, directory=self.directory,
                duty=self.duty, chat=chat, sender=sender, message=message, text=text,
            )
            outcome = await self.dispatcher.run(ctx) if text else Outcome()
            outcome = await self._stand_ins(ctx, outcome)
            if delayed:
                note = DELAYED.format(at=at)
                outcome = Outcome(tuple(Reply(r.text + note, r.mentions) for r in outcome.replies))
            claim, rows = await self._answer(session, message, outcome.replies)
            # A platform message's notices go out at once; the simulator's wait for the tick.
            kick = message.channel is not None and outbox.queued_in(session)
        self.failures.recovered("database_write")
        self.delivery.deliver(claim, rows, kick=kick)
        return Handled(outcome.replies)

    async def _stand_ins(self, ctx: Context, outcome: Outcome) -> Outcome:
        """AB角: whoever a reply would @-mention while on leave is replaced by their stand-in."""
        replies = []
        for reply in outcome.replies:
            text, mentions = await with_stand_ins(ctx.session, ctx.now, self.directory, reply.text, reply.mentions)
            replies.append(Reply(text, mentions))
        return Outcome(tuple(replies))

    async def _first_time(self, session: AsyncSession, message: InboundMessage) -> bool:
        if message.message_id is None:
            return True
        # The local channel's messages carry the client's Idempotency-Key, if any.
        channel = message.channel or LOCAL_KEYS
        return await inbound.first_time(session, channel, message.message_id, self.clock.now())

    async def _answer(
        self, session: AsyncSession, message: InboundMessage, replies: Sequence[Reply]
    ) -> tuple[str, list[OutboxMessage]]:
        """Log the replies; for a platform message queue them instead, claimed for delivery right
        after this transaction commits (the claim id and the rows are returned for that)."""
        now = self.clock.now()
        if message.channel is None:
            for reply in replies:
                await chatlog.append(session, chat_id=message.chat_id, at=now, sender="bot",
                                     text=render_mentions(reply.text, reply.mentions, self.directory),
                                     mentions=reply.mentions, kind="reply")
            return "", []
        claim, lease_until = self.delivery.reply_claim(now)
        rows = []
        for index, reply in enumerate(replies):
            # The platform's reply URL may be used once: give it to the first reply only.
            first = index == 0
            row = await outbox.enqueue_claimed(
                session, key=f"reply:{message.channel}:{message.message_id or now.isoformat()}:{index}",
                chat_id=message.chat_id, text=reply.text, mentions=reply.mentions, now=now,
                claimed_by=claim, lease_until=lease_until,
                reply_url=message.reply_url if first else None,
                reply_url_expires_at=message.reply_url_expires_at if first else None,
            )
            if row is not None:
                rows.append(row)
        return claim, rows

    async def _respond_only(self, message: InboundMessage, text: str, reply: Reply) -> Handled:
        """Answer without touching business data: the exchange is logged and the reply delivered."""
        try:
            async with self.db.transaction() as session:
                if not await self._first_time(session, message):
                    return Handled(duplicate=True)
                await chatlog.append(session, chat_id=message.chat_id, at=message.received_at,
                                     sender=message.sender_id[:64], text=text, kind="in")
                claim, rows = await self._answer(session, message, [reply])
        except Exception:
            log.exception("could not record a message in the chat log", extra=_fields(message))
            return Handled((reply,))
        self.delivery.deliver(claim, rows, kick=False)
        return Handled((reply,))


def _fields(message: InboundMessage) -> dict[str, object]:
    """Structured-log fields naming an inbound message (never its text: it may be sensitive)."""
    return {"chat": message.chat_id, "channel": message.channel, "message_id": message.message_id,
            "sender": message.sender_id[:64]}
