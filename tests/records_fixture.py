"""The records' fixture (issue #16): a dozen items over two weeks with known times, built through the
real operations (handlers/ops) by a running bot on a ManualClock, on SQLite and PostgreSQL.

Use it from a test module with a fixture of your own (a fixture imported by name trips ruff):

    @pytest.fixture
    async def world(config: Config) -> AsyncIterator[RecordsWorld]:
        async with records_world(config) as built:
            yield built

`world.bot` is the running bot (tests.conftest.Bot: `say`, `messages`, `runtime`), `world.clock` its
ManualClock, left at END (Mon 2026-10-05 00:00); `world.number("major_late")` an item's number (they
are also #1 … #12 in the order below); `world.work()` a unit of work at the clock's time.

Every time below is local (Asia/Shanghai). The two weeks:
  week 1: Mon 2026-09-21 … Sun 09-27; 中秋节 holiday Fri 09-25 … Sun 09-27 (法定节假日)
  week 2: Mon 2026-09-28 … Sun 10-04; 国庆节 holiday from Thu 10-01 (Mon 09-28 … Wed 09-30 workdays)
so September's monthly notice sees 09-21 … 09-30 of the fixture and October's 10-01 … 10-04.

The deadlines are the example config's policy, all counted from the report (DOMAIN.md):
  重大: 签收 30 min, 回应 24 h; reminders at 50 % and 80 % of the clock; overdue 催办 at the deadline,
        then after 30, 60, 120, 120 … min (chased until handled); never held by quiet hours.
  较大: 签收 2 h, 回应 48 h; 50 %, 80 %; 催办 at the deadline then every 2 h, 6 repeats at most.
  一般: 签收 24 h, 回应 48 h; 50 %, 80 %; 催办 at the deadline then every 4 h, 4 repeats at most;
        quiet hours 22:00–07:30: a point inside them goes at 07:30, points of one clock that meet
        there go as one (the last one's key).
The deadline sweep runs at every reminder point (`advance`), as a bot that never stops would, so
each 提醒/催办 is delivered — and its "notice" audit row written — at its own time. Grading comes 5
minutes after each report (the 15-minute grade clock's first reminder, at 7.5 min, never comes).
Reminders below are the ones of the clocks of 签收 (pass_on) and 回应 (response); "提醒" is a point
before the deadline, "催办" one at or after it (stage "overdue"); the coordinators' copies of a 催办
(repeat ≥ 2, key + ":coordinators") are copies, not reminders of their own.

The items (number, name, lead unit, grade):
 #1 general_on_time — 城关镇 (chengguan), 一般. Reported Mon 09-21 09:00 by the monitoring platform;
    graded 09:05; 签收 by 杨帆 09:30 (30 min, due 09-22 09:00: on time); 回应 15:00 (6 h, due 09-23
    09:00: on time); 办结 09-22 10:00. No reminder (50 % of 签收 is 21:00, of 回应 09-22 09:00).
 #2 significant_on_time — 卫健局 (health), 较大. Reported Mon 09-21 14:00; graded 14:05; 签收 by 冯雪
    14:40 (40 min, due 16:00); 回应 09-22 10:00 (20 h, due 09-23 14:00); 办结 09-22 16:00. No reminder
    (50 % of 签收 15:00, of 回应 09-22 14:00).
 #3 major_late — 教育局 (education), 重大. Reported Tue 09-22 10:00; graded 10:05. 签收 due 10:30:
    提醒 10:15 and 10:24, 催办 10:30; 蒋波 signs 10:50 (50 min, 20 min late). 回应 due 09-23 10:00:
    提醒 09-22 22:00 and 09-23 05:12, 催办 10:00 and 10:30; 回应 09-23 11:20 (25 h 20 min, 1 h 20 min
    late); 办结 09-23 16:00. Education, week 1: 提醒 4, 催办 3.
 #4 transferred_early — reported Wed 09-23 09:00 by 杨帆 (城关镇's liaison) with 城关镇 as lead; 一般;
    graded 09:05; 转办 to 西岸街道 (xian) 10:00 before any 签收; 签收 by 尤佳 11:00 (2 h, due 09-24
    09:00); 回应 09-24 08:00 (23 h, due 09-25 09:00); 办结 09-24 10:00. No reminder. Lead: 西岸街道.
 #5 transferred_reminded — reported Thu 09-24 09:00 with 税务局 (tax) as lead; 较大; graded 09:05.
    签收 due 11:00: 提醒 10:00 reaches 税务局 (lead then); 转办 to 城关镇 10:30; 提醒 10:36 reaches
    城关镇; 签收 by 杨帆 10:50 (1 h 50 min, on time). 回应 due 09-26 09:00: 提醒 09-25 09:00 (中秋节)
    to 城关镇; 回应 09-25 10:00 (25 h, on time); 办结 09-25 11:00. Reminders: 税务局 提醒 1; 城关镇 提醒 2.
 #6 merged — reported Thu 09-24 15:00, 城关镇, the same matter as #5 by another link; 一般; graded
    15:05; 合并 into #5 at 15:30 (its clocks stop: in no rate, no reminder).
 #7 classified_late — 卫健局 (health), 较大, reported Fri 09-25 10:00 (中秋节) marked 涉密; graded 10:05;
    authorised summary "某医疗机构相关舆情（涉密）" set by 王军 10:10; 签收 by 冯雪 10:30 (30 min, on
    time). 回应 due 09-27 10:00: 提醒 09-26 10:00 and 09-27 00:24, 催办 09-27 10:00; 回应 09-27 11:50
    (49 h 50 min, 1 h 50 min late); 办结 09-27 12:00. Health, week 1: 提醒 2, 催办 1.
 #8 never_acknowledged — 税务局 (tax), 一般, reported Sat 09-26 16:00 (中秋节); graded 16:05; nobody signs
    or answers, ever. 签收 due 09-27 16:00: 提醒 09-27 07:30 (04:00 held by quiet hours) and 11:12;
    催办 16:00, 20:00, 09-28 07:30 (the 00:00 and 04:00 repeats, held and sent as one) and 09-28 08:00
    (the last). 回应 due 09-28 16:00: 提醒 09-27 16:00 and 09-28 07:30 (06:24 held); 催办 09-28 16:00,
    20:00, 09-29 07:30 (00:00 and 04:00 as one), 09-29 08:00 (the last).
    Tax: week 1 提醒 3, 催办 2; week 2 提醒 1, 催办 6.
 #9 regraded — 教育局 (education), reported Mon 09-28 09:00, graded 一般 09:05 (签收 due 09-29 09:00);
    regraded 重大 by 王军 10:00: 签收 due 09:30, already past, so that deadline runs from the regrade
    (10:00) and its 催办 goes at once (10:00); 签收 by 蒋波 10:20 (1 h 20 min from the report; 20 min
    after the deadline in force). 回应 due 09-29 09:00: 提醒 09-28 21:00 and 09-29 04:12; 回应 09-29
    08:00 (23 h, on time); 办结 09-29 10:00. Education, week 2: 提醒 2, 催办 1.
 #10 no_response — 西岸街道 (xian), 一般, reported Tue 09-29 10:00; graded 10:05; 签收 by 尤佳 11:00 (1 h,
    on time); 不予回应 by 王军 15:00 (the 回应 clock stops without a response: in no 回应 rate).
 #11 major_over_holiday — 城关镇, 重大, reported Wed 09-30 20:00; graded 20:05; 签收 by 杨帆 20:12
    (12 min, due 20:30). 回应 due 10-01 20:00 (国庆节): 提醒 10-01 08:00; 回应 10-01 09:00 (13 h, on
    time); 办结 10-02 10:00. Chengguan, week 2: 提醒 1.
 #12 significant_late_response — 卫健局 (health), 较大, reported Fri 10-02 11:00 (国庆节); graded 11:05;
    签收 by 冯雪 11:30 (30 min, on time). 回应 due 10-04 11:00: 提醒 10-03 11:00 and 10-04 01:24, 催办 10-04
    11:00 and 13:00; 回应 10-04 14:00 (51 h, 3 h late); not closed. Health, week 2: 提醒 2, 催办 2.

零报告 (handlers/ops/zero_report.py, at 16:00 by the unit's liaison; a unit with an item of its own that
day — reported with it as lead, or transferred to it the same day — has no 零报告 to send, and needs none):
  西岸街道 (尤佳): 09-21, 09-22, 09-24, 09-25, 09-27 and 09-28, 09-30, 10-01 … 10-04
                   (items of its own: 09-23 #4 transferred to it, 09-29 #10; nothing on 09-26).
  税务局 (张静): 09-21 (items: 09-24 #5, 09-26 #8).
  城关镇 (杨帆): 09-22, 09-25, 09-28 (items: 09-21 #1, 09-23 #4, 09-24 #5 transferred to it and #6, 09-30 #11).
  Days with neither, per unit — week 1: 西岸街道 1 (09-26), 城关镇 2 (09-26, 09-27), 税务局 4, 卫健局 5
  (items 09-21, 09-25), 教育局 6 (09-22), 县政府办, 宣传部, 东风社区 7 each; week 2: 西岸街道 0, 城关镇 5
  (09-29, 10-01 … 10-04), 税务局 7, 卫健局 6 (10-02), 教育局 6 (09-28), the other three 7 each.
点名 (roll_call_times 10:05, answer within 10 min) on two days only:
  Tue 09-22 10:05: 赵敏 called in both duty chats; answered in wecom_duty at 10:08, not in
    dingtalk_duty (escalated 10:15: "roll_call_unanswered").
  Tue 09-29 10:05: 孙丽 called in both; answered in neither (two "roll_call_unanswered" at 10:15).
Notices other than reminders (grade notices, assignment notices …) are not posted: the operations
are called without the chat's notifier, so the only "notice" audit rows are the reminders above.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import TypeVar

from bot.clock import ManualClock
from bot.engine import work_for
from bot.roster_jobs import RollCall
from bot.runtime import Runtime
from domain.config import ChatConfig, Config, RosterSection
from domain.vocab import Grade
from handlers.engine import run_cycles
from handlers.ops import assign as assigning
from handlers.ops import classify as classifying
from handlers.ops import settle
from handlers.ops.acknowledge import ItemAcknowledged, acknowledge
from handlers.ops.base import Actor, ActorKind, Work
from handlers.ops.close import ItemClosed, close
from handlers.ops.events import ItemAssigned, ItemClassified, ItemReported
from handlers.ops.grade import ItemGraded, grade
from handlers.ops.report import ReportInput, report
from handlers.ops.respond import ItemResponded, ResponseParts, respond
from handlers.ops.zero_report import ZeroReported, zero_report
from store import engine_runs
from store import items as item_store
from store import roster as roster_store
from store.db import Database
from store.models import Item
from tests.conftest import SHANGHAI, Bot, start_bot
from tests.roster_support import load_roster

T = TypeVar("T")

START = datetime(2026, 9, 21, 8, 0, tzinfo=SHANGHAI)  # Mon, before anything happens
END = datetime(2026, 10, 5, 0, 0, tzinfo=SHANGHAI)  # Mon, the end of week 2: where the clock is left
WEEK1 = (datetime(2026, 9, 21, tzinfo=SHANGHAI), datetime(2026, 9, 28, tzinfo=SHANGHAI))
WEEK2 = (datetime(2026, 9, 28, tzinfo=SHANGHAI), END)
ROLL_CALL_AT = time(10, 5)

MONITOR = Actor("yuqing_monitor", "舆情监测平台", ActorKind.API)
COORDINATOR = Actor("wang_jun", "王军")  # 协调: grades, assigns, closes, merges, classifies
LIAISONS = {
    "chengguan": Actor("yang_fan", "杨帆"),
    "health": Actor("feng_xue", "冯雪"),
    "education": Actor("jiang_bo", "蒋波"),
    "xian": Actor("you_jia", "尤佳"),
    "tax": Actor("zhang_jing", "张静"),
}
AUTHORISED_SUMMARY = "某医疗机构相关舆情（涉密）"
VERDICT = "已处置完毕，群众表示满意"
# The order of the items: their numbers are 1 … 12 in a fresh database.
NAMES = (
    "general_on_time", "significant_on_time", "major_late", "transferred_early", "transferred_reminded",
    "merged", "classified_late", "never_acknowledged", "regraded", "no_response", "major_over_holiday",
    "significant_late_response",
)


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


@dataclass
class RecordsWorld:
    """The bot after the two weeks, and the means to go on acting in it."""

    bot: Bot
    clock: ManualClock
    config: Config
    numbers: dict[str, int] = field(default_factory=dict)

    @property
    def runtime(self) -> Runtime:
        return self.bot.runtime

    @property
    def duty_chat(self) -> ChatConfig:
        return self.runtime.directory.chats["wecom_duty"]

    def number(self, name: str) -> int:
        return self.numbers[name]

    @asynccontextmanager
    async def work(self) -> AsyncIterator[Work]:
        async with self.runtime.db.transaction() as session:
            yield Work(session, self.runtime.config, self.runtime.directory, self.runtime.duty, self.clock.now())

    async def deliver(self) -> None:
        while await self.runtime.outbox.run_once():
            pass

    async def advance(self, to: datetime) -> None:
        """Move the clock to `to`, sweeping the deadlines at each reminder point on the way (and
        delivering what they queue), as the engine would. The story only goes forward."""
        assert to >= self.clock.now(), f"{to} is before {self.clock.now()}: the story is out of order"
        while True:
            due = await self.runtime.deadlines.next_due()
            if due is None or due > to:
                break
            self.clock.set(max(due, self.clock.now()))
            await self.runtime.deadlines.run_once()
            await self.deliver()
        self.clock.set(max(to, self.clock.now()))
        await self.runtime.deadlines.run_once()
        await self.deliver()

    async def on(self, name: str, at: datetime, op: Callable[[Work, Item], Awaitable[T]]) -> T:
        """`op` on the named item at `at`, in a unit of work of its own."""
        await self.advance(at)
        async with self.work() as work:
            item = await item_store.by_number(work.session, self.numbers[name])
            assert item is not None
            result = await op(work, item)
        await self.deliver()
        return result

    # -- the operations, as the people of the story do them ------------------------------------------------

    async def report(self, name: str, at: datetime, unit: str, text: str, *, by: Actor = MONITOR,
                     classified: bool = False) -> None:
        await self.advance(at)
        async with self.work() as work:
            data = ReportInput(text, self.duty_chat, unit_id=unit, classified=classified)
            event = await report(work, by, data)
            assert isinstance(event, ItemReported), event
            self.numbers[name] = event.item.number
        await self.deliver()

    async def grade(self, name: str, at: datetime, new: Grade) -> None:
        event = await self.on(name, at, lambda w, i: grade(w, COORDINATOR, self.duty_chat, i, new))
        assert isinstance(event, ItemGraded), event

    async def assign(self, name: str, at: datetime, unit: str) -> None:
        event = await self.on(name, at, lambda w, i: assigning.assign(w, COORDINATOR, self.duty_chat, i, [unit]))
        assert isinstance(event, ItemAssigned), event

    async def acknowledge(self, name: str, at: datetime, unit: str) -> None:
        event = await self.on(name, at, lambda w, i: acknowledge(w, LIAISONS[unit], self.duty_chat, i))
        assert isinstance(event, ItemAcknowledged), event

    async def respond(self, name: str, at: datetime, unit: str, text: str) -> None:
        parts = ResponseParts("网上发布", f"https://gov.example.cn/notice/{name}", text)
        event = await self.on(name, at, lambda w, i: respond(w, LIAISONS[unit], self.duty_chat, i, parts))
        assert isinstance(event, ItemResponded), event

    async def close(self, name: str, at: datetime) -> None:
        event = await self.on(name, at, lambda w, i: close(w, COORDINATOR, self.duty_chat, i, VERDICT))
        assert isinstance(event, ItemClosed), event

    async def zero_report(self, unit: str, day: str) -> None:
        """A unit's 零报告 for `day`, sent at 16:00 that day by its liaison (handlers/ops/zero_report.py)."""
        await self.advance(datetime.fromisoformat(day).replace(hour=16, tzinfo=SHANGHAI))
        async with self.work() as work:
            result = await zero_report(work, LIAISONS[unit], self.duty_chat, [unit])
            assert isinstance(result, ZeroReported) and result.recorded == (unit,), result

    async def roll_call(self, day: int, answered_in: tuple[str, ...]) -> None:
        """The 10:05 roll call of 09-`day`: answered at 10:08 in `answered_in`, escalated at 10:15."""
        await self.advance(local(9, day, 10, 5))
        await run_cycles(self.runtime.db, RollCall(), work_for(self.runtime))
        await self.deliver()
        await self.advance(local(9, day, 10, 8))
        for chat in answered_in:
            async with self.runtime.db.read() as session:
                call = await roster_store.open_roll_call(session, chat, self.clock.now())
            assert call is not None
            await self.bot.say(str(call.people[0]), "在", chat=chat)
        await self.advance(local(9, day, 10, 15))
        await run_cycles(self.runtime.db, RollCall(), work_for(self.runtime))
        await self.deliver()


