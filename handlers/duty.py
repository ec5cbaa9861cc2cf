"""Who is on duty for a chat at a time.

`DutyLookup` is the seam the roster replaces: until a roster exists, `ConfiguredDuty` answers
from the chat's configured duty_officers / duty_leaders, falling back to everyone holding the
global 值班员 / 带班领导 role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from domain.config import ChatConfig
from domain.directory import Directory
from domain.vocab import Role


@dataclass(frozen=True)
class OnDuty:
    officers: tuple[str, ...]  # person ids of the 值班员
    leaders: tuple[str, ...]  # person ids of the 带班领导

    def includes(self, person_id: str) -> bool:
        return person_id in self.officers or person_id in self.leaders


class DutyLookup(Protocol):
    async def on_duty(self, session: AsyncSession, chat: ChatConfig, at: datetime) -> OnDuty: ...


class ConfiguredDuty:
    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    async def on_duty(self, session: AsyncSession, chat: ChatConfig, at: datetime) -> OnDuty:
        officers = chat.duty_officers or [p.id for p in self._directory.people_with(Role.DUTY_OFFICER)]
        leaders = chat.duty_leaders or [p.id for p in self._directory.people_with(Role.DUTY_LEADER)]
        return OnDuty(tuple(officers), tuple(leaders))
