"""转办, 退回 and 涉密 as operations without chat (handlers/ops/assign.py, classify.py): called
directly with an Actor — a person, or an API client — on SQLite and PostgreSQL, checking the
events, the stored item, the audit rows (the actor of record) and the outbox notices."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import pytest
from sqlalchemy import select

from domain.config import ChatConfig, Config
from domain.directory import Directory
from domain.vocab import Grade, ItemStatus
from handlers.duty import ConfiguredDuty
from handlers.items import CLASSIFIED_SUMMARY
from handlers.ops import assign as assigning
from handlers.ops import classify as classifying
from handlers.ops import notify, notify_assign
from handlers.ops.acknowledge import ItemAcknowledged, acknowledge
from handlers.ops.assign import AssignRefusal, AssignRefused, ReturnRefused
from handlers.ops.base import Actor, ActorKind, Work
from handlers.ops.classify import AlreadyClassified, NotClassified
from handlers.ops.events import ItemAssigned, ItemClassified, ItemDeclassified, ItemReported, ItemReturned, LeadChanged
from handlers.ops.grade import ItemGraded, grade
from handlers.ops.permits import NotPermitted
from handlers.ops.report import ReportInput, report
from handlers.permissions import Action
from store import audit
from store import items as item_store
from store.db import Database
from store.models import Item, ItemEvent, OutboxMessage
from tests.conftest import START

MONITOR = Actor("yuqing_monitor", "舆情监测平台", ActorKind.API)
OFFICER = Actor("zhao_min", "赵敏")  # 值班员 on duty in wecom_duty, liaison of gov_office
COORDINATOR = Actor("wang_jun", "王军")
CG_LIAISON = Actor("yang_fan", "杨帆")  # 城关镇联络员
CG_LEADER = Actor("han_mei", "韩梅")  # 城关镇分管领导
HEALTH_LIAISON = Actor("feng_xue", "冯雪")
# No unit's keyword: the lead suggested at report is the chat's unit (gov_office).
TEXT = "网友反映某小区连续三天停水，物业未作说明 https://weibo.com/5501"
LINK = "https://weibo.com/5501"
T = TypeVar("T")


@dataclass
class Env:
    db: Database
    config: Config
    directory: Directory
    minutes: int = 0

    @asynccontextmanager
    async def work(self) -> AsyncIterator[Work]:
        """One unit of work, a minute after the previous one."""
        self.minutes += 1
        async with self.db.transaction() as session:
            yield Work(session, self.config, self.directory, ConfiguredDuty(self.directory),
                       START + timedelta(minutes=self.minutes))

    @property
    def duty_chat(self) -> ChatConfig:
        return self.directory.chats["wecom_duty"]

    async def reported(self, actor: Actor = MONITOR, *, classified: bool = False) -> int:
        async with self.work() as work:
            event = await report(work, actor, ReportInput(TEXT, self.duty_chat, classified=classified))
            assert isinstance(event, ItemReported)
            return event.item.number

    async def act(self, number: int, op: Callable[[Work, Item], Awaitable[T]]) -> T:
        """`op` on item `number` in a unit of work of its own."""
        async with self.work() as work:
            item = await item_store.by_number(work.session, number)
            assert item is not None
            return await op(work, item)

    async def item(self, number: int) -> Item:
        async with self.db.read() as session:
            found = await item_store.by_number(session, number)
            assert found is not None
            return found

    async def units(self, number: int) -> list[str]:
        item = await self.item(number)
        async with self.db.read() as session:
            return await item_store.units_of(session, item.id)

    async def events(self, number: int) -> list[ItemEvent]:
        item = await self.item(number)
        async with self.db.read() as session:
            return await audit.timeline(session, item.id)

    async def outbox(self) -> list[OutboxMessage]:
        async with self.db.read() as session:
            return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


@pytest.fixture
async def env(config: Config) -> AsyncIterator[Env]:
    db = Database(config.database.url)
    await db.upgrade()
    try:
        yield Env(db, config, Directory(config))
    finally:
        await db.dispose()


async def _assign(env: Env, actor: Actor, number: int, units: list[str], reason: str = "") -> object:
    async with env.work() as work:
        item = await item_store.by_number(work.session, number)
        assert item is not None
        event = await assigning.assign(work, actor, env.duty_chat, item, units, reason)
        if isinstance(event, ItemAssigned):
            await notify_assign.announce_lead_change(work, event, chat=env.duty_chat)
        return event


async def _give_back(env: Env, actor: Actor, number: int, reason: str) -> object:
    async with env.work() as work:
        item = await item_store.by_number(work.session, number)
        assert item is not None
        event = await assigning.give_back(work, actor, env.duty_chat, item, reason)
        if isinstance(event, ItemReturned):
            await notify_assign.announce_returned(work, event, chat=env.duty_chat)
        return event


async def _acknowledged(env: Env, actor: Actor, number: int) -> None:
    event = await env.act(number, lambda work, item: acknowledge(work, actor, env.duty_chat, item))
    assert isinstance(event, ItemAcknowledged)


async def _graded(env: Env, number: int, new: Grade) -> None:
    assert isinstance(await env.act(number, lambda work, item: grade(work, OFFICER, env.duty_chat, item, new)),
                      ItemGraded)


# -- 转办 -----------------------------------------------------------------------------------------


async def test_a_person_assigns_an_item_the_api_reported(env: Env) -> None:
    number = await env.reported()
    assert await env.units(number) == ["gov_office"]
    async with env.work() as work:
        item = await item_store.by_number(work.session, number)
        assert item is not None
        event = await assigning.assign(work, OFFICER, env.duty_chat, item, ["chengguan", "health"])
        assert isinstance(event, ItemAssigned)
        await notify_assign.announce_lead_change(work, event, chat=env.duty_chat)
        notice = notify_assign.assigned(work, event)
        at = work.now
    assert event.units == ("chengguan", "health") and event.by == OFFICER and event.reason == ""
    assert event.lead_change == LeadChanged("gov_office", "chengguan")
    # Ungraded: no pass-on deadline yet, so the notice asks for a grade; it @-mentions the units'
    # 分管领导 and 联络员.
    assert notice.text == (
        f"【转办】#{number} 已转 清河县城关镇人民政府（牵头）、清河县卫生健康局（配合）。\n"
        f"请承办单位签收：发送“签收 #{number}”。该线索尚未定级，请尽快定级。"
    )
    assert notice.mentions == ("han_mei", "yang_fan", "zheng_qiang", "feng_xue")

    item = await env.item(number)
    assert await env.units(number) == ["chengguan", "health"]
    assert item.lead_unit_id == "chengguan" and item.status == ItemStatus.ASSIGNED.value
    assert item.assigned_at == at and item.next_reminder_at is not None
    reported, assigned = await env.events(number)
    assert (reported.action, reported.actor) == ("reported", "yuqing_monitor")  # the API client, of record
    assert (assigned.action, assigned.actor, assigned.chat_id) == ("assigned", "zhao_min", "wecom_duty")
    assert assigned.detail == "清河县城关镇人民政府、清河县卫生健康局"
    assert assigned.before == {"units": ["gov_office"], "status": ItemStatus.REPORTED.value}
    assert assigned.after == {"units": ["chengguan", "health"], "status": ItemStatus.ASSIGNED.value}
    assert assigned.id == event.event_id

    [copy] = await env.outbox()  # the change of lead, in the coordinators' chat only
    assert copy.chat_id == "coordinators" and copy.item_id == item.id
    assert copy.key == f"notice:item{item.id}:lead:{event.event_id}:coordinators"
    header = f"【牵头单位变更】#{number} 未定级｜清河县人民政府办公室 → 清河县城关镇人民政府\n操作：赵敏 "
    assert copy.text.startswith(header)
    assert copy.text.endswith(f"摘要：{TEXT}")


async def test_an_api_client_may_not_assign_return_or_classify_and_nothing_changes(env: Env) -> None:
    number = await env.reported()
    refused = await _assign(env, MONITOR, number, ["chengguan"])
    assert isinstance(refused, NotPermitted) and refused.action is Action.ASSIGN
    assert refused.who == "当班值班人员、承办单位联络员及领导、协调人员或管理员"
    back = await _give_back(env, MONITOR, number, "不属本单位")
    assert isinstance(back, ReturnRefused) and back.units == ("gov_office",)
    chat = env.duty_chat
    marked = await env.act(number, lambda work, item: classifying.classify(work, MONITOR, chat, item, "某事项"))
    assert isinstance(marked, NotPermitted) and marked.action is Action.CLASSIFY
    # Refusals change nothing and write nothing: the door words and audits them.
    item = await env.item(number)
    assert await env.units(number) == ["gov_office"] and item.status == ItemStatus.REPORTED.value
    assert not item.classified and item.assigned_at is None
    assert [e.action for e in await env.events(number)] == ["reported"]
    assert await env.outbox() == []


async def test_units_the_directory_does_not_know_or_names_twice_are_refused(env: Env) -> None:
    number = await env.reported()
    for units, refusal, unit in (
        ([], AssignRefusal.NO_UNITS, None),
        (["chengguan", "nowhere"], AssignRefusal.UNKNOWN_UNIT, "nowhere"),
        (["health", "chengguan", "health"], AssignRefusal.DUPLICATE_UNIT, "health"),
    ):
        event = await _assign(env, COORDINATOR, number, units)
        assert isinstance(event, AssignRefused) and (event.refusal, event.unit) == (refusal, unit)
    assert await env.units(number) == ["gov_office"]
    assert [e.action for e in await env.events(number)] == ["reported"]


async def test_after_the_leads_acknowledgement_only_the_policys_roles_change_the_lead_with_a_reason(env: Env) -> None:
    number = await env.reported()
    await _graded(env, number, Grade.SIGNIFICANT)
    assert isinstance(await _assign(env, OFFICER, number, ["chengguan"]), ItemAssigned)
    await _acknowledged(env, CG_LIAISON, number)
    signed = await env.item(number)
    assert signed.status == ItemStatus.ACKNOWLEDGED.value and signed.acknowledged_by == "yang_fan"

    refused = await _assign(env, OFFICER, number, ["xian"], "属西岸")  # the duty officer: not after 签收
    assert isinstance(refused, AssignRefused) and refused.refusal is AssignRefusal.LEAD_CHANGE_NOT_PERMITTED
    assert refused.unit == "xian" and refused.who == "协调人员、管理员或牵头单位主要负责人、分管领导"
    needs = await _assign(env, COORDINATOR, number, ["xian"])
    assert isinstance(needs, AssignRefused) and needs.refusal is AssignRefusal.LEAD_CHANGE_NEEDS_REASON
    assert (await env.item(number)).acknowledged_at == signed.acknowledged_at  # nothing changed

    # Co-units may change while the lead's 签收 stands: nobody is asked to sign again, no copy.
    co = await _assign(env, OFFICER, number, ["chengguan", "health"])
    assert isinstance(co, ItemAssigned) and co.lead_change is None
    async with env.work() as work:
        assert notify_assign.assigned(work, co) == notify.Notice(
            f"【转办】#{number} 配合单位调整为：清河县城关镇人民政府（牵头）、清河县卫生健康局（配合）。"
            "牵头单位不变，已签收。", ())
    assert (await env.item(number)).status == ItemStatus.ACKNOWLEDGED.value

    moved = await _assign(env, CG_LEADER, number, ["xian"], "经核实属西岸街道辖区")
    assert isinstance(moved, ItemAssigned) and moved.lead_change == LeadChanged("chengguan", "xian")
    item = await env.item(number)
    # The new lead has acknowledged nothing: its pass-on clock runs again.
    assert item.acknowledged_at is None and item.acknowledged_by is None
    assert item.status == ItemStatus.ASSIGNED.value and await env.units(number) == ["xian"]
    last = (await env.events(number))[-1]
    assert (last.action, last.actor) == ("assigned", "han_mei")
    assert last.before["status"] == ItemStatus.ACKNOWLEDGED.value
    assert last.after == {"units": ["xian"], "status": ItemStatus.ASSIGNED.value, "reason": "经核实属西岸街道辖区"}
    async with env.work() as work:
        notice = notify_assign.assigned(work, moved)
    assert notice.text.startswith(f"【转办】#{number} 已转 清河县西岸街道办事处。\n请承办单位于 ")
    assert notice.text.endswith("\n变更理由：经核实属西岸街道辖区")
    assert notice.mentions == ("qin_lei", "you_jia")
    copies = [m for m in await env.outbox() if m.text.startswith("【牵头单位变更】")]
    assert [c.key.split(":")[2] for c in copies] == ["lead", "lead"]  # gov_office → 城关镇, 城关镇 → 西岸
    assert "清河县城关镇人民政府 → 清河县西岸街道办事处\n操作：韩梅 " in copies[-1].text
    assert "变更理由：经核实属西岸街道辖区" in copies[-1].text


# -- 退回 -----------------------------------------------------------------------------------------


async def test_the_lead_gives_an_item_back_and_the_coordinators_are_called(env: Env) -> None:
    number = await env.reported()
    await _graded(env, number, Grade.GENERAL)
    assert isinstance(await _assign(env, OFFICER, number, ["chengguan", "health"]), ItemAssigned)
    await _acknowledged(env, CG_LIAISON, number)

    back = await _give_back(env, CG_LIAISON, number, "该路段属县住建局管理")
    assert isinstance(back, ItemReturned)
    assert (back.unit, back.was_lead, back.remaining, back.by) == ("chengguan", True, (), CG_LIAISON)
    item = await env.item(number)
    assert item.lead_unit_id is None and await env.units(number) == []
    assert item.acknowledged_at is None and item.status == ItemStatus.GRADED.value
    last = (await env.events(number))[-1]
    assert (last.action, last.actor, last.detail) == ("returned", "yang_fan", "该路段属县住建局管理")
    assert last.before["units"] == ["chengguan", "health"] and last.before["status"] == ItemStatus.ACKNOWLEDGED.value
    assert last.after == {"units": [], "unit": "chengguan", "reason": "该路段属县住建局管理",
                          "status": ItemStatus.GRADED.value, "acknowledged_at": None}

    async with env.work() as work:
        notice = notify_assign.returned(work, back)
    assert notice.text == f"#{number} 已退回，由协调人员重新确定牵头单位。退回理由：该路段属县住建局管理"
    assert notice.mentions == ("wang_jun", "chen_gang")
    [copy] = [m for m in await env.outbox() if m.key.split(":")[2] == "returned"]
    assert copy.chat_id == "coordinators" and copy.mentions == ["wang_jun", "chen_gang"]
    assert copy.key == f"notice:item{item.id}:returned:{back.event_id}:coordinators"
    assert copy.text.startswith(f"【退回】#{number} 一般｜清河县城关镇人民政府认为不属本单位职责，申请协调。\n"
                                "退回理由：该路段属县住建局管理\n操作：杨帆 ")
    assert copy.text.endswith(f"请协调人员确定牵头单位：发送“转办 #{number} 单位”。")


async def test_a_co_unit_steps_out_and_the_staff_of_no_unit_may_not(env: Env) -> None:
    number = await env.reported()
    assert isinstance(await _assign(env, OFFICER, number, ["chengguan", "health"]), ItemAssigned)
    stranger = await _give_back(env, Actor("you_jia", "尤佳"), number, "不是我们的")  # 西岸's liaison
    assert isinstance(stranger, ReturnRefused) and stranger.units == ("chengguan", "health")

    back = await _give_back(env, HEALTH_LIAISON, number, "不涉及卫生健康")
    assert isinstance(back, ItemReturned) and not back.was_lead and back.remaining == ("chengguan",)
    item = await env.item(number)
    assert await env.units(number) == ["chengguan"] and item.lead_unit_id == "chengguan"
    assert item.status == ItemStatus.ASSIGNED.value
    assert [e.action for e in await env.events(number)] == ["reported", "assigned", "returned"]
    async with env.work() as work:
        notice = notify_assign.returned(work, back)
    assert notice == notify.Notice(f"#{number} 已退回，清河县卫生健康局不再作为配合单位。退回理由：不涉及卫生健康", ())


async def test_copies_switched_off_in_the_policy_are_not_queued(env: Env) -> None:
    copies = env.config.policy.copies.model_copy(update={"lead_change": False, "returned": False})
    env.config = env.config.model_copy(update={"policy": env.config.policy.model_copy(update={"copies": copies})})
    number = await env.reported()
    assert isinstance(await _assign(env, OFFICER, number, ["chengguan"]), ItemAssigned)
    assert isinstance(await _give_back(env, CG_LIAISON, number, "不属本镇"), ItemReturned)
    assert [e.action for e in await env.events(number)] == ["reported", "assigned", "returned"]
    assert await env.outbox() == []


# -- 涉密 -----------------------------------------------------------------------------------------


async def test_a_coordinator_classifies_changes_the_summary_and_lifts_the_mark(env: Env) -> None:
    number = await env.reported()

    chat = env.duty_chat

    async def classify(actor: Actor, summary: str | None) -> object:
        return await env.act(number, lambda work, item: classifying.classify(work, actor, chat, item, summary))

    async def declassify(actor: Actor, reason: str) -> object:
        return await env.act(number, lambda work, item: classifying.declassify(work, actor, chat, item, reason))

    refused = await classify(OFFICER, "城关镇某事项")
    assert isinstance(refused, NotPermitted) and refused.who == "协调人员或管理员"
    marked = await classify(COORDINATOR, "城关镇某安全生产事项")
    assert isinstance(marked, ItemClassified) and not marked.was_classified
    assert (marked.summary, marked.by) == ("城关镇某安全生产事项", COORDINATOR)
    assert isinstance(await classify(COORDINATOR, None), AlreadyClassified)
    assert isinstance(await classify(COORDINATOR, "城关镇某安全生产事项"), AlreadyClassified)
    changed = await classify(Actor("xu_ming", "许明"), "某安全生产事项")  # an admin
    assert isinstance(changed, ItemClassified) and changed.was_classified
    item = await env.item(number)
    assert item.classified and item.authorised_summary == "某安全生产事项"

    # Every notice about it now shows the authorised summary only: no text, no link.
    moved = await _assign(env, OFFICER, number, ["chengguan"])
    assert isinstance(moved, ItemAssigned)
    [copy] = await env.outbox()
    assert copy.text.endswith("摘要：某安全生产事项") and LINK not in copy.text and "停水" not in copy.text

    lifted = await declassify(COORDINATOR, "经审核可公开")
    assert isinstance(lifted, ItemDeclassified) and lifted.reason == "经审核可公开"
    assert isinstance(await declassify(COORDINATOR, ""), NotClassified)
    assert not (await env.item(number)).classified
    events = [e for e in await env.events(number) if e.action in ("classified", "declassified")]
    assert [(e.action, e.actor, e.detail) for e in events] == [
        ("classified", "wang_jun", "城关镇某安全生产事项"),
        ("classified", "xu_ming", "某安全生产事项"),
        ("declassified", "wang_jun", "经审核可公开"),
    ]
    assert events[0].before == {"classified": False, "authorised_summary": None}
    assert events[1].before == {"classified": True, "authorised_summary": "城关镇某安全生产事项"}
    assert events[2].after == {"classified": False, "authorised_summary": "某安全生产事项"}
    assert events[0].id == marked.event_id and events[2].id == lifted.event_id


async def test_an_item_the_api_reports_classified_is_marked_at_report(env: Env) -> None:
    async with env.work() as work:
        event = await report(work, MONITOR, ReportInput(TEXT, env.duty_chat, classified=True))
        assert isinstance(event, ItemReported)
        await notify.announce_reported(work, event, MONITOR)
    item = await env.item(event.item.number)
    assert item.classified and item.authorised_summary is None
    [reported] = await env.events(item.number)
    assert (reported.actor, reported.after["classified"]) == ("yuqing_monitor", True)
    assert reported.detail == CLASSIFIED_SUMMARY
    # The acceptance in the item's chat shows the standard wording, never the text or the link.
    [accepted] = await env.outbox()
    assert accepted.chat_id == "wecom_duty" and f"摘要：{CLASSIFIED_SUMMARY}" in accepted.text
    assert LINK not in accepted.text and "停水" not in accepted.text
    # Marking it again afterwards is a no-op for a coordinator, and a 涉密 item's 退回 shows no reason.
    chat = env.duty_chat
    again = await env.act(item.number, lambda work, stored: classifying.classify(work, COORDINATOR, chat, stored))
    assert isinstance(again, AlreadyClassified)
    assert isinstance(await _assign(env, OFFICER, item.number, ["chengguan"]), ItemAssigned)
    back = await _give_back(env, CG_LIAISON, item.number, "属县住建局职责")
    assert isinstance(back, ItemReturned)
    returned_copy = [m for m in await env.outbox() if m.text.startswith("【退回】")]
    assert len(returned_copy) == 1 and "属县住建局职责" not in returned_copy[0].text
    assert "退回理由：（涉密，内容不在群内显示）" in returned_copy[0].text
