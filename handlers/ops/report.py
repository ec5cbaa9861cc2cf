"""Report an item: the operation behind 上报 in chat and POST /api/v1/items.

Records the item (or, for a link reported within policy.duplicate_days, a supplement to the
earlier item), suggests its lead unit, starts its grade clock and puts the grade question to
those who may grade it in the item's chat (004 第六条, policy.grade_by).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from domain.config import ChatConfig
from domain.vocab import ItemStatus, Role
from handlers import items as common
from handlers.intake import guess_category, guess_source
from handlers.links import link_key
from handlers.ops import publish
from handlers.ops.base import Actor, Work
from handlers.ops.events import ItemReported, ItemSupplemented
from handlers.parsing import find_urls
from handlers.permissions import may_grade
from handlers.policy import deadlines, unique
from store import items as item_store
from store import pending
from store.models import Item


@dataclass(frozen=True)
class ReportInput:
    """What is reported: the text (its first link is the item's link unless `link` is given), the
    chat the item belongs to, and what the reporter said of it."""

    text: str
    chat: ChatConfig
    link: str | None = None
    classified: bool = False
    new_lead: bool = False  # 新线索: a new item even if its link was reported before
    unit_id: str | None = None  # the lead unit, when the reporter named it (else suggested from the text)
    source: str | None = None  # the platform it was seen on (微博, 抖音 …), when the reporter said
    suggested_grade: str | None = None


async def report(work: Work, actor: Actor, data: ReportInput) -> ItemReported | ItemSupplemented:
    urls = find_urls(data.text)
    link = data.link or (urls[0] if urls else None)
    key = link_key(link) if link else None
    if key is not None and not data.new_lead:
        same = await same_link(work, key)
        if same is not None:
            await supplement(work, actor, same, data, link)
            return ItemSupplemented(same)
    item = await _new_item(work, actor, data, link, key)
    earlier = None
    if actor.is_person:
        earlier = await pending.open_question(work.session, data.chat.platform.value, data.chat.id, actor.id, work.now)
    on_duty = await work.on_duty(data.chat)
    asked = await _ask_for_grade(work, actor, item, data.chat, [*on_duty.officers, *on_duty.leaders])
    replaced = int(earlier[1]["number"]) if earlier is not None and earlier[0] == "grade" else None
    await publish.reported(work, actor, [item])  # item.reported for subscribed systems, in this transaction
    return ItemReported(item, tuple(asked), on_duty.officers, replaced, data.suggested_grade)


async def same_link(work: Work, key: str) -> Item | None:
    """The item reported with the same link within policy.duplicate_days (0: the check is off)."""
    days = work.config.policy.duplicate_days
    if days == 0:
        return None
    return await item_store.latest_by_link_key(work.session, key, work.now - timedelta(days=days))


async def supplement(work: Work, actor: Actor, item: Item, data: ReportInput, link: str | None) -> None:
    """Record a report of a known link on the earlier item: no new number, no grade question.

    查询 shows the entry's detail in groups, so the detail is the text only when neither the item
    nor this report is 涉密 (001 第十七条); the audit keeps the text in `after`."""
    public = common.CLASSIFIED_DETAIL if data.classified or item.classified else data.text
    await work.record(actor, item, "supplement", chat_id=data.chat.id, detail=public,
                      after={"summary": data.text, "link": link, "classified": data.classified})


async def _new_item(work: Work, actor: Actor, data: ReportInput, link: str | None, key: str | None) -> Item:
    item = build_item(work, actor, data, link, key, await item_store.next_number(work.session))
    await item_store.add(work.session, item)
    if item.lead_unit_id is not None:
        await item_store.set_units(work.session, item, [item.lead_unit_id], new_item=True)
    await work.record(actor, item, "reported", chat_id=data.chat.id, detail=common.public_summary(item),
                      after=reported_after(item, data))
    return item


def build_item(work: Work, actor: Actor, data: ReportInput, link: str | None, key: str | None, number: int) -> Item:
    """The new item, not yet stored: its lead unit (named, else suggested from the text, else the
    chat's unit), category, source, grade clock and first reminder."""
    if data.unit_id is not None:
        unit_id: str | None = data.unit_id
    else:
        unit = work.directory.suggest_unit(data.text)
        unit_id = unit.id if unit else data.chat.unit
    due = deadlines(work.now, None, work.config.policy)
    item = Item(
        number=number, chat_id=data.chat.id,
        source=data.source or guess_source(link, data.text), link=link, link_key=key, summary=data.text,
        category=guess_category(data.text, work.config.policy.categories), grade=None, lead_unit_id=unit_id,
        status=ItemStatus.REPORTED.value, reported_by=actor.id, reported_at=work.now, grade_due_at=due.grade_due,
        classified=data.classified, referred_to=[], updated_at=work.now,
    )
    common.schedule_next(item, work.config, work.now)
    return item


def reported_after(item: Item, data: ReportInput) -> dict[str, Any]:
    """The `reported` audit row's record of what the item was created with."""
    after = common.snapshot(item, "number", "source", "link", "category", "lead_unit_id", "classified")
    if data.new_lead:
        after["new_lead"] = True  # the reporter overrode the duplicate check: on record
    if data.suggested_grade:
        after["suggested_grade"] = data.suggested_grade
    return after


async def _ask_for_grade(work: Work, actor: Actor, item: Item, chat: ChatConfig, on_duty: list[str]) -> list[str]:
    """Put the grade question to those who may answer it; returns who was asked."""
    asked = await grade_askers(work, actor, item, chat, on_duty)
    await pending.ask(
        work.session, platform=chat.platform.value, chat_id=chat.id, users=asked, kind="grade", item_id=item.id,
        asked_at=work.now, expires_at=work.now + timedelta(minutes=work.config.policy.grade_question_minutes),
        payload={"number": item.number},
    )
    return asked


async def grade_askers(work: Work, actor: Actor, item: Item, chat: ChatConfig, on_duty: list[str]) -> list[str]:
    """The reporter, the people on duty and the unit's leaders — those of them who may grade
    (004 第六条, policy.grade_by) — may each answer with a bare 1/2/3."""
    leaders: list[str] = []
    if item.lead_unit_id is not None:
        for role in (Role.PRINCIPAL, Role.LEADER):
            leaders += [p.id for p in work.directory.responsible(role, item.lead_unit_id)]
    duty = await work.on_duty(chat)
    units = [item.lead_unit_id] if item.lead_unit_id else []
    reporter = [actor.id] if actor.is_person else []
    return [
        person for person in unique([*reporter, *on_duty, *leaders])
        if may_grade(person, units, duty, work.directory, work.config.policy)
    ]
