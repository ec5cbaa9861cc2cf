"""The roster's operations without chat (issue #15 point 1): 请假, 销假, 换班 (asked, agreed, declined,
expired, stale), 代班, 排班 and 替班 called directly over a unit of work, an actor and the clock, on
SQLite and PostgreSQL. Each event carries the shifts as stored after the change; each refusal says
why (the "on leave" refusal with the leave and its reason); each change is audited with its actor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, select

from domain.config import ChatConfig
from domain.dialogues import SwapQuestion
from domain.vocab import Role
from handlers.ops import roster_admin, roster_leave, roster_swap
from handlers.ops.base import Actor, ActorKind, Work
from handlers.ops.roster import (
    BadLeaveRange,
    LeaveCancelled,
    LeaveTaken,
    NoLeave,
    NotAPerson,
    OnLeave,
    PrivilegedOnly,
    RosterChange,
    ShiftAssigned,
    ShiftCovered,
    ShiftReplaced,
    ShiftsSwapped,
    SwapAsked,
    SwapDeclined,
    SwapExpired,
    SwapStale,
)
from handlers.roster_parse import DayExpr, RangeExpr, ShiftExpr
from handlers.roster_rules import Segment
from store import pending
from store.models import ItemEvent, OutboxMessage, RosterAssignment, RosterLeave, RosterOverride
from store.pending import Question
from tests.conftest import SHANGHAI, Bot
from tests.roster_support import EXAMPLE_TEXT, load_roster

# The example roster with a third officer (刘洋), so that someone may cover within the limits of duty and rest.
THREE_OFFICERS = EXAMPLE_TEXT.replace("值班员,赵敏、孙丽,每天", "值班员,赵敏、孙丽、刘洋,每天").replace(
    "值班员,孙丽、赵敏,每班", "值班员,孙丽、刘洋、赵敏,每班")
CHAT = "wecom_duty"
T = TypeVar("T")


def person(bot: Bot, person_id: str) -> Actor:
    return Actor(person_id, bot.runtime.directory.people[person_id].name)


def chat(bot: Bot) -> ChatConfig:
    return bot.runtime.directory.chats[CHAT]


def shift(month: int, day: int, name: str | None = None) -> ShiftExpr:
    return ShiftExpr(DayExpr(month=month, day=day), name)


@asynccontextmanager
async def work(bot: Bot) -> AsyncIterator[Work]:
    """One unit of work at the bot's clock: committed when the block ends."""
    runtime = bot.runtime
    async with runtime.db.transaction() as session:
        yield Work(session, runtime.config, runtime.directory, runtime.duty, bot.clock.now())


async def rows(bot: Bot, model: type[T], *where: ColumnElement[bool]) -> list[T]:
    async with bot.runtime.db.read() as session:
        return list((await session.execute(select(model).where(*where))).scalars())


async def audit(bot: Bot, action: str) -> list[ItemEvent]:
    return await rows(bot, ItemEvent, ItemEvent.action == action)


def holders(segments: Iterable[Segment]) -> list[str]:
    return [s.person for s in segments]


# -- 请假 / 销假 ---------------------------------------------------------------------------------------------


async def test_leave_carries_the_stored_shifts_before_and_after(bot: Bot) -> None:
    await load_roster(bot, THREE_OFFICERS)
    async with work(bot) as w:
        event = await roster_leave.take_leave(w, person(bot, "sun_li"), chat(bot), None,
                                              RangeExpr(DayExpr(month=11, day=28)), "外出培训")
    assert isinstance(event, LeaveTaken)
    assert event.person.id == "sun_li" and event.reason == "外出培训"
    assert event.start == datetime(2026, 11, 28, tzinfo=SHANGHAI)
    # 孙丽's night of the 27th (reaching into the 28th) and her day shift of the 28th, in each chat of the team.
    before = {(s.chat_id, s.day.day, s.shift) for s in event.before}
    assert {(day, name) for _, day, name in before} == {(27, "夜班"), (28, "白班")}
    for slot in event.before:
        assert "sun_li" in holders(event.before[slot])
        assert "sun_li" not in holders(event.after[slot])  # re-resolved: somebody else holds it now
    covers = {(slot.day.day, slot.shift): holders(event.after[slot]) for slot in event.before if slot.chat_id == CHAT}
    assert covers == {(27, "夜班"): ["liu_yang"], (28, "白班"): ["zhao_min"]}
    [stored] = await rows(bot, RosterLeave)
    assert (stored.person_id, stored.reason, stored.created_by) == ("sun_li", "外出培训", "sun_li")
    [entry] = await audit(bot, "roster_leave")
    assert (entry.actor, entry.chat_id, entry.id) == ("sun_li", CHAT, event.event_id)


