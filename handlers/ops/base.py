"""What every operation receives: the unit of work and the actor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.config import ChatConfig, Config
from domain.directory import Directory
from handlers.duty import DutyLookup, OnDuty
from store import audit, outbox
from store import items as item_store
from store.models import Item


class ActorKind(StrEnum):
    PERSON = "person"
    API = "api"  # a source system calling the intake API with its token


@dataclass(frozen=True)
class Actor:
    """Who acts: a configured person, or an API client named by its token's source system (the
    reporter of record of what it reports, and the actor of its audit rows)."""

    id: str
    name: str
    kind: ActorKind = ActorKind.PERSON

    @property
    def is_person(self) -> bool:
        return self.kind is ActorKind.PERSON


@dataclass
class Work:
    """One unit of work: a session inside one transaction, the org and the time."""

    session: AsyncSession
    config: Config
    directory: Directory
    duty: DutyLookup
    now: datetime
    _on_duty: dict[str, OnDuty] = field(default_factory=dict, repr=False)

    async def on_duty(self, chat: ChatConfig) -> OnDuty:
        """Who is on duty in `chat` now (read once per unit of work and chat)."""
        if chat.id not in self._on_duty:
            self._on_duty[chat.id] = await self.duty.on_duty(self.session, chat, self.now)
        return self._on_duty[chat.id]

    async def copy_to_coordinators(
        self, item_id: int, text: str, key: str, *, besides: ChatConfig | None, mentions: Sequence[str] = ()
    ) -> None:
        """Post a copy in every coordinators' chat but `besides` (the chat that has it already),
        once per key (归口报送)."""
        for chat in self.directory.coordinator_chats():
            if besides is not None and chat.id == besides.id:
                continue
            await outbox.enqueue(self.session, key=f"{key}:{chat.id}", chat_id=chat.id, text=text,
                                 mentions=tuple(mentions), now=self.now, item_id=item_id)

    async def record(
        self, actor: Actor, item: Item, action: str, *, chat_id: str | None, detail: str = "",
        before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
    ) -> int:
        """An audit row about `item` (and the item's updated_at)."""
        item_store.touch(item, self.now)
        return await audit.record(self.session, at=self.now, actor=actor.id, chat_id=chat_id, action=action,
                                  item_id=item.id, detail=detail, before=before, after=after)
