"""舆情日志 (003 §二(六)): what a duty chat's last 24 hours held, as a Document.

The log of a day covers that day's log time (default 08:30) to the next day's, and is posted to
each duty chat when it ends; on demand (`日志`, the CLI) the current day's runs to the moment asked.
Per chat: the items of the chat's unit and the units below it, and those reported in the chat;
the coordinators' chat (and the CLI without --chat): the whole county. Its sections:

  一、总体情况   the figures in one paragraph
  二、新增舆情   items reported in the period, by grade (the grade at the period's end)
  三、办结事项   items ended in the period: 办结, 不予回应, 合并
  四、超时未办   open items with a deadline passed, the lead unit's 分管领导 @-mentioned
  五、在办事项   every open item with its next deadline
  六、点名未应答 roll calls nobody answered in time (in this chat; the coordinators: all)
  七、零报告     the units that reported items that day, sent their 零报告, or did neither

Every figure comes from the audit trail (daily_facts.py replays it); the item rows give only the
words (summary, the 涉密 item's authorised summary) and the grade clock fixed at the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from domain.config import ChatConfig, Config
from domain.directory import Directory
from domain.vocab import Grade, Role
from handlers import items as common
from handlers.ops.zero_report import DayStatus, day_status
from handlers.parsing import find_urls
from handlers.policy import deadlines, local_time, remaining_text
from handlers.records.daily_facts import ENDINGS, LogPeriod, done_late, in_scope, running, status
from handlers.records.document import Block, Document, Heading, Paragraph, Table
from handlers.records.facts import ItemFacts, facts_of
from store import records_daily as store

TITLE = "舆情日志（{day}）"
SUBTITLE = "{where}｜统计时段：{start} 至 {end}"
UNTIL_NOW = "{end}（截至查询时）"
COUNTY = "全县"
NONE = "无。"
SUMMARY_MAX = 40  # a table cell on a phone: the full text is one 查询 away
OVERVIEW = ("新增舆情{new}条{grades}，办结{ended}条，超时未办{overdue}条，超时后办理{late}项，在办{open}条；"
            "点名未应答{missed}次；零报告：应报{expected}个单位，已报送舆情{with_items}个，已零报告{zero}个，未报告{missing}个。")
OVERDUE = "#{n}【{grade}】{summary}｜牵头单位：{lead}｜{clocks}"
OVERDUE_CLOCK = "{clock}时限 {due}，{late}"
OVERDUE_LEADERS = "｜请分管领导{names}督办"
DONE_LATE = "#{n}【{grade}】{summary}｜{unit}｜{clock}时限 {due}，{done} {clock}，超时{late}"
ROLL_CALL = "{at} {chat}：值班员{people}未按时应答点名"
ZERO_WITH_ITEMS = "已报送舆情（{count}个）：{units}"
ZERO_SENT = "已零报告（{count}个）：{units}"
ZERO_MISSING = "未报告（{count}个）：{units}"
NEW_HEADERS = ("编号", "等级", "摘要", "来源", "牵头单位", "上报时间", "状态")
ENDED_HEADERS = ("编号", "等级", "摘要", "牵头单位", "结果", "时间")
OPEN_HEADERS = ("编号", "等级", "摘要", "牵头单位", "状态", "下一时限")
GRADES = [g.value for g in Grade]
UNGRADED = "未定级"
AWAITING_CLOSE = "待办结"


@dataclass(frozen=True)
class LogContent:
    """The log's facts, before they are words: what the tests check figure by figure."""

    new: list[ItemFacts]
    ended: list[ItemFacts]
    overdue: list[tuple[ItemFacts, list[tuple[str, datetime]]]]  # open items and their clocks past due
    done_late: list[tuple[ItemFacts, str, datetime, datetime]]  # 签收/回应 made late in the period: (clock, due, at)
    open: list[ItemFacts]
    missed_calls: list[tuple[datetime, str, tuple[str, ...]]]  # (called at, chat id, people)
    zero: DayStatus
    units: list[str]  # the units the log covers, in the configuration's order
    end: datetime  # the period's end: what lateness and time left are counted to
    sources: dict[int, str]  # the new items' sources (the report's row)
    secret: dict[int, str | None]  # items 涉密 now (a past day's log must not show them either)

    def by_grade(self) -> dict[str, int]:
        counts = {grade: 0 for grade in [*GRADES, UNGRADED]}
        for fact in self.new:
            counts[grade_of(fact)] += 1
        return counts


