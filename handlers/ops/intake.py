"""Take an item pushed by a source system (舆情监测系统, the 12345 platform): the intake API's
operation. The same record sent again — a retry, a re-push — finds the item it became instead of
reporting it twice: by (source system, external id), and otherwise by its normalised link within
policy.duplicate_days (the same rule as 上报 in chat, which records the repeat as a supplement).

A new item is reported through the report operation exactly as 上报 is, in the duty chat of its
unit (or the nearest unit above with one; else the coordinators' chat), and announced there with
the same acceptance and grade question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import Enum

from domain.config import ChatConfig
from domain.directory import Directory
from handlers import items as common
from handlers.links import link_key
from handlers.ops import notify, publish
from handlers.ops.base import Actor, Work
from handlers.ops.events import ItemReported
from handlers.ops.report import ReportInput, build_item, grade_askers, reported_after
from store import audit, item_sources, pending
from store import items as item_store
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
    return (await take_many(work, actor, [data]))[0]


async def units_of_taken(work: Work, taken: Sequence[Taken]) -> dict[int, list[str]]:
    """item id → its units, for the answers: a new item's are its lead unit (what _store_new
    wrote, no read needed); only items taken before (duplicates, supplements) are looked up."""
    created = {one.item.id for one in taken if not one.duplicate}
    units = {one.item.id: [one.item.lead_unit_id] for one in taken
             if one.item.id in created and one.item.lead_unit_id}
    known = [one.item.id for one in taken if one.item.id not in created]
    return units | await item_store.units_of_many(work.session, known)


class _Kind(Enum):
    NEW = "new"
    KNOWN = "known"  # the record was taken before: the item it became
    REPEAT = "repeat"  # the same record earlier in this batch
    SUPPLEMENT = "supplement"  # a link reported within policy.duplicate_days: recorded on that item


@dataclass(eq=False)  # identity: entries are told apart as objects (a batch may repeat a record)
class _Entry:
    """One record of a batch on its way: what it is, and the item it turned out to be."""

    data: Intake
    text: str
    chat: ChatConfig
    link_key: str | None
    kind: _Kind = _Kind.NEW
    item: Item | None = None
    same_as: _Entry | None = None  # REPEAT, or SUPPLEMENT to an item new in this batch
    reported: ItemReported | None = None

    def final_item(self) -> Item:
        if self.item is not None:
            return self.item
        assert self.same_as is not None, "an entry is new, known, or the same as an earlier one"
        return self.same_as.final_item()


async def take_many(work: Work, actor: Actor, batch: Sequence[Intake]) -> list[Taken]:
    """Take records in order, with the outcome of taking them one by one (a record repeated inside
    the batch is a duplicate of its first occurrence, a link repeated is a supplement) but in a
    fixed number of statements: a monitoring system pushes hundreds at once, and on the one-by-one
    path each item cost a dozen statements, each costing more than the work."""
    entries = [_entry(work, data) for data in batch]
    await item_sources.lock_many(work.session, [key for entry in entries for key in _record_keys(entry)])
    known = await _known_records(work, entries)
    linked = await _known_links(work, entries)
    news = _sort_out(work, entries, known, linked)
    await _store_new(work, actor, news)
    await _record_supplements(work, actor, entries)
    await item_sources.remember_many(work.session, [
        (e.data.source_system, e.data.external_id, e.final_item().id)
        for e in entries if e.data.external_id and e.kind in (_Kind.NEW, _Kind.SUPPLEMENT)
    ], work.now)
    reported = await _ask_for_grades(work, actor, news)
    await notify.announce_reported_many(work, reported, actor)
    await publish.reported(work, actor, [event.item for event in reported])  # for subscribed systems
    return [Taken(e.final_item(), duplicate=e.kind is not _Kind.NEW, reported=e.reported) for e in entries]


def _entry(work: Work, data: Intake) -> _Entry:
    text = text_of(data)
    unit_id = data.unit_id
    if unit_id is None:
        suggested = work.directory.suggest_unit(text)
        unit_id = suggested.id if suggested is not None else None
    chat = duty_chat(work.directory, unit_id)
    if chat is None:
        raise NoChat("no chat is configured")
    return _Entry(replace(data, unit_id=unit_id), text, chat, link_key(data.url) if data.url else None)


def _record_keys(entry: _Entry) -> list[str]:
    if entry.data.external_id:
        return [f"ext|{entry.data.source_system}|{entry.data.external_id}"]
    return [f"url|{entry.link_key}"] if entry.link_key else []


def _record(entry: _Entry) -> tuple[str, str] | None:
    return (entry.data.source_system, entry.data.external_id) if entry.data.external_id else None


async def _known_records(work: Work, entries: list[_Entry]) -> dict[tuple[str, str], Item]:
    """(source system, external id) → the item a record already became."""
    wanted: dict[str, list[str]] = {}
    for entry in entries:
        if entry.data.external_id:
            wanted.setdefault(entry.data.source_system, []).append(entry.data.external_id)
    known: dict[tuple[str, str], Item] = {}
    for source, ids in wanted.items():
        for external_id, item in (await item_sources.find_many(work.session, source, ids)).items():
            known[(source, external_id)] = item
    return known


async def _known_links(work: Work, entries: list[_Entry]) -> dict[str, Item]:
    """link key → the item reported with it within policy.duplicate_days (the 上报 rule)."""
    days = work.config.policy.duplicate_days
    keys = [e.link_key for e in entries if e.link_key]
    if days == 0 or not keys:
        return {}
    return await item_store.latest_by_link_keys(work.session, keys, work.now - timedelta(days=days))


def _sort_out(
    work: Work, entries: list[_Entry], known: dict[tuple[str, str], Item], linked: dict[str, Item]
) -> list[_Entry]:
    """Decide, in order, what each entry is; returns the new ones."""
    first_of_record: dict[tuple[str, str], _Entry] = {}
    new_with_link: dict[str, _Entry] = {}
    checks_links = work.config.policy.duplicate_days > 0
    news: list[_Entry] = []
    for entry in entries:
        record = _record(entry)
        if record is not None and record in known:
            entry.kind, entry.item = _Kind.KNOWN, known[record]
        elif record is not None and record in first_of_record:
            entry.kind, entry.same_as = _Kind.REPEAT, first_of_record[record]
        elif checks_links and entry.link_key in new_with_link:
            entry.kind, entry.same_as = _Kind.SUPPLEMENT, new_with_link[entry.link_key or ""]
        elif entry.link_key is not None and entry.link_key in linked:
            entry.kind, entry.item = _Kind.SUPPLEMENT, linked[entry.link_key]
        else:
            news.append(entry)
            if entry.link_key is not None:
                new_with_link[entry.link_key] = entry
        if record is not None:
            first_of_record.setdefault(record, entry)
    return news


async def _store_new(work: Work, actor: Actor, news: list[_Entry]) -> None:
    """Number, insert and audit the new items. The numbers come last but one: the counter's row
    stays locked until commit, and every other reporter waits for it."""
    inputs = [_report_input(entry) for entry in news]
    numbers = await item_store.next_numbers(work.session, len(news)) if news else range(0)
    for entry, data, number in zip(news, inputs, numbers, strict=True):
        entry.item = build_item(work, actor, data, entry.data.url, entry.link_key, number)
    items = [entry.final_item() for entry in news]
    await item_store.add_many(work.session, items)
    await item_store.add_units_many(work.session, [(i, [i.lead_unit_id]) for i in items if i.lead_unit_id])
    await audit.record_many(work.session, [
        {"at": work.now, "actor": actor.id, "chat_id": item.chat_id, "action": "reported", "item_id": item.id,
         "detail": common.public_summary(item), "after": reported_after(item, data)}
        for item, data in zip(items, inputs, strict=True)
    ])


def _report_input(entry: _Entry) -> ReportInput:
    data = entry.data
    return ReportInput(entry.text, entry.chat, link=data.url, classified=data.classified, unit_id=data.unit_id,
                       source=data.platform, suggested_grade=data.suggested_grade)


async def _record_supplements(work: Work, actor: Actor, entries: list[_Entry]) -> None:
    """A supplement is an audit row on the earlier item (see report.supplement), here in one statement."""
    rows = []
    for entry in entries:
        if entry.kind is not _Kind.SUPPLEMENT:
            continue
        item = entry.final_item()
        item_store.touch(item, work.now)
        public = common.CLASSIFIED_DETAIL if entry.data.classified or item.classified else entry.text
        rows.append({"at": work.now, "actor": actor.id, "chat_id": entry.chat.id, "action": "supplement",
                     "item_id": item.id, "detail": public,
                     "after": {"summary": entry.text, "link": entry.data.url, "classified": entry.data.classified}})
    await audit.record_many(work.session, rows)


async def _ask_for_grades(work: Work, actor: Actor, news: list[_Entry]) -> list[ItemReported]:
    """Each new item's grade question, to those who may grade it. A person has one open question per
    chat and a later one replaces it: only each person's last question of the batch is stored."""
    last: dict[tuple[str, str], _Entry] = {}
    for entry in news:
        item = entry.final_item()
        on_duty = await work.on_duty(entry.chat)
        asked = await grade_askers(work, actor, item, entry.chat, [*on_duty.officers, *on_duty.leaders])
        entry.reported = ItemReported(item, tuple(asked), on_duty.officers, None, entry.data.suggested_grade)
        for person in asked:
            last[(entry.chat.id, person)] = entry
    for entry in dict.fromkeys(last.values()):
        item = entry.final_item()
        users = [person for (chat_id, person), last_entry in last.items() if last_entry is entry]
        await pending.ask(
            work.session, platform=entry.chat.platform.value, chat_id=entry.chat.id, users=users, kind="grade",
            item_id=item.id, asked_at=work.now,
            expires_at=work.now + timedelta(minutes=work.config.policy.grade_question_minutes),
            payload={"number": item.number},
        )
    return [entry.reported for entry in news if entry.reported is not None]
