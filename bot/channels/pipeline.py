"""The one path every platform message takes once its channel has verified and decoded it.

A channel only translates: it checks the platform's signature (and freshness, replay, decryption)
first, parses the payload into its pydantic model, and hands the pipeline an Arrival — the
platform's ids, the text, the reply URL it has already checked. From there WeCom, DingTalk HTTP
and DingTalk Stream go the same way:

1. Who: the chat must be one the channel serves and the sender a configured person, looked up by
   their platform ids. Anyone else gets one answer saying whom to ask, on the message's reply
   URL, and nothing is recorded; the platform ids are logged (INFO) for the admin to copy into
   the config. A message the bot cannot read (a WeCom image) gets one hint, likewise unrecorded.
   A platform's retry of such a message is not answered twice (remembered by this process).
2. Durable: the handler records the message and all it causes in one transaction, or keeps it in
   the spool while the database cannot be written. When neither can, NotKept propagates and the
   channel fails the callback (HTTP 503, a Stream error ack) so that the platform sends it again:
   nothing is acknowledged that is not kept.
3. Dispatch and send: the replies are queued in the outbox inside that transaction and posted by
   the outbox worker afterwards, so the callback or the Stream frame is acknowledged without
   waiting on any send.

The direct answer to a stranger cannot go through the outbox (it lives in the database, where a
stranger's message must leave no trace), so the pipeline posts it itself in a task it keeps. The
acknowledgement waits at most ANSWER_GRACE for it — a platform that answers at once shows the
answer first, as before — and never for a platform that hangs: the post then goes on in the
background within its own timeout, and is cut off when the bot stops.

The local channel (the simulator) names configured chats and people directly, so it skips step 1
and joins at `dispatch`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import aiohttp

from bot.channels.base import DeliveryResult, clip
from bot.clock import Clock
from bot.metrics import Metrics
from domain.config import ChatConfig
from domain.directory import Directory
from domain.messages import Handled, InboundMessage, Reply
from domain.vocab import Platform
from store.db import Database

log = logging.getLogger(__name__)

UNSUPPORTED = "暂不支持图片、文件等类型的消息，请发送文字指令。"
# How long an acknowledgement waits for the direct answer to a stranger (seconds): not at all — a
# platform's callback or Stream frame is acknowledged without waiting on a send (issue #15); the
# answer goes on in the background, and the outbox's drain waits for it.
ANSWER_GRACE = 0.0
# Strangers' messages answered, remembered by this process so that a platform's retry of one
# (WeCom retries a slow callback, Stream redelivers an unacked frame) is not answered again.
ANSWERED_MEMORY = 10_000


class Handler(Protocol):
    """Records and dispatches a known sender's message (bot/dispatch.MessageHandler)."""

    async def handle(self, message: InboundMessage) -> Handled: ...

    def unknown_sender_reply(self) -> Reply: ...

    def unknown_chat_reply(self, *, group: bool) -> Reply: ...


@dataclass(frozen=True)
class Arrival:
    """A verified, decoded platform message, before anyone knows whose it is."""

    message_id: str
    chat_id: str | None  # the platform's id of the group it was said in; None when it names none
    chat_type: str | None  # as the platform says it (WeCom "group"/"single", DingTalk "2"/"1"), for the log
    group: bool  # said in a group (a stranger's answer differs from one in a single chat)
    user_id: str | None  # the sender's platform user id, when the platform gives it
    text: str | None  # None: a kind of message the bot cannot read
    reply_url: str | None = None  # already checked to be the platform's own reply endpoint
    reply_url_expires_at: datetime | None = None


class Answerer(Protocol):
    """Posts one answer on an arrival's reply URL, recording nothing (a channel's own post)."""

    async def answer(self, arrival: Arrival, reply_url: str, text: str) -> DeliveryResult: ...


@dataclass(frozen=True)
class Labels:
    """How a platform names its ids, so that a log line tells the admin which field to copy."""

    chat_type: str
    chat: str
    user: str


@dataclass(frozen=True)
class Door:
    """One channel's side of the pipeline: who it is, the chats it serves, how it answers."""

    channel: str
    platform: Platform
    chats: frozenset[str]
    answerer: Answerer
    labels: Labels


class Received(enum.Enum):
    HANDLED = "handled"  # recorded and dispatched; its replies are in the outbox
    DUPLICATE = "duplicate"  # handled before (a platform retry, a replay): nothing done
    SPOOLED = "spooled"  # kept in the spool until the database takes writes again
    ANSWERED = "answered"  # a stranger or an unreadable message: answered once, nothing recorded