async def test_leave_refusals_and_an_api_client(bot: Bot) -> None:
    await load_roster(bot)
    async with work(bot) as w:
        past = await roster_leave.take_leave(w, person(bot, "zhao_min"), chat(bot), None,
                                             RangeExpr(DayExpr(month=11, day=20)), "")
        others = await roster_leave.take_leave(w, person(bot, "zhao_min"), chat(bot), "孙丽",
                                               RangeExpr(DayExpr(month=11, day=28)), "")
        api = await roster_leave.take_leave(w, Actor("monitor", "监测系统", ActorKind.API), None, None,
                                            RangeExpr(DayExpr(month=11, day=28)), "")
        admin = await roster_leave.take_leave(w, person(bot, "xu_ming"), chat(bot), "孙丽",
                                              RangeExpr(DayExpr(month=11, day=28)), "")
    assert isinstance(past, BadLeaveRange)
    assert others == PrivilegedOnly(RosterChange.LEAVE)
    assert api == NotAPerson("monitor")  # an API client has no shifts or leave of its own
    assert isinstance(admin, LeaveTaken) and admin.person.id == "sun_li"  # an admin may register it for her
    [stored] = await rows(bot, RosterLeave)
    assert (stored.person_id, stored.created_by) == ("sun_li", "xu_ming")
    [entry] = await audit(bot, "roster_leave")
    assert entry.actor == "xu_ming"


async def test_cancelling_a_leave_under_way_returns_the_leave_as_it_was(bot: Bot) -> None:
    await load_roster(bot)
    async with work(bot) as w:
        await roster_leave.take_leave(w, person(bot, "zhao_min"), chat(bot), None,
                                      RangeExpr(DayExpr(month=11, day=25), last=DayExpr(month=11, day=26)), "外出培训")
    bot.clock.set(datetime(2026, 11, 25, 12, 0, tzinfo=SHANGHAI))
    async with work(bot) as w:
        event = await roster_leave.cancel_leave(w, person(bot, "zhao_min"), chat(bot), None, None)
    assert isinstance(event, LeaveCancelled)
    [leave] = event.leaves
    assert (leave.start_at, leave.end_at, leave.reason) == (
        datetime(2026, 11, 25, tzinfo=SHANGHAI), datetime(2026, 11, 27, tzinfo=SHANGHAI), "外出培训")
    [stored] = await rows(bot, RosterLeave)
    assert stored.end_at == bot.clock.now()  # under way: it ends now and stays on record
    # Her night of the 26th is hers again, as stored after the change.
    back = {(slot.day.day, slot.shift) for slot in event.after if slot.chat_id == CHAT}
    assert (26, "夜班") in back
    assert all("zhao_min" in holders(segments) for segments in event.after.values())
    async with work(bot) as w:
        again = await roster_leave.cancel_leave(w, person(bot, "zhao_min"), chat(bot), None, None)
    assert isinstance(again, NoLeave) and again.person.id == "zhao_min"


# -- nobody on duty during their leave ------------------------------------------------------------------------


