"""舆情专报 (003 §二(六)): one item's special report for the leaders, as a Document.

Offices send a 专报 on an item first quickly, then as things move, then with the outcome (DOMAIN.md,
首报 / 续报 / 终报). The kind follows the item's state unless it is asked for (`专报 #N 续报`):
  终报  the item is finished: 办结, 不予回应 or 合并;
  续报  something has happened since the first report — a public response or a progress note;
  首报  otherwise: reported, graded, assigned, perhaps 签收, but no news from the unit yet.
Its sections: 一、基本情况 (source, link, category, summary, reporter) 二、研判定级 (the grade, who
gave it, why, every regrade) 三、承办单位 (the lead and co-units, every 转办 and 退回) 四、处置经过
(the whole audit trail: who did what and when, and for 定级, 签收 and 回应 how long it took against
the deadline in force — special_steps.py) 五、回应情况 六、时效情况 七、当前状况; then 拟稿人 and
签发 left blank for the leader who approves it.

涉密 (001 第十七条): without `full`, a 涉密 item shows only its authorised summary (or the standard
wording): no link, and no text of a progress note, a response, a reason or a result — the same
filter as 查询. The chat always writes it so; only the CLI's --classified writes it in full (and
records that export in the audit trail, bot/cli_report_item.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from domain.config import Config
from domain.directory import Directory
from domain.vocab import FINAL_STATUSES
from handlers import items as common
from handlers.ops.respond import recorded_responses
from handlers.policy import local_time, next_due, remaining_text
from handlers.records.document import Block, Document, Heading, Paragraph, Signature, Table
from handlers.records.special_steps import Step, clock_states, duration, steps
from store import audit
from store import items as item_store
from store.models import Item, ItemEvent


class Kind(StrEnum):
    FIRST = "首报"
    UPDATE = "续报"
    FINAL = "终报"


TITLE = "关于“{subject}”的舆情专报（{kind}）"
SUBJECT_MAX = 24  # the title's share of the summary; the whole summary is in 一、基本情况
SUBTITLE = "{office}　{date}"
CLASSIFIED_NOTE = "【涉密】本线索为涉密线索，以下仅含授权摘要，详情请按规定渠道查阅。"
CLASSIFIED_FULL = "【涉密】本专报含涉密内容，仅限按规定渠道报送，不得在工作群转发。"
TIMELINE_HEADERS = ("时间", "环节", "办理人", "说明", "时效")
TIMELINE_WIDTHS = (18, 13, 13, 30, 26)  # 环节 of four characters on one line; 时效 holds a sentence
NONE = "无"
SIGN_LINE = "签发：________"
DRAFTER = "拟稿人：{name}"
BLANK_NAME = "________"
API_ACTOR = "{id}（系统接入）"
CLI_ACTOR = "命令行"
STATUS_WORDS = {"已办结": "已办结", "不予回应": "经批准不予回应", "已合并": "已合并"}


def kind_of(item: Item, events: Sequence[ItemEvent]) -> Kind:
    """The kind the item's state calls for (see the module's docstring)."""
    if item.status in FINAL_STATUSES:
        return Kind.FINAL
    if any(event.action in ("responded", "progress") for event in events):
        return Kind.UPDATE
    return Kind.FIRST


@dataclass(frozen=True)
class SpecialInput:
    """What a 专报 is made of: the item, its units (the lead first), its audit trail, and when."""

    item: Item
    units: Sequence[str]
    events: Sequence[ItemEvent]
    now: datetime


async def load(session: AsyncSession, number: int, now: datetime) -> SpecialInput | None:
    item = await item_store.by_number(session, number)
    if item is None:
        return None
    return SpecialInput(item, await item_store.units_of(session, item.id), await audit.timeline(session, item.id), now)


class Writer:
    """Builds the 专报 Document with the org's names (people, units, the issuing office)."""

    def __init__(self, config: Config, directory: Directory) -> None:
        self.config = config
        self.directory = directory
        self.tz = config.tz

    def name(self, actor: str) -> str:
        person = self.directory.people.get(actor)
        if person is not None:
            return person.name
        if actor == "bot":
            return self.config.bot.name
        return CLI_ACTOR if actor == "cli" else API_ACTOR.format(id=actor)

    def office(self) -> str:
        """The issuing office: the coordinators' unit (the 政府办 that coordinates), else the bot."""
        for chat in self.directory.coordinator_chats():
            if chat.unit:
                return self.directory.unit_name(chat.unit)
        return self.config.bot.name

    def document(self, data: SpecialInput, *, kind: Kind | None = None, drafter: str = "",
                 full: bool = False) -> Document:
        item, events = data.item, data.events
        kind = kind or kind_of(item, events)
        shown_full = full or not item.classified
        subject = common.shorten(self._summary(item, shown_full).replace("\n", " "), SUBJECT_MAX)
        blocks: list[Block] = []
        if item.classified:
            blocks.append(Paragraph(CLASSIFIED_FULL if full else CLASSIFIED_NOTE))
        blocks += self._basics(item, shown_full)
        blocks += self._grading(item, events, shown_full)
        blocks += self._units(item, data.units, events, shown_full)
        blocks += self._timeline(item, events, full)
        blocks += self._responses(item, events, shown_full)
        blocks += [Heading("六、时效情况"), *(Paragraph(f"{c.name}：{c.text}。")
                                          for c in clock_states(item, events, data.now, self.tz))]
        blocks += self._status(item, events, data.now, shown_full)
        blocks.append(Signature((DRAFTER.format(name=drafter or BLANK_NAME), SIGN_LINE)))
        local = data.now.astimezone(self.tz)
        date = f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
        return Document(TITLE.format(subject=subject, kind=kind.value), tuple(blocks),
                        subtitle=SUBTITLE.format(office=self.office(), date=date))

    @staticmethod
    def _summary(item: Item, full: bool) -> str:
        """The summary without the link (it has a line of its own); a 涉密 one authorised only."""
        if not full:
            return common.public_summary(item)
        return (item.summary.replace(item.link, "").strip() if item.link else item.summary) or item.summary

    def _basics(self, item: Item, full: bool) -> list[Block]:
        blocks: list[Block] = [
            Heading("一、基本情况"),
            Paragraph(f"线索编号：#{item.number}；来源：{item.source}；类别：{item.category}。"),
        ]
        if item.link and full:
            blocks.append(Paragraph(f"原文链接：{item.link}"))
        blocks.append(Paragraph(f"舆情摘要：{self._summary(item, full)}"))
        blocks.append(Paragraph(f"上报：{self.name(item.reported_by)}，{local_time(item.reported_at, self.tz)}。"))
        return blocks

    def _grading(self, item: Item, events: Sequence[ItemEvent], full: bool) -> list[Block]:
        blocks: list[Block] = [Heading("二、研判定级")]
        grades = [e for e in events if e.action in ("graded", "regraded")]
        if not grades:
            return [*blocks, Paragraph(f"尚未定级（定级时限{local_time(item.grade_due_at, self.tz)}）。")]
        blocks.append(Paragraph(f"当前等级：{item.grade}。"))
        suggested = next((e.after.get("suggested_grade") for e in events if e.action == "reported" and e.after), None)
        if suggested:
            blocks.append(Paragraph(f"上报时建议等级：{suggested}。"))
        for event in grades:
            reason = (event.after or {}).get("reason")
            because = f"，理由：{reason}" if reason and full else ("，理由略（涉密）" if reason else "")
            old = (event.before or {}).get("grade")
            what = f"定为{event.detail}" if event.action == "graded" else f"由{old}调整为{event.detail}"
            blocks.append(Paragraph(f"{local_time(event.at, self.tz)}，{self.name(event.actor)}{what}{because}。"))
        limits = ""
        if item.pass_on_due_at is not None and item.response_due_at is not None:
            limits = (f"，签收时限{duration(item.pass_on_due_at - item.reported_at)}、"
                      f"回应时限{duration(item.response_due_at - item.reported_at)}（均自上报时起算）")
        blocks.append(Paragraph(f"研判依据：类别为“{item.category}”；按{item.grade}舆情办理{limits}。"))
        return blocks

    def _units(self, item: Item, units: Sequence[str], events: Sequence[ItemEvent], full: bool) -> list[Block]:
        lead = self.directory.unit_name(units[0]) if units else "未指定"
        co = "、".join(self.directory.unit_name(u) for u in units[1:]) or NONE
        blocks: list[Block] = [Heading("三、承办单位"), Paragraph(f"牵头单位：{lead}；配合单位：{co}。")]
        for event in events:
            if event.action == "assigned":
                old = "、".join(self.directory.unit_name(u) for u in (event.before or {}).get("units") or [])
                was = f"（原：{old}）" if old and old != event.detail else ""
                blocks.append(Paragraph(f"{local_time(event.at, self.tz)}，{self.name(event.actor)}转办至"
                                        f"{event.detail}{was}。"))
            elif event.action == "returned":
                unit = self.directory.unit_name(str((event.after or {}).get("unit") or ""))
                reason = f"，理由：{event.detail}" if full and event.detail else ""
                blocks.append(Paragraph(f"{local_time(event.at, self.tz)}，{unit}退回{reason}。"))
        if item.referred_to:
            blocks.append(Paragraph(f"已移交：{'、'.join(item.referred_to)}。"))
        return blocks

    def _timeline(self, item: Item, events: Sequence[ItemEvent], full: bool) -> list[Block]:
        found = steps(item, events, names=self.name, units=self.directory.unit_name, full=full)
        return [Heading("四、处置经过"), Table("处置经过", TIMELINE_HEADERS, tuple(self._row(s) for s in found),
                                          widths=TIMELINE_WIDTHS)]

    def _row(self, step: Step) -> tuple[str, ...]:
        timing = step.timing.text(self.tz) if step.timing is not None else ""
        return (local_time(step.at, self.tz), step.label, step.actor, step.detail, timing)

    def _responses(self, item: Item, events: Sequence[ItemEvent], full: bool) -> list[Block]:
        found = recorded_responses(events)
        if not found:
            none = "经批准不予回应。" if item.status == "不予回应" else "尚未公开回应。"
            return [Heading("五、回应情况"), Paragraph(none)]
        blocks: list[Block] = [Heading("五、回应情况")]
        texts = [e.detail for e in events if e.action == "responded"]
        for response, text in zip(found, texts, strict=True):
            kind = "首次回应" if response.seq == 1 else f"第{response.seq}次回应（续报）"
            link = f"，链接：{response.link}" if response.link and full else ""
            said = f"，内容：{text}" if text and full else ""
            blocks.append(Paragraph(f"{kind}：{local_time(response.at, self.tz)}，{response.form}{link}{said}。"))
        return blocks

    def _status(self, item: Item, events: Sequence[ItemEvent], now: datetime, full: bool) -> list[Block]:
        blocks: list[Block] = [Heading("七、当前状况")]
        ended = next((e for e in reversed(events) if e.action in ("closed", "no_response", "merged")), None)
        if item.merged_into:
            text = f"已并入 #{item.merged_into}，后续处置情况见 #{item.merged_into} 专报"
        elif ended is not None and item.status in FINAL_STATUSES:
            verdict = common.public_detail(item, item.verdict) if not full else (item.verdict or "")
            word = STATUS_WORDS.get(item.status, item.status)
            text = f"{word}（{local_time(ended.at, self.tz)}，{self.name(ended.actor)}）" + (
                f"，{'结果' if item.status == '已办结' else '理由'}：{verdict}" if verdict else "")
        else:
            clock = next_due(item.grade_due_at, item.grade is not None, item.pass_on_due_at,
                                    item.acknowledged_at is not None, item.response_due_at,
                                    item.responded_at is not None)
            text = f"{item.status}，尚未办结"
            if clock is not None:
                text += f"；{clock[0]}时限{local_time(clock[1], self.tz)}（{remaining_text(clock[1], now)}）"
        blocks.append(Paragraph(f"截至{local_time(now, self.tz)}，{text}。"))
        return blocks


async def special_report(session: AsyncSession, config: Config, directory: Directory, number: int, now: datetime,
                         *, kind: Kind | None = None, drafter: str = "", full: bool = False) -> Document | None:
    """The 专报 of item #number as of `now`; None when there is no such item."""
    data = await load(session, number, now)
    if data is None:
        return None
    return Writer(config, directory).document(data, kind=kind, drafter=drafter, full=full)