def fixture_config(config: Config) -> Config:
    """The test config with the roll call of the story (10:05, 10 minutes to answer)."""
    roster = config.roster.model_copy(update={"roll_call_times": [ROLL_CALL_AT], "roll_call_minutes": 10})
    assert isinstance(roster, RosterSection)
    return config.model_copy(update={"roster": roster})


@asynccontextmanager
async def records_world(config: Config) -> AsyncIterator[RecordsWorld]:
    """The bot with the two weeks played (see the module's docstring), the clock at END."""
    config = fixture_config(config)
    clock = ManualClock(START)
    client = await start_bot(config, clock)
    try:
        world = RecordsWorld(Bot(client, clock, config), clock, config)
        await load_roster(world.bot)
        await play(world)
        await world.advance(END)
        yield world
    finally:
        await client.close()


async def play(w: RecordsWorld) -> None:
    """The two weeks, in time order (the stories are in the module's docstring)."""
    await _week_one(w)
    await _week_two(w)


async def _week_one(w: RecordsWorld) -> None:
    # Mon 09-21
    await w.report("general_on_time", local(9, 21, 9), "chengguan", "网友反映城关镇人民路路灯损坏多日无人维修")
    await w.grade("general_on_time", local(9, 21, 9, 5), Grade.GENERAL)
    await w.acknowledge("general_on_time", local(9, 21, 9, 30), "chengguan")
    await w.report("significant_on_time", local(9, 21, 14), "health", "网传县医院急诊科医生态度恶劣，视频转发较多")
    await w.grade("significant_on_time", local(9, 21, 14, 5), Grade.SIGNIFICANT)
    await w.acknowledge("significant_on_time", local(9, 21, 14, 40), "health")
    await w.respond("general_on_time", local(9, 21, 15), "chengguan", "已安排维修，今晚恢复照明")
    for unit in ("xian", "tax"):
        await w.zero_report(unit, "2026-09-21")
    # Tue 09-22
    await w.close("general_on_time", local(9, 22, 10))
    await w.respond("significant_on_time", local(9, 22, 10), "health", "县卫健局已约谈当事医生并公开致歉")
    await w.report("major_late", local(9, 22, 10), "education", "网传某中学校车超载，家长聚集学校门口")
    await w.grade("major_late", local(9, 22, 10, 5), Grade.MAJOR)
    await w.roll_call(22, answered_in=("wecom_duty",))
    await w.acknowledge("major_late", local(9, 22, 10, 50), "education")
    await w.close("significant_on_time", local(9, 22, 16))
    for unit in ("xian", "chengguan"):
        await w.zero_report(unit, "2026-09-22")
    # Wed 09-23
    await w.report("transferred_early", local(9, 23, 9), "chengguan", "网友反映滨河路工地夜间施工扰民",
                   by=LIAISONS["chengguan"])
    await w.grade("transferred_early", local(9, 23, 9, 5), Grade.GENERAL)
    await w.assign("transferred_early", local(9, 23, 10), "xian")
    await w.acknowledge("transferred_early", local(9, 23, 11), "xian")
    await w.respond("major_late", local(9, 23, 11, 20), "education", "县教育局通报：涉事校车已停运，司机停职调查")
    await w.close("major_late", local(9, 23, 16))
    # Thu 09-24
    await w.respond("transferred_early", local(9, 24, 8), "xian", "已责令施工单位夜间停工")
    await w.report("transferred_reminded", local(9, 24, 9), "tax", "网传城关镇老街商户被强制拆除招牌")
    await w.grade("transferred_reminded", local(9, 24, 9, 5), Grade.SIGNIFICANT)
    await w.close("transferred_early", local(9, 24, 10))
    await w.assign("transferred_reminded", local(9, 24, 10, 30), "chengguan")
    await w.acknowledge("transferred_reminded", local(9, 24, 10, 50), "chengguan")
    await w.report("merged", local(9, 24, 15), "chengguan", "老街商户招牌被拆，网友质疑程序 https://tieba.example.com/p/1")
    await w.grade("merged", local(9, 24, 15, 5), Grade.GENERAL)
    await w.on("merged", local(9, 24, 15, 30),
               lambda wk, i: settle.merge(wk, COORDINATOR, w.duty_chat, i, w.number("transferred_reminded")))
    await w.zero_report("xian", "2026-09-24")
    # Fri 09-25 (中秋节)
    await w.report("classified_late", local(9, 25, 10), "health", "某医院发生医疗纠纷，患者家属聚集", classified=True)
    await w.respond("transferred_reminded", local(9, 25, 10), "chengguan", "城关镇政府发布情况说明：招牌整治依法进行")
    await w.grade("classified_late", local(9, 25, 10, 5), Grade.SIGNIFICANT)
    classified = await w.on("classified_late", local(9, 25, 10, 10),
                            lambda wk, i: classifying.classify(wk, COORDINATOR, w.duty_chat, i, AUTHORISED_SUMMARY))
    assert isinstance(classified, ItemClassified), classified
    await w.acknowledge("classified_late", local(9, 25, 10, 30), "health")
    await w.close("transferred_reminded", local(9, 25, 11))
    for unit in ("xian", "chengguan"):
        await w.zero_report(unit, "2026-09-25")
    # Sat 09-26 (中秋节)
    await w.report("never_acknowledged", local(9, 26, 16), "tax", "网友称在县税务局办理业务排队三小时")
    await w.grade("never_acknowledged", local(9, 26, 16, 5), Grade.GENERAL)
    # Sun 09-27 (中秋节)
    await w.respond("classified_late", local(9, 27, 11, 50), "health", "已妥善处置")
    await w.close("classified_late", local(9, 27, 12))
    await w.zero_report("xian", "2026-09-27")