async def test_the_on_leave_refusal_names_the_leave_and_its_reason(bot: Bot) -> None:
    await load_roster(bot)
    async with work(bot) as w:
        await roster_leave.take_leave(w, person(bot, "sun_li"), chat(bot), None,
                                      RangeExpr(DayExpr(month=11, day=25)), "身体不适")
    async with work(bot) as w:
        swap = await roster_swap.ask_swap(w, person(bot, "zhao_min"), chat(bot), "孙丽", shift(11, 25, "白班"), None)
        cover = await roster_swap.cover(w, person(bot, "sun_li"), chat(bot), shift(11, 25, "白班"), None)
        assign = await roster_admin.assign(w, person(bot, "xu_ming"), chat(bot), shift(11, 25, "白班"),
                                           Role.DUTY_OFFICER, ("孙丽",))
        replace = await roster_admin.replace(w, person(bot, "xu_ming"), chat(bot), "孙丽", "赵敏",
                                             shift(11, 25, "白班"), None)
    for event, change in ((swap, RosterChange.SWAP), (cover, RosterChange.COVER), (assign, RosterChange.ASSIGN),
                          (replace, RosterChange.ASSIGN)):
        assert isinstance(event, OnLeave), event
        assert event.change is change and event.person.id == "sun_li"
        assert event.leave.reason == "身体不适"
        assert (event.leave.start_at, event.leave.end_at) == (datetime(2026, 11, 25, tzinfo=SHANGHAI),
                                                               datetime(2026, 11, 26, tzinfo=SHANGHAI))
    assert await rows(bot, RosterOverride) == [] and await rows(bot, RosterAssignment) == []
    async with bot.runtime.db.read() as session:
        assert await pending.current(session, chat(bot).platform.value, CHAT, "sun_li") is None  # nothing was asked


# -- 换班 --------------------------------------------------------------------------------------------------


async def _ask(bot: Bot, day: int = 25) -> SwapAsked:
    async with work(bot) as w:
        event = await roster_swap.ask_swap(w, person(bot, "zhao_min"), chat(bot), "孙丽", shift(11, day, "白班"), None)
    assert isinstance(event, SwapAsked), event
    return event


async def _question(bot: Bot) -> Question[SwapQuestion]:
    async with bot.runtime.db.read() as session:
        found = await pending.current(session, chat(bot).platform.value, CHAT, "sun_li")
    assert isinstance(found, Question) and isinstance(found.payload, SwapQuestion), found
    return Question(found.id, found.kind, found.payload, found.item_id, found.asked_at, found.expires_at)


async def test_a_swap_asked_then_agreed(bot: Bot) -> None:
    await load_roster(bot)
    asked = await _ask(bot)
    assert (asked.asker.id, asked.target.id) == ("zhao_min", "sun_li")
    [part] = asked.question.parts
    assert (part.day.day, part.shift, part.role, part.giver, part.taker) == (25, "白班", Role.DUTY_OFFICER,
                                                                             "zhao_min", "sun_li")
    assert asked.expires_at == bot.clock.now() + timedelta(hours=bot.config.roster.swap_answer_hours)
    question = await _question(bot)
    assert question.payload == asked.question  # the question as stored is the one asked
    bot.clock.advance(timedelta(hours=1))
    async with work(bot) as w:
        event = await roster_swap.answer_swap(w, person(bot, "sun_li"), chat(bot), question, agree=True)
    assert isinstance(event, ShiftsSwapped)
    [stored] = event.parts
    assert holders(stored.segments) == ["sun_li"]  # the stored roster after the change
    assert event.gaps[CHAT].gaps == []
    [override] = await rows(bot, RosterOverride)
    assert (override.person_id, override.replaces, override.kind, override.created_by) == (
        "sun_li", "zhao_min", "swap", "sun_li")
    [entry] = await audit(bot, "roster_swap")
    assert entry.actor == "sun_li" and entry.id == event.event_id
    assert entry.after["parts"][0]["person"] == "sun_li" and entry.before["parts"][0]["person"] == "zhao_min"
    async with bot.runtime.db.read() as session:
        assert await pending.current(session, chat(bot).platform.value, CHAT, "sun_li") is None  # answered: closed


