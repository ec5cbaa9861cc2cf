"""Typed dialogues (issue #15 point 2), on SQLite and PostgreSQL: the three kinds of question (the grade
question, the 换班 question, the offer to register a report) round-trip through the store as their
models; a payload that does not fit is refused on write and, read back, answered politely and closed;
when a person was asked twice the most recent question is the one a bare answer answers; and every
kind of question is still answered after a restart."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from domain.config import Config
from domain.dialogues import (
    DialogueKind,
    GradeQuestion,
    OfferQuestion,
    ShiftPart,
    SwapQuestion,
    UnreadableDialogue,
)
from domain.vocab import Role
from handlers import grading, offer, roster_swap
from handlers.dialogues import UNREADABLE, Dialogues
from handlers.help import NO_GRADE_QUESTION, UNKNOWN
from store import pending
from store.models import Item, PendingQuestion
from store.pending import Question, Unreadable
from tests.conftest import SHANGHAI, Bot, start_bot
from tests.roster_support import load_roster

CHAT = "wecom_duty"
NEWS = "网友在抖音发帖称西岸滨河路夜间施工噪音扰民，多人跟帖"
OFFER = "这条消息像是一条舆情线索。回复“1”登记为线索（原文将作为摘要）。"
PART = ShiftPart(day=date(2026, 11, 25), shift="白班", role=Role.DUTY_OFFICER,
                 start=datetime(2026, 11, 25, 8, 30, tzinfo=SHANGHAI),
                 end=datetime(2026, 11, 25, 17, 30, tzinfo=SHANGHAI), giver="zhao_min", taker="sun_li")


def platform(bot: Bot) -> str:
    return bot.runtime.directory.chats[CHAT].platform.value


async def ask(bot: Bot, user: str, kind: str, payload: Any, chat: str = CHAT) -> None:
    now = bot.clock.now()
    async with bot.runtime.db.transaction() as session:
        await pending.ask(session, platform=platform(bot), chat_id=chat, users=[user], kind=kind, item_id=None,
                          asked_at=now, expires_at=now + timedelta(hours=1), payload=payload)


async def store_raw(bot: Bot, user: str, kind: str, payload: Any) -> None:
    """A row as an older release or a hand edit may have left it: not validated."""
    now = bot.clock.now()
    async with bot.runtime.db.transaction() as session:
        session.add(PendingQuestion(platform=platform(bot), chat_id=CHAT, user_id=user, kind=kind, item_id=None,
                                    payload=payload, asked_at=now, expires_at=now + timedelta(hours=1)))


async def current(bot: Bot, user: str, chat: str = CHAT) -> Question[Any] | Unreadable | None:
    async with bot.runtime.db.read() as session:
        return await pending.current(session, platform(bot), chat, user)


async def stored_payload(bot: Bot, user: str) -> Any:
    async with bot.runtime.db.read() as session:
        return (await session.execute(select(PendingQuestion.payload)
                                      .where(PendingQuestion.user_id == user))).scalar_one_or_none()


async def grades(bot: Bot) -> list[str | None]:
    async with bot.runtime.db.read() as session:
        return [i.grade for i in (await session.execute(select(Item).order_by(Item.number))).scalars()]


# -- the store ------------------------------------------------------------------------------------------------


async def test_each_kind_round_trips_as_its_model(bot: Bot) -> None:
    swap = SwapQuestion(asker="zhao_min", target="sun_li", parts=(PART,))
    asked: dict[str, Any] = {"li_hua": GradeQuestion(number=7), "sun_li": swap,
                             "wang_jun": OfferQuestion(text=NEWS, message_id="m-1", waiting=3)}
    for user, payload in asked.items():
        await ask(bot, user, payload.KIND, payload)
    await ask(bot, "zhou_tao", "grade", {"number": 8})  # as the report operation puts it: the fields as a mapping
    for user, payload in [*asked.items(), ("zhou_tao", GradeQuestion(number=8))]:
        found = await current(bot, user)
        assert isinstance(found, Question), user
        assert found.kind is payload.KIND and found.payload == payload, user
        assert found.expires_at == bot.clock.now() + timedelta(hours=1)
    # Stored with the field names the rows always had, so rows written before this release still read.
    raw = await stored_payload(bot, "sun_li")
    assert raw["from"] == "zhao_min" and raw["to"] == "sun_li"
    assert raw["parts"] == [{"day": "2026-11-25", "shift": "白班", "role": "值班员",
                             "start": "2026-11-25T08:30:00+08:00", "end": "2026-11-25T17:30:00+08:00",
                             "from": "zhao_min", "to": "sun_li"}]
    assert SwapQuestion.model_validate(raw) == swap


async def test_a_payload_that_does_not_fit_is_refused_before_it_is_stored(bot: Bot) -> None:
    for kind, payload in (
        ("grade", {"number": 0}),
        ("grade", {"number": 3, "extra": True}),
        ("grade", None),
        ("swap", GradeQuestion(number=3)),  # a model of another kind
        ("swap", {"from": "zhao_min", "to": "sun_li", "parts": []}),
        ("swap", {"from": "zhao_min", "to": "sun_li", "parts": [{**PART.model_dump(by_alias=True), "start": "8:30"}]}),
        ("offer_report", {"text": ""}),
        ("poll", {"number": 3}),  # no such kind
    ):
        with pytest.raises(UnreadableDialogue):
            await ask(bot, "li_hua", kind, payload)
        assert await current(bot, "li_hua") is None, (kind, payload)


# -- unreadable rows ---------------------------------------------------------------------------------------------


async def test_an_unreadable_question_is_answered_politely_and_closed(bot: Bot) -> None:
    await store_raw(bot, "sun_li", "swap", {"from": "zhao_min"})  # no parts
    await store_raw(bot, "zhao_min", "poll", {"number": 1})  # a kind this release does not know
    await store_raw(bot, "li_hua", "grade", {"number": "第一"})
    await store_raw(bot, "wang_jun", "offer_report", ["not", "an", "object"])
    await store_raw(bot, "zhou_tao", "grade", {})
    found = await current(bot, "sun_li")
    assert isinstance(found, Unreadable) and found.kind == "swap"
    for user, answer in (("sun_li", "同意"), ("zhao_min", "1"), ("li_hua", "重大"), ("wang_jun", "不用")):
        assert (await bot.say(user, answer))["text"] == UNREADABLE, user
        assert await current(bot, user) is None, user  # closed
    assert (await bot.say("sun_li", "同意"))["text"] == roster_swap.NO_QUESTION
    assert (await bot.say("li_hua", "1"))["text"] == NO_GRADE_QUESTION
    # A text that answers nothing leaves the row alone; the next question replaces it.
    assert (await bot.say("zhou_tao", "随便聊聊"))["text"] == UNKNOWN
    assert isinstance(await current(bot, "zhou_tao"), Unreadable)
    assert (await bot.say("zhou_tao", NEWS))["text"] == OFFER  # the corrupt row read as no earlier question
    assert (await bot.say("zhou_tao", "1"))["text"].startswith("已受理舆情线索 #1\n")


# -- precedence -----------------------------------------------------------------------------------------------


async def test_a_swap_question_asked_after_the_grade_question_is_the_one_answered(bot: Bot) -> None:
    await load_roster(bot)
    await bot.say("liu_yang", "上报 城关镇老街商户反映占道经营整治")  # 赵敏, on duty, is asked to grade #1
    asked = await current(bot, "zhao_min")
    assert isinstance(asked, Question) and asked.payload == GradeQuestion(number=1)
    await bot.say("sun_li", "换班 @赵敏 11-24白班")  # … and then to take 孙丽's shift
    found = await current(bot, "zhao_min")
    assert isinstance(found, Question) and found.kind is DialogueKind.SWAP
    assert (await bot.say("zhao_min", "1"))["text"] == NO_GRADE_QUESTION  # her grade question was replaced
    assert await grades(bot) == [None]
    agreed = await bot.say("zhao_min", "同意")
    assert agreed["text"].startswith("【换班】孙丽 与 赵敏 换班已确认")
    graded = await bot.say("zhou_tao", "2")  # the others asked still answer the grade question
    assert graded["text"].startswith("【舆情通报】#1 较大舆情")


async def test_a_grade_question_asked_after_the_swap_question_is_the_one_answered(bot: Bot) -> None:
    await load_roster(bot)
    await bot.say("sun_li", "换班 @赵敏 11-24白班")
    await bot.say("liu_yang", "上报 城关镇老街商户反映占道经营整治")
    found = await current(bot, "zhao_min")
    assert isinstance(found, Question) and found.payload == GradeQuestion(number=1)
    assert (await bot.say("zhao_min", "同意"))["text"] == roster_swap.NO_QUESTION
    assert (await bot.say("zhao_min", "1"))["text"].startswith("【舆情通报】#1 重大舆情")
    assert "值班员 孙丽" in (await bot.say("liu_yang", "值班 11-24"))["text"]  # no swap was made


async def test_one_question_per_person_and_chat(bot: Bot) -> None:
    await ask(bot, "zhao_min", "grade", GradeQuestion(number=4))
    await ask(bot, "zhao_min", "offer_report", OfferQuestion(text=NEWS), chat="other_chat")  # another chat: both stay
    grade, offered = await current(bot, "zhao_min"), await current(bot, "zhao_min", "other_chat")
    assert isinstance(grade, Question) and grade.payload == GradeQuestion(number=4)
    assert isinstance(offered, Question) and offered.payload == OfferQuestion(text=NEWS)
    await ask(bot, "zhao_min", "offer_report", OfferQuestion(text=NEWS))  # the same chat: the later one replaces it
    found = await current(bot, "zhao_min")
    assert isinstance(found, Question) and found.kind is DialogueKind.OFFER_REPORT


# -- restarts -------------------------------------------------------------------------------------------------


async def test_every_kind_of_question_is_answered_after_a_restart(config: Config, clock: ManualClock) -> None:
    first = await start_bot(config, clock)
    try:
        bot = Bot(first, clock, config)
        await load_roster(bot)
        await bot.say("liu_yang", "上报 城关镇老街商户反映占道经营整治")  # the grade question to 赵敏 and others
        await bot.say("zhao_min", "换班 @孙丽 11-25白班")  # the swap question to 孙丽
        assert (await bot.say("wang_jun", NEWS))["text"].startswith(OFFER)  # the offer to 王军
    finally:
        await first.close()  # the process is gone; only the database remains
    clock.advance(timedelta(minutes=5))
    second = await start_bot(config, clock)
    try:
        bot = Bot(second, clock, config)
        assert (await bot.say("zhao_min", "2"))["text"].startswith("【舆情通报】#1 较大舆情")
        assert (await bot.say("sun_li", "同意"))["text"].startswith("【换班】赵敏 与 孙丽 换班已确认")
        assert (await bot.say("wang_jun", "1"))["text"].startswith("已受理舆情线索 #2\n")
        assert await grades(bot) == ["较大", None]
    finally:
        await second.close()


# -- registration ---------------------------------------------------------------------------------------------


def test_every_kind_has_exactly_one_dialogue() -> None:
    Dialogues(grading.GRADE_QUESTION, roster_swap.SWAP_DIALOGUE, offer.OFFER_DIALOGUE)
    with pytest.raises(ValueError, match="no dialogue registered"):
        Dialogues(grading.GRADE_QUESTION, roster_swap.SWAP_DIALOGUE)
    with pytest.raises(ValueError, match="twice"):
        Dialogues(grading.GRADE_QUESTION, grading.GRADE_QUESTION, roster_swap.SWAP_DIALOGUE, offer.OFFER_DIALOGUE)