def grade_of(fact: ItemFacts) -> str:
    return fact.grade.value if fact.grade is not None else UNGRADED


def chat_scope(config: Config, chat: ChatConfig | None) -> set[str] | None:
    """The units whose items a chat's log shows: its unit and those below; None: all."""
    if chat is None or chat.coordinators or chat.unit is None:
        return None
    scope = [chat.unit]
    for unit_id in scope:  # grows while iterating: a breadth-first walk of the unit tree
        scope += [u.id for u in config.units if u.parent == unit_id and u.id not in scope]
    return set(scope)


async def log_content(session: AsyncSession, config: Config, chat: ChatConfig | None, period: LogPeriod) -> LogContent:
    """The facts of the log: the items reported or ended in the period and those open at its end,
    as of the period's end (handlers/records/facts.py), and the period's roll calls and 零报告."""
    scope = chat_scope(config, chat)
    chat_id = chat.id if chat is not None else None
    touched = await store.rows_between(session, period.start, period.end, ("reported", *store.FINAL_ACTIONS))
    ids = {row.item_id for row in touched if row.item_id is not None}
    ids |= set(await store.item_ids_open_at(session, period.end))
    found = await facts_of(session, ids, period.end)
    mine = sorted((f for f in found.values() if in_scope(f, scope, chat_id)), key=lambda f: f.number)
    new = [f for f in mine if f.reported_at >= period.start]
    ended = [f for f in mine if f.ending is not None and f.ending.at >= period.start]
    still_open = [f for f in mine if f.ending is None]
    overdue = []
    for fact in still_open:
        late = [clock for clock in running(fact, _grade_due(config, fact)) if clock[1] <= period.end]
        if late:
            overdue.append((fact, late))
    late_done = [(f, *late) for f in mine for late in done_late(f, period.start, period.end)]
    late_done.sort(key=lambda entry: entry[3])
    units = [u.id for u in config.units if scope is None or u.id in scope]
    calls = await _missed_calls(session, config, period, chat_id, scope)
    sources = {r.item_id: str(r.after.get("source") or "") for r in touched if r.action == "reported" and r.item_id}
    return LogContent(new, ended, overdue, late_done, still_open, calls,
                      await day_status(session, period.day, config.tz), units, period.end, sources,
                      await store.classified_now(session, [f.id for f in mine]))


def _grade_due(config: Config, fact: ItemFacts) -> datetime:
    """The grade clock, fixed at the report by the policy (handlers/policy.py deadlines)."""
    return deadlines(fact.reported_at, None, config.policy).grade_due


async def _missed_calls(session: AsyncSession, config: Config, period: LogPeriod, chat_id: str | None,
                        scope: set[str] | None) -> list[tuple[datetime, str, tuple[str, ...]]]:
    rows = await store.rows_between(session, period.start, period.end, (store.ROLL_CALL_MISSED,))
    rows = [r for r in rows if scope is None or r.chat_id == chat_id]
    called = await store.roll_call_times(session, (int(r.after["roll_call"]) for r in rows if r.after.get("roll_call")))
    order = {chat.id: index for index, chat in enumerate(config.chats)}
    calls = [(called.get(int(r.after.get("roll_call") or 0), r.at), r.chat_id or "",
              tuple(str(p) for p in r.after.get("people") or [])) for r in rows]
    return sorted(calls, key=lambda call: (call[0], order.get(call[1], len(order))))


async def build_daily_log(session: AsyncSession, config: Config, directory: Directory, chat: ChatConfig | None,
                          period: LogPeriod, *, late: bool = False) -> Document:
    """The 舆情日志 of `period` for `chat` (None: the whole county); `late`: a 补发."""
    content = await log_content(session, config, chat, period)
    return render(content, _Words(config, directory, content), chat, period, late=late)