async def _week_two(w: RecordsWorld) -> None:
    # Mon 09-28
    await w.report("regraded", local(9, 28, 9), "education", "网传某小学食堂饭菜变质，多名学生不适")
    await w.grade("regraded", local(9, 28, 9, 5), Grade.GENERAL)
    await w.grade("regraded", local(9, 28, 10), Grade.MAJOR)
    await w.acknowledge("regraded", local(9, 28, 10, 20), "education")
    for unit in ("xian", "chengguan"):
        await w.zero_report(unit, "2026-09-28")
    # Tue 09-29
    await w.respond("regraded", local(9, 29, 8), "education", "县教育局、市场监管局联合通报检测结果")
    await w.close("regraded", local(9, 29, 10))
    await w.report("no_response", local(9, 29, 10), "xian", "网友询问西岸街道工业园招聘信息是否属实")
    await w.grade("no_response", local(9, 29, 10, 5), Grade.GENERAL)
    await w.roll_call(29, answered_in=())
    await w.acknowledge("no_response", local(9, 29, 11), "xian")
    decided = await w.on("no_response", local(9, 29, 15), lambda wk, i: settle.no_response(
        wk, COORDINATOR, w.duty_chat, i, "经核实为个人咨询，已通过12345平台答复当事人"))
    assert isinstance(decided, settle.NoResponseDecided), decided
    # Wed 09-30
    await w.zero_report("xian", "2026-09-30")
    await w.report("major_over_holiday", local(9, 30, 20), "chengguan", "城关镇东风小区燃气管道泄漏，居民紧急疏散")
    await w.grade("major_over_holiday", local(9, 30, 20, 5), Grade.MAJOR)
    await w.acknowledge("major_over_holiday", local(9, 30, 20, 12), "chengguan")
    # Thu 10-01 (国庆节)
    await w.respond("major_over_holiday", local(10, 1, 9), "chengguan", "燃气公司已完成抢修，居民全部返回")
    await w.zero_report("xian", "2026-10-01")
    # Fri 10-02 (国庆节)
    await w.close("major_over_holiday", local(10, 2, 10))
    await w.report("significant_late_response", local(10, 2, 11), "health", "网传县人民医院节日期间停诊")
    await w.grade("significant_late_response", local(10, 2, 11, 5), Grade.SIGNIFICANT)
    await w.acknowledge("significant_late_response", local(10, 2, 11, 30), "health")
    await w.zero_report("xian", "2026-10-02")
    # Sat 10-03, Sun 10-04 (国庆节)
    await w.zero_report("xian", "2026-10-03")
    await w.respond("significant_late_response", local(10, 4, 14), "health", "县人民医院发布节日门诊安排")
    await w.zero_report("xian", "2026-10-04")


async def running_since(db: Database, modules: Sequence[str], since: datetime) -> None:
    """The bot has been running since `since` (its modules' first cycles were then): what falls
    due after it and was missed while the bot was down is made up for (补发); a new installation
    makes up for nothing before its first cycle."""
    async with db.transaction() as session:
        for module in modules:
            await engine_runs.first_run(session, module, since)