async def test_a_swap_declined_expired_or_stale_changes_nothing(bot: Bot) -> None:
    await load_roster(bot)
    await _ask(bot)
    async with work(bot) as w:
        declined = await roster_swap.answer_swap(w, person(bot, "sun_li"), chat(bot), await _question(bot),
                                                 agree=False)
    assert isinstance(declined, SwapDeclined) and declined.by.id == "sun_li"
    assert len(await audit(bot, "roster_swap_declined")) == 1
    await _ask(bot, day=27)
    bot.clock.advance(timedelta(hours=25))
    async with work(bot) as w:
        expired = await roster_swap.answer_swap(w, person(bot, "sun_li"), chat(bot), await _question(bot),
                                                agree=True)
    assert isinstance(expired, SwapExpired) and expired.expired_at < bot.clock.now()
    await _ask(bot, day=27)
    async with work(bot) as w:  # meanwhile an admin puts 刘洋 in 赵敏's place
        replaced = await roster_admin.replace(w, person(bot, "xu_ming"), chat(bot), "刘洋", "赵敏",
                                              shift(11, 27, "白班"), None)
    assert isinstance(replaced, ShiftReplaced)
    async with work(bot) as w:
        stale = await roster_swap.answer_swap(w, person(bot, "sun_li"), chat(bot), await _question(bot), agree=True)
    assert isinstance(stale, SwapStale) and stale.part.giver == "zhao_min"
    assert [o.kind for o in await rows(bot, RosterOverride)] == ["admin"]  # no swap was applied
    assert await audit(bot, "roster_swap") == []


# -- 代班, 排班, 替班 ------------------------------------------------------------------------------------------


async def test_cover_assign_and_replace_return_the_stored_slot(bot: Bot) -> None:
    await load_roster(bot)
    async with work(bot) as w:
        covered = await roster_swap.cover(w, person(bot, "sun_li"), chat(bot), shift(11, 25, "白班"), None)
    assert isinstance(covered, ShiftCovered)
    assert (covered.part.part.giver, covered.part.part.taker) == ("zhao_min", "sun_li")
    assert holders(covered.part.segments) == ["sun_li"]
    async with work(bot) as w:
        refused = await roster_admin.assign(w, person(bot, "zhao_min"), chat(bot), shift(11, 25, "夜班"),
                                            Role.DUTY_OFFICER, ("赵敏",))
        assigned = await roster_admin.assign(w, person(bot, "xu_ming"), chat(bot), shift(11, 25, "夜班"),
                                             Role.DUTY_OFFICER, ("赵敏",))
    assert refused == PrivilegedOnly(RosterChange.ASSIGN)
    assert isinstance(assigned, ShiftAssigned)
    assert (assigned.old, assigned.people) == (("sun_li",), ("zhao_min",))
    assert holders(assigned.segments) == ["zhao_min"]
    async with work(bot) as w:  # a coordinator
        replaced = await roster_admin.replace(w, person(bot, "wang_jun"), chat(bot), "李华", "周涛",
                                              shift(11, 25, "白班"), None)
    assert isinstance(replaced, ShiftReplaced)
    [part] = replaced.parts
    assert part.part.role is Role.DUTY_LEADER and holders(part.segments) == ["li_hua"]
    assert [(e.actor, e.chat_id) for e in await audit(bot, "roster_cover")] == [("sun_li", CHAT)]
    assert [e.actor for e in await audit(bot, "roster_assign")] == ["xu_ming"]
    assert [e.actor for e in await audit(bot, "roster_override")] == ["wang_jun"]


async def test_a_gap_left_by_a_change_goes_to_the_admins(bot: Bot) -> None:
    """Two officers, 24 hours on and 24 off: nobody may cover 赵敏's day shift within the limits."""
    await load_roster(bot)
    async with work(bot) as w:
        event = await roster_leave.take_leave(w, person(bot, "zhao_min"), chat(bot), None,
                                              RangeExpr(DayExpr(month=11, day=25)), "")
    assert isinstance(event, LeaveTaken)
    day_shift = next(slot for slot in event.before if slot.chat_id == CHAT and slot.shift == "白班")
    assert holders(event.after.get(day_shift, [])) == []  # nobody: the event says so
    notices = await rows(bot, OutboxMessage, OutboxMessage.key.like(f"gaps-change:{event.event_id}:%"))
    assert notices and all(n.text.startswith("【排班缺口】") for n in notices)
