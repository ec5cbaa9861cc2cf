"""What a handler receives (Context) and returns (Outcome), plus the refusal helper."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from domain.config import ChatConfig, Config, PersonConfig
from domain.directory import Directory
from domain.messages import InboundMessage, Reply
from handlers.duty import DutyLookup, OnDuty
from handlers.ops.base import Actor, Work
from store import audit


@dataclass(frozen=True)
class Outcome:
    replies: tuple[Reply, ...] = ()

    @staticmethod
    def say(text: str, mentions: tuple[str, ...] | list[str] = ()) -> Outcome:
        return Outcome((Reply(text, tuple(mentions)),))


@dataclass
class Context:
    session: AsyncSession
    now: datetime
    config: Config
    directory: Directory
    duty: DutyLookup
    chat: ChatConfig
    sender: PersonConfig
    message: InboundMessage
    text: str  # normalized text of the message, with any leading @bot removed
    _on_duty: OnDuty | None = field(default=None, repr=False)

    @property
    def tz(self) -> ZoneInfo:
        return self.config.tz

    async def on_duty(self) -> OnDuty:
        if self._on_duty is None:
            self._on_duty = await self.duty.on_duty(self.session, self.chat, self.now)
        return self._on_duty

    def name(self, person_id: str) -> str:
        person = self.directory.people.get(person_id)
        return person.name if person else person_id

    def actor(self) -> Actor:
        """The sender as the actor of an operation (handlers/ops)."""
        return Actor(self.sender.id, self.sender.name)

    def work(self) -> Work:
        """This message's unit of work for an operation (handlers/ops), sharing its duty lookup."""
        work = Work(self.session, self.config, self.directory, self.duty, self.now)
        if self._on_duty is not None:
            work._on_duty[self.chat.id] = self._on_duty
        return work

    async def refuse(self, text: str, *, action: str, item_id: int | None = None) -> Outcome:
        """Answer politely and record nothing but the refusal itself in the audit trail."""
        await audit.record(
            self.session,
            at=self.now,
            actor=self.sender.id,
            chat_id=self.chat.id,
            action="refused",
            item_id=item_id,
            detail=f"{action}: {self.text[:200]}",
        )
        return Outcome.say(text)
