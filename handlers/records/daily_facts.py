"""What the 舆情日志 reads from an item's facts, and the 24 hours it covers.

The facts themselves — an item's gradings and the deadlines in force, its lead over time, the
lead's 签收 in force, its responses, its ending, 涉密 — are derived from the audit trail by
handlers/records/facts.py (the same rules as the 定期通报 and the 专报). This module adds only
what the daily log asks of them: the clocks still running at the end of the period, the 签收 and
回应 made late within it, the status in the words of domain.vocab.ItemStatus, and whether an item
belongs in a chat's log. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.vocab import ItemStatus
from handlers.deadline_rules import ClockName
from handlers.records.facts import ItemFacts

# How the row that ended an item is named in the log, and the status it leaves.
ENDINGS = {"closed": "办结", "no_response": "不予回应", "merged": "合并"}
ENDED_STATUS = {"closed": ItemStatus.CLOSED, "no_response": ItemStatus.NO_RESPONSE, "merged": ItemStatus.MERGED}
CLOCK_WORDS = {ClockName.PASS_ON: "签收", ClockName.RESPONSE: "回应"}


def running(fact: ItemFacts, grade_due: datetime | None) -> list[tuple[str, datetime]]:
    """The clocks still running at the facts' cut, earliest first: ("定级"|"签收"|"回应", due in force)."""
    if fact.ending is not None:
        return []
    clocks: list[tuple[str, datetime]] = []
    if fact.grade is None and grade_due is not None:
        clocks.append(("定级", grade_due))
    for clock, word in CLOCK_WORDS.items():
        result = fact.result(clock)
        if result is not None and result.done is None:
            clocks.append((word, result.due))
    return sorted(clocks, key=lambda entry: entry[1])


def done_late(fact: ItemFacts, start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """The 签收 and 回应 made in [start, end) after their deadline in force: (clock, due, done at)."""
    late = []
    for clock, word in CLOCK_WORDS.items():
        result = fact.result(clock)
        if result is not None and result.done is not None and start <= result.done < end and result.done > result.due:
            late.append((word, result.due, result.done))
    return late


def status(fact: ItemFacts) -> str:
    """The item's status at the cut, as the lifecycle names it (domain.vocab.ItemStatus)."""
    if fact.ending is not None:
        return ENDED_STATUS[fact.ending.kind].value
    if fact.responded_at is not None:
        return ItemStatus.RESPONDED.value
    if fact.acknowledged_at is not None:
        return ItemStatus.ACKNOWLEDGED.value
    assigned = any(lead.action == "assigned" for lead in fact.leads)
    if assigned and fact.lead is not None:
        return ItemStatus.ASSIGNED.value
    return (ItemStatus.GRADED if fact.grade is not None else ItemStatus.REPORTED).value


def units_of(fact: ItemFacts) -> tuple[str, ...]:
    """The item's units at the cut, the lead first."""
    return fact.leads[-1].units if fact.leads else ()


def in_scope(fact: ItemFacts, scope: set[str] | None, chat_id: str | None) -> bool:
    """An item belongs in a chat's log when one of its units is of the chat's, or it was reported
    there; `scope` None (the coordinators' chat, or the whole county): every item."""
    if scope is None:
        return True
    return (chat_id is not None and fact.chat_id == chat_id) or any(u in scope for u in units_of(fact))


# -- the period -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogPeriod:
    """The 24 hours a log covers. The log of `day` runs from that day's log time to the next day's
    — a duty day, as the shifts run — and is posted when it ends; asked for earlier, it runs up
    to the moment asked (`partial`)."""

    day: date
    start: datetime  # UTC
    end: datetime  # UTC, exclusive
    partial: bool = False


def period_of(day: date, at: time, tz: ZoneInfo, now: datetime) -> LogPeriod:
    start = datetime.combine(day, at, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), at, tzinfo=tz)
    if end > now:
        return LogPeriod(day, start.astimezone(UTC), max(now, start).astimezone(UTC), partial=True)
    return LogPeriod(day, start.astimezone(UTC), end.astimezone(UTC))


def current_day(now: datetime, at: time, tz: ZoneInfo) -> date:
    """The duty day `now` falls in: before the log time it is still the previous day's."""
    local = now.astimezone(tz)
    return local.date() if local.time() >= at else local.date() - timedelta(days=1)