@dataclass(frozen=True)
class _Words:
    """How the log names things: people, units, times, an item's summary as a group may see it."""

    config: Config
    directory: Directory
    content: LogContent

    def time(self, when: datetime) -> str:
        return local_time(when, self.config.tz)

    def unit(self, unit_id: str | None) -> str:
        return self.directory.unit_name(unit_id)

    def person(self, person_id: str) -> str:
        person = self.directory.people.get(person_id)
        return person.name if person else person_id

    def number(self, fact: ItemFacts) -> str:
        return f"#{fact.number}" + ("（涉密）" if self._classified(fact) else "")

    def summary(self, fact: ItemFacts) -> str:
        """The public summary (a 涉密 item: only its authorised summary, 001 第十七条), without its
        link, shortened."""
        if fact.id in self.content.secret:
            text = self.content.secret[fact.id] or common.CLASSIFIED_SUMMARY
        elif fact.classified:
            text = fact.public_summary
        else:
            text = fact.summary
            for url in find_urls(text):
                text = text.replace(url, "")
            text = text.strip() or fact.summary
        return common.shorten(text, SUMMARY_MAX)

    def source(self, fact: ItemFacts) -> str:
        return self.content.sources.get(fact.id, "")

    def _classified(self, fact: ItemFacts) -> bool:
        return fact.classified or fact.id in self.content.secret


def render(content: LogContent, words: _Words, chat: ChatConfig | None, period: LogPeriod, *,
           late: bool = False) -> Document:
    day = period.day
    end = words.time(period.end)
    subtitle = SUBTITLE.format(where=chat.name if chat is not None else COUNTY, start=words.time(period.start),
                               end=UNTIL_NOW.format(end=end) if period.partial else end)
    blocks: list[Block] = [Heading("一、总体情况"), Paragraph(_overview(content))]
    blocks += [Heading("二、新增舆情"), *_new(content, words)]
    blocks += [Heading("三、办结事项"), *_ended(content, words)]
    blocks += [Heading("四、超时情况"), Heading("（一）超时未办", 2), *_overdue(content, words)]
    blocks += [Heading("（二）超时后办理", 2), *_done_late(content, words)]
    blocks += [Heading("五、在办事项"), *_open(content, words)]
    blocks += [Heading("六、点名未应答"), *_calls(content, words)]
    blocks += [Heading("七、零报告"), *_zero(content, words)]
    return Document(TITLE.format(day=f"{day.year}年{day.month}月{day.day}日"), tuple(blocks), subtitle=subtitle,
                    late=late)


def _overview(content: LogContent) -> str:
    grades = "、".join(f"{grade}{count}条" for grade, count in content.by_grade().items() if count)
    zero = content.zero
    return OVERVIEW.format(
        new=len(content.new), grades=f"（{grades}）" if grades else "", ended=len(content.ended),
        overdue=len(content.overdue), late=len(content.done_late),
        open=len(content.open), missed=len(content.missed_calls), expected=len(content.units),
        with_items=sum(1 for u in content.units if u in zero.with_items),
        zero=sum(1 for u in content.units if u in zero.zero and u not in zero.with_items),
        missing=len(zero.missing(content.units)))


def _table(name: str, headers: tuple[str, ...], rows: Sequence[tuple[str | int | float | None, ...]]) -> list[Block]:
    return [Table(name, headers, tuple(rows))] if rows else [Paragraph(NONE)]


def _new(content: LogContent, words: _Words) -> list[Block]:
    order = {grade: i for i, grade in enumerate([*GRADES, UNGRADED])}
    facts = sorted(content.new, key=lambda f: (order[grade_of(f)], f.number))
    return _table("新增舆情", NEW_HEADERS, [
        (words.number(f), grade_of(f), words.summary(f), words.source(f), words.unit(f.lead),
         words.time(f.reported_at), status(f)) for f in facts])