class Pipeline:
    def __init__(self, *, directory: Directory, clock: Clock, handler: Handler,
                 answer_grace: float = ANSWER_GRACE, track: Callable[[asyncio.Task[Any]], None] | None = None) -> None:
        """`track`: also hands each direct answer to the outbox's set of running sends, so that
        waiting for deliveries (shutdown, tests) waits for these answers too."""
        self.directory = directory
        self._track = track
        self.clock = clock
        self.handler = handler
        self.answer_grace = answer_grace
        self._answers: set[asyncio.Task[None]] = set()
        self._answered: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def receive(self, door: Door, arrival: Arrival) -> Received:
        """Take one verified platform message through the shared steps. Raises NotKept when the
        message could be kept neither in the database nor in the spool."""
        chat = self._served_chat(door, arrival)
        if chat is None:
            log.info("%s %s: message %s from a chat this channel does not serve (%s %s, %s %s, %s %s)",
                     door.platform.value, door.channel, clip(arrival.message_id), door.labels.chat_type,
                     clip(arrival.chat_type), door.labels.chat, clip(arrival.chat_id), door.labels.user,
                     clip(arrival.user_id))
            await self._answer(door, arrival, self.handler.unknown_chat_reply(group=arrival.group).text)
            return Received.ANSWERED
        person = self.directory.person_by_platform_user(door.platform, arrival.user_id) if arrival.user_id else None
        if person is None:
            log.info("%s %s: message %s from unregistered user %s in chat %s", door.platform.value, door.channel,
                     clip(arrival.message_id), clip(arrival.user_id), chat.id)
            await self._answer(door, arrival, self.handler.unknown_sender_reply().text)
            return Received.ANSWERED
        if arrival.text is None:
            await self._answer(door, arrival, UNSUPPORTED)
            return Received.ANSWERED
        reply_url = arrival.reply_url
        handled = await self.dispatch(InboundMessage(
            platform=door.platform, chat_id=chat.id, sender_id=person.id, text=arrival.text,
            received_at=self.clock.now(), mentions_bot=True, channel=door.channel, message_id=arrival.message_id,
            reply_url=reply_url, reply_url_expires_at=arrival.reply_url_expires_at if reply_url else None,
        ))
        if handled.duplicate:
            return Received.DUPLICATE
        return Received.SPOOLED if handled.spooled else Received.HANDLED

    async def dispatch(self, message: InboundMessage) -> Handled:
        """Record and dispatch a known sender's message (durable, or NotKept raised); its replies
        are queued in the outbox in the same transaction and posted after it commits."""
        handled = await self.handler.handle(message)
        if handled.duplicate:
            log.info("%s: message %s already handled (a retry or a replay)", message.channel or "local",
                     clip(message.message_id))
        return handled

    def _served_chat(self, door: Door, arrival: Arrival) -> ChatConfig | None:
        if arrival.chat_id is None:
            return None
        chat = self.directory.chat_by_platform_id(door.platform, arrival.chat_id)
        return chat if chat is not None and chat.id in door.chats else None

    # -- the direct answer -------------------------------------------------------------------------

    async def _answer(self, door: Door, arrival: Arrival, text: str) -> None:
        if arrival.reply_url is None:
            log.info("%s %s: no usable reply URL to answer message %s on", door.platform.value, door.channel,
                     clip(arrival.message_id))
            return
        if not self._first_answer(door, arrival):
            log.info("%s %s: message %s was answered already (a retry); not answered again", door.platform.value,
                     door.channel, clip(arrival.message_id))
            return
        task = asyncio.get_running_loop().create_task(
            self._post_answer(door, arrival, arrival.reply_url, text), name=f"dutybot-answer:{door.channel}")
        self._answers.add(task)  # keep a reference: the loop holds tasks only weakly
        task.add_done_callback(self._answers.discard)
        if self._track is not None:
            self._track(task)
        if self.answer_grace > 0:
            await asyncio.wait({task}, timeout=self.answer_grace)

    def _first_answer(self, door: Door, arrival: Arrival) -> bool:
        key = (door.channel, arrival.message_id)
        if key in self._answered:
            return False
        self._answered[key] = None
        if len(self._answered) > ANSWERED_MEMORY:
            self._answered.popitem(last=False)
        return True

    async def _post_answer(self, door: Door, arrival: Arrival, reply_url: str, text: str) -> None:
        try:
            result = await door.answerer.answer(arrival, reply_url, text)
        except Exception as exc:  # nothing was recorded, nothing to roll back: the log line is the record
            log.warning("%s %s: the answer to message %s failed: %s", door.platform.value, door.channel,
                        clip(arrival.message_id), type(exc).__name__)  # the type only: no URL in the log
            return
        if not result.ok:
            log.warning("%s %s: the answer to message %s was not delivered: %s", door.platform.value,
                        door.channel, clip(arrival.message_id), result.detail)

    async def drain(self) -> None:
        """Wait for the direct answers still being posted."""
        while self._answers:
            await asyncio.gather(*list(self._answers), return_exceptions=True)

    async def close(self, within: float) -> None:
        """At a stop: give the answers in flight `within` seconds, then cut them off."""
        pending = {task for task in self._answers if not task.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=max(within, 0.0))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)


@dataclass(frozen=True)
class ChannelRuntime:
    """What a channel may use of the running bot — instead of the whole Runtime."""

    directory: Directory
    clock: Clock
    metrics: Metrics
    pipeline: Pipeline
    db: Database  # for what a channel verifies against shared state (DingTalk's signature uses)
    client: Callable[[], aiohttp.ClientSession] = field(repr=False)  # the shared HTTP client

    @property
    def http(self) -> aiohttp.ClientSession:
        """The shared HTTP client; exists while the app runs."""
        return self.client()
