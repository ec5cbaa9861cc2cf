"""The steps of one item as a 专报 tells them, read from its audit trail (store/audit.timeline).

Who did what and when, by name; and for the three clocks (DOMAIN.md, all counted from the report)
how long the step took against the deadline in force when it was taken:
- 定级 (研判定级): the first grade, against the grade clock (`grade_due_at`);
- 签收: the lead unit's 签收, against the 签收 (pass-on) deadline of the grade then in force;
- 回应: the first public response, against the 回应 deadline of the grade then in force.
A regrade that put a deadline in the past could not be kept by anyone before it was set: the
lateness of that deadline counts from the regrade, as the deadline sweep chases it from there
(handlers/ops/grade.py). Reminders and 催办 sent (the "notice" rows the outbox writes) are steps
too, with whom they @-mentioned; the coordinators' copy of a 催办 is noted on the 催办 itself.

Pure functions of the item and its events: nothing here reads the database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from domain.vocab import FINAL_STATUSES, ItemStatus
from handlers.actions import ACTIONS
from handlers.items import CLASSIFIED_DETAIL
from handlers.policy import local_time, remaining_text, span_text
from handlers.query import detail_shown
from store.models import Item, ItemEvent

EXPORT_ACTION = "classified_export"  # a 涉密 专报 written in full (the CLI's --classified)
LABELS = ACTIONS  # 环节: the audit trail's own Chinese names (handlers/actions.py)
STAGE_WORDS = {"grade": "定级", "pass_on": "签收", "response": "回应"}

Names = Callable[[str], str]  # an id (person, unit) → the name people know


@dataclass(frozen=True)
class Timing:
    """How long a step took from the report, against its clock."""

    elapsed: timedelta
    limit: timedelta  # the clock's length in force when the step was taken
    late: timedelta  # zero when on time
    since: datetime | None = None  # set when the deadline was already past when set (a regrade)

    @property
    def on_time(self) -> bool:
        return self.late <= timedelta(0)

    def text(self, tz: ZoneInfo) -> str:
        spent = f"用时{duration(self.elapsed)}，时限{duration(self.limit)}"
        if self.on_time:
            return f"{spent}，按时"
        late = f"{spent}，超时{duration(self.late)}"
        return late + (f"（调整等级时已过时限，自{local_time(self.since, tz)}起算）" if self.since else "")


@dataclass(frozen=True)
class Step:
    at: datetime
    label: str  # 环节
    actor: str  # a name
    detail: str  # 说明, already without what a 涉密 item may not show
    timing: Timing | None = None


def duration(span: timedelta) -> str:
    """Whole minutes, as people write them: 50分钟, 1小时20分钟, 25小时20分钟; under a minute 不足1分钟."""
    minutes = int(span.total_seconds() // 60)
    return span_text(minutes) if minutes > 0 else "不足1分钟"


def when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# -- clocks -----------------------------------------------------------------------------------------------


def deadline_in_force(events: Sequence[ItemEvent], clock: str, at: datetime) -> tuple[datetime, datetime] | None:
    """The `clock` deadline ("pass_on" or "response") set by the last grade before `at`, and when
    that grade was given; None when the item was not graded yet."""
    found: tuple[datetime, datetime] | None = None
    for event in events:
        if event.at > at:
            break
        if event.action in ("graded", "regraded"):
            due = when((event.after or {}).get(f"{clock}_due_at"))
            if due is not None:
                found = (due, event.at)
    return found


def timing(reported_at: datetime, done_at: datetime, due: datetime, set_at: datetime | None = None) -> Timing:
    """A step done at `done_at` against `due`; a deadline set after it had passed counts from `set_at`."""
    since = set_at if set_at is not None and set_at > due else None
    effective = since or due
    return Timing(done_at - reported_at, due - reported_at, max(done_at - effective, timedelta(0)), since)


def step_timing(item: Item, events: Sequence[ItemEvent], event: ItemEvent) -> Timing | None:
    """The timing of a clocked step (the first grade, a lead 签收, the first 回应), else None."""
    if event.action == "graded":
        return timing(item.reported_at, event.at, item.grade_due_at)
    clock = {"acknowledged": "pass_on", "responded": "response"}.get(event.action)
    if clock is None or (event.action == "responded" and (event.after or {}).get("seq", 1) != 1):
        return None
    force = deadline_in_force(events, clock, event.at)
    return None if force is None else timing(item.reported_at, event.at, *force)


@dataclass(frozen=True)
class ClockState:
    """One clock in the 时效 section: done (with its timing) or still running, or not running."""

    name: str  # 定级 / 签收 / 回应
    text: str


def clock_states(item: Item, events: Sequence[ItemEvent], now: datetime, tz: ZoneInfo) -> list[ClockState]:
    """定级, 签收 and 回应 as they stand at `now`."""
    final = item.status in FINAL_STATUSES
    graded = next((e for e in events if e.action == "graded"), None)
    acks = [e for e in events if e.action == "acknowledged"]
    response = next((e for e in events if e.action == "responded"), None)
    states = [ClockState("定级", _state(item, events, graded, item.grade_due_at, now, final, tz))]
    if item.pass_on_due_at is None:
        states.append(ClockState("签收", "未定级，时限未起算"))
    else:
        done = acks[-1] if acks and item.acknowledged_at is not None else None
        states.append(ClockState("签收", _state(item, events, done, item.pass_on_due_at, now, final, tz)))
    if item.status == ItemStatus.NO_RESPONSE and response is None:
        states.append(ClockState("回应", "经批准不予回应"))
    elif item.response_due_at is None:
        states.append(ClockState("回应", "未定级，时限未起算"))
    else:
        states.append(ClockState("回应", _state(item, events, response, item.response_due_at, now, final, tz)))
    return states


def _state(item: Item, events: Sequence[ItemEvent], done: ItemEvent | None, due: datetime, now: datetime,
           final: bool, tz: ZoneInfo) -> str:
    if done is not None:
        found = step_timing(item, events, done)
        return found.text(tz) if found is not None else local_time(done.at, tz)
    if final:
        return f"未办理（线索{item.status}）"
    return f"尚未办理，时限{local_time(due, tz)}，{remaining_text(due, now)}"


# -- steps ------------------------------------------------------------------------------------------------


def steps(item: Item, events: Sequence[ItemEvent], *, names: Names, units: Names, full: bool) -> list[Step]:
    """The item's steps in order. `full`: a 涉密 item's texts too (else as any group may see it)."""
    copied = {_base_key(e) for e in events if e.action == "notice" and _is_copy(e)}
    chases: dict[str, int] = {}  # 催办 sent so far per clock and deadline: quiet hours fold some into one
    found: list[Step] = []
    for event in events:
        if event.action == "refused" or (event.action == "notice" and _is_copy(event)):
            continue
        shown = full or not item.classified or detail_shown(item, event.action)
        if event.action == "notice":
            label, detail = _notice(event, names, chases)
        else:
            label, detail = _describe(item, event, shown, units)
        if event.action == "notice" and _base_key(event) in copied:
            detail += "，抄送协调组"
        found.append(Step(event.at, label, names(event.actor), detail, step_timing(item, events, event)))
    return found


def _describe(item: Item, event: ItemEvent, shown: bool, units: Names) -> tuple[str, str]:
    """(环节, 说明) of one audit row."""
    after: dict[str, Any] = event.after or {}
    before: dict[str, Any] = event.before or {}
    text = event.detail if shown else CLASSIFIED_DETAIL
    reason = f"，理由：{after['reason']}" if after.get("reason") and shown else ""
    action = event.action
    if action == "reported":
        return LABELS[action], f"来源：{after.get('source') or item.source}"
    if action == "graded":
        return LABELS[action], f"定为{event.detail}{reason}"
    if action == "regraded":
        return LABELS[action], f"由{before.get('grade') or '未定级'}调整为{event.detail}{reason}"
    if action == "assigned":
        old = [u for u in before.get("units") or [] if u]
        was = f"（原：{'、'.join(units(u) for u in old)}）" if old and old != after.get("units") else ""
        return LABELS[action], f"转办至{event.detail}{was}{reason}"
    if action in ("acknowledged", "co_acknowledged"):
        return LABELS[action], event.detail + ("（配合单位）" if action == "co_acknowledged" else "")
    if action == "responded":
        kind = "续报" if after.get("seq", 1) != 1 else "首次回应"
        link = f" {after['link']}" if after.get("link") and shown else ""
        return LABELS[action], f"{kind}：{after.get('form') or ''}{link}" + (f"；{text}" if text else "")
    if action == "returned":
        return LABELS[action], f"{units(str(after.get('unit') or ''))}退回" + (f"，理由：{text}" if text else "")
    if action == "merged":
        return LABELS[action], f"并入{event.detail}"
    if action == "absorbed":
        return LABELS[action], f"{event.detail}并入本线索"
    if action == "referred":
        return LABELS[action], f"移交{event.detail}"
    if action == "classified":
        return LABELS[action], f"授权摘要：{event.detail}" if event.detail else "使用标准表述"
    return LABELS.get(action, action), text


def _notice(event: ItemEvent, names: Names, chases: dict[str, int]) -> tuple[str, str]:
    """A reminder (before the deadline), a 催办 (at or after it), or another notice. 催办 are
    counted as sent: repeats held by the quiet hours go as one (handlers/deadline_rules.py)."""
    after: dict[str, Any] = event.after or {}
    parts = str(after.get("key") or "").split(":")
    mentioned = [names(p) for p in after.get("mentions") or []]
    to = f"，提醒{'、'.join(mentioned)}" if mentioned else ""
    if parts[0] != "remind" or len(parts) < 6:
        return "通知", event.detail + to
    word = STAGE_WORDS.get(parts[2], parts[2])
    if parts[3] != "overdue":
        return "提醒", f"{word}时限已过{parts[3].removesuffix('pct')}%{to}"
    chase = f"{parts[2]}:{parts[5]}"
    chases[chase] = chases.get(chase, 0) + 1
    repeat = f"，第{chases[chase]}次催办" if chases[chase] > 1 else ""
    return "催办", f"{word}超时{repeat}{to}"


def _is_copy(event: ItemEvent) -> bool:
    """The coordinators' copy of a reminder: its key is the reminder's and the chat's."""
    parts = str((event.after or {}).get("key") or "").split(":")
    return parts[0] == "remind" and len(parts) > 6


def _base_key(event: ItemEvent) -> str:
    return ":".join(str((event.after or {}).get("key") or "").split(":")[:6])