def _ended(content: LogContent, words: _Words) -> list[Block]:
    rows = []
    for f in content.ended:
        assert f.ending is not None
        kind = f.ending.kind
        result = f"并入#{f.ending.merged_into}" if kind == "merged" and f.ending.merged_into else ENDINGS[kind]
        rows.append((words.number(f), grade_of(f), words.summary(f), words.unit(f.lead), result,
                     words.time(f.ending.at)))
    return _table("办结事项", ENDED_HEADERS, rows)


def _overdue(content: LogContent, words: _Words) -> list[Block]:
    blocks: list[Block] = []
    for fact, clocks in content.overdue:
        late = "；".join(OVERDUE_CLOCK.format(clock=clock, due=words.time(due), late=remaining_text(due, content.end))
                        for clock, due in clocks)
        text = OVERDUE.format(n=words.number(fact)[1:], grade=grade_of(fact), summary=words.summary(fact),
                              lead=words.unit(fact.lead), clocks=late)
        leaders = [p.id for p in words.directory.responsible(Role.LEADER, fact.lead)] if fact.lead else []
        if leaders:
            text += OVERDUE_LEADERS.format(names="、".join(words.person(p) for p in leaders))
        blocks.append(Paragraph(text, tuple(leaders)))
    return blocks or [Paragraph(NONE)]


def _done_late(content: LogContent, words: _Words) -> list[Block]:
    return [Paragraph(DONE_LATE.format(n=words.number(fact)[1:], grade=grade_of(fact), summary=words.summary(fact),
                                       unit=words.unit(fact.lead), clock=clock, due=words.time(due),
                                       done=words.time(done), late=span(done - due)))
            for fact, clock, due, done in content.done_late] or [Paragraph(NONE)]


def span(delta: timedelta) -> str:
    """"20分钟", "1小时20分钟", "2天3小时": a lateness in whole minutes (rounded up: a late second is late)."""
    minutes = -(-int(delta.total_seconds()) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{days}天" if days else "") + (f"{hours}小时" if hours else "")
    return text + (f"{minutes}分钟" if minutes or not text else "")


def _open(content: LogContent, words: _Words) -> list[Block]:
    rows = []
    for f in content.open:
        clocks = running(f, _grade_due(words.config, f))
        nxt = AWAITING_CLOSE  # answered, every clock stopped: what is left is 办结
        if clocks:
            clock, due = clocks[0]
            nxt = f"{clock} {words.time(due)}（{remaining_text(due, content.end)}）"
        rows.append((words.number(f), grade_of(f), words.summary(f), words.unit(f.lead), status(f), nxt))
    return _table("在办事项", OPEN_HEADERS, rows)


def _calls(content: LogContent, words: _Words) -> list[Block]:
    return [Paragraph(ROLL_CALL.format(at=words.time(at), chat=_chat_name(words, chat_id),
                                       people="、".join(words.person(p) for p in people)))
            for at, chat_id, people in content.missed_calls] or [Paragraph(NONE)]


def _chat_name(words: _Words, chat_id: str) -> str:
    chat = words.directory.chats.get(chat_id)
    return chat.name if chat is not None else chat_id


def _zero(content: LogContent, words: _Words) -> list[Block]:
    zero = content.zero
    with_items = [f"{words.unit(u)}（{'、'.join(f'#{n}' for n in zero.with_items[u])}）"
                  for u in content.units if u in zero.with_items]
    sent = [f"{words.unit(u)}（{words.person(zero.zero[u].actor)} {words.time(zero.zero[u].at).split(' ')[-1]}）"
            for u in content.units if u in zero.zero and u not in zero.with_items]
    missing = [words.unit(u) for u in zero.missing(content.units)]
    return [Paragraph(ZERO_WITH_ITEMS.format(count=len(with_items), units="；".join(with_items) or "无")),
            Paragraph(ZERO_SENT.format(count=len(sent), units="；".join(sent) or "无")),
            Paragraph(ZERO_MISSING.format(count=len(missing), units="、".join(missing) or "无"))]
