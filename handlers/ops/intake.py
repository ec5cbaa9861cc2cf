"""Take an item pushed by a source system (舆情监测系统, the 12345 platform): the intake API's
operation. The same record sent again — a retry, a re-push — finds the item it became instead of
reporting it twice: by (source system, external id), and otherwise by its normalised link within
policy.duplicate_days (the same rule as 上报 in chat, which records the repeat as a supplement).

A new item is reported through the report operation exactly as 上报 is, in the duty chat of its
unit (or the nearest unit above with one; else the coordinators' chat), and announced there with
the same acceptance and grade question.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.config import ChatConfig
from domain.directory import Directory
from handlers.links import link_key
from handlers.ops import notify
from handlers.ops.base import Actor, Work
from handlers.ops.events import ItemReported
from handlers.ops.report import ReportInput, report
from store import item_sources
from store.models import Item

TITLE_JOIN = "：{summary}"


@dataclass(frozen=True)
class Intake:
    source_system: str
    external_id: str | None
    url: str | None
    title: str
    summary: str
    platform: str | None = None
    suggested_grade: str | None = None
    unit_id: str | None = None  # resolved from the request's unit_hint by the door
    classified: bool = False


@dataclass(frozen=True)
class Taken:
    item: Item
    duplicate: bool
    reported: ItemReported | None = None


def text_of(data: Intake) -> str:
    """The item's summary: the title, then the summary unless it merely repeats the title."""
    title, summary = data.title.strip(), data.summary.strip()
    if not title:
        return summary
    if not summary or summary.startswith(title):
        return summary or title
    return title + TITLE_JOIN.format(summary=summary)


def duty_chat(directory: Directory, unit_id: str | None) -> ChatConfig | None:
    """The chat an item of this unit belongs in: the unit's own duty chat, else the nearest unit
    above with one, else the coordinators' chat, else the first chat (never the admins' chat)."""
    # The admins' (ops) chat is for system alarms, not for items.
    chats = [c for c in directory.config.chats if not c.coordinators and not c.admins]
    if unit_id is not None:
        for unit in [unit_id, *directory.ancestors(unit_id)]:
            found = next((c for c in chats if c.unit == unit), None)
            if found is not None:
                return found
    coordinators = directory.coordinator_chats()
    if coordinators:
        return coordinators[0]
    return chats[0] if chats else None


class NoChat(Exception):
    """The configuration has no chat to announce an item in."""


async def take(work: Work, actor: Actor, data: Intake) -> Taken:
    key = f"ext|{data.source_system}|{data.external_id}" if data.external_id else (
        f"url|{link_key(data.url)}" if data.url else None)
    if key is not None:
        await item_sources.lock(work.session, key)
    if data.external_id:
        known = await item_sources.find(work.session, data.source_system, data.external_id)
        if known is not None:
            return Taken(known, duplicate=True)
    text = text_of(data)
    unit_id = data.unit_id
    if unit_id is None:
        suggested = work.directory.suggest_unit(text)
        unit_id = suggested.id if suggested is not None else None
    chat = duty_chat(work.directory, unit_id)
    if chat is None:
        raise NoChat("no chat is configured")
    event = await report(work, actor, ReportInput(
        text, chat, link=data.url, classified=data.classified, unit_id=unit_id,
        source=data.platform, suggested_grade=data.suggested_grade,
    ))
    if data.external_id:
        await item_sources.remember(work.session, data.source_system, data.external_id, event.item.id, work.now)
    if not isinstance(event, ItemReported):
        return Taken(event.item, duplicate=True)
    await notify.announce_reported(work, event, actor)
    return Taken(event.item, duplicate=False, reported=event)
