"""零报告: a unit's liaison confirms that the unit has no public opinion to report today.

County offices expect every unit to say so each day (DOMAIN: 零报告; 001 第九条 不漏报): the daily
log lists who did and who did not, the 17:00 reminder chases the rest, the 定期通报 counts the days
missed. A 零报告 is one audit row per unit and local day (action "zero_report", the unit id and the
day in `detail` and `after`), so all of those are computed from the audit trail alone.

Who may send it: the unit's 联络员 — or its 主要负责人 or 分管领导 when the liaison is away; a
role in a unit above counts too (a town's liaison may answer for its community, 属地管理). Sent
without naming units, it covers every unit the sender is liaison of (else leads). A unit that has
an item reported today has something to report: its 零报告 is refused, with the item numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from domain.config import ChatConfig
from domain.directory import Directory
from domain.vocab import Role
from handlers.ops.base import Actor, Work
from handlers.permissions import unit_staff
from store import audit
from store import records_daily as store

ACTION = store.ZERO_REPORT


class AuditRow(Protocol):
    """What the rule reads of an audit row (store.models.ItemEvent is one; so is a compact row)."""

    @property
    def item_id(self) -> int | None: ...
    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def after(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ZeroEntry:
    """A unit's 零报告 of a day: who sent it and when."""

    unit: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class DayStatus:
    """What each unit did about the day's 零报告: items reported, or a 零报告, or nothing."""

    day: date
    with_items: dict[str, tuple[int, ...]] = field(default_factory=dict)  # unit → numbers reported that day
    zero: dict[str, ZeroEntry] = field(default_factory=dict)  # unit → its first 零报告 of the day

    def missing(self, units: Iterable[str]) -> list[str]:
        """The units (in the order given) with neither an item nor a 零报告 that day."""
        return [u for u in units if u not in self.with_items and u not in self.zero]


class ZeroRefusal(StrEnum):
    NO_UNIT_ROLE = "no_unit_role"  # the sender holds no role in any unit
    NOT_OF_UNIT = "not_of_unit"  # a unit named that the sender does not serve


@dataclass(frozen=True)
class ZeroRefused:
    refusal: ZeroRefusal
    unit: str | None = None


@dataclass(frozen=True)
class ZeroReported:
    """What became of each unit of the 零报告: recorded now, recorded before, or has items today."""

    day: date
    recorded: tuple[str, ...]
    already: tuple[ZeroEntry, ...]
    has_items: tuple[tuple[str, tuple[int, ...]], ...]


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day as a UTC window [start, end)."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def expected_units(directory: Directory) -> list[str]:
    """The units a 零报告 is expected from: every configured unit, in the configuration's order."""
    return [unit.id for unit in directory.config.units]


def reporting_units(person: str, directory: Directory) -> list[str]:
    """The units a person's 零报告 covers when they name none: those they are 联络员 of, else
    those they lead (主要负责人 / 分管领导), in the configuration's order."""
    roles = directory.unit_roles(person)
    for wanted in ((Role.LIAISON,), (Role.PRINCIPAL, Role.LEADER)):
        units = {unit for role, unit in roles if role in wanted}
        if units:
            return [u.id for u in directory.config.units if u.id in units]
    return []


async def day_status(session: AsyncSession, day: date, tz: ZoneInfo) -> DayStatus:
    """Each unit's items and 零报告 of the local `day`, from that day's audit rows."""
    start, end = day_bounds(day, tz)
    rows = await store.rows_between(session, start, end, ("reported", "assigned", ACTION))
    return status_from_rows(day, rows)


def status_from_rows(day: date, rows: Sequence[AuditRow]) -> DayStatus:
    """A unit has items on the day when an item reported that day led by it at the report, or was
    transferred to it that same day; its 零报告 is its first zero_report row naming the day."""
    numbers: dict[int, int] = {}
    units_of: dict[int, list[str]] = {}
    zero: dict[str, ZeroEntry] = {}
    for row in rows:
        after = row.after or {}
        if row.action == "reported" and row.item_id is not None:
            numbers[row.item_id] = int(after.get("number") or 0)
            lead = after.get("lead_unit_id")
            units_of[row.item_id] = [str(lead)] if lead else []
        elif row.action == "assigned" and row.item_id in units_of:
            units_of[row.item_id] += [str(u) for u in after.get("units") or []]
        elif row.action == ACTION and after.get("day") == day.isoformat() and after.get("unit"):
            zero.setdefault(str(after["unit"]), ZeroEntry(str(after["unit"]), row.actor, row.at))
    with_items: dict[str, list[int]] = {}
    for item_id, units in units_of.items():
        for unit in dict.fromkeys(units):
            with_items.setdefault(unit, []).append(numbers[item_id])
    return DayStatus(day, {u: tuple(sorted(n)) for u, n in with_items.items()}, zero)


async def zero_report(
    work: Work, actor: Actor, chat: ChatConfig, units: Sequence[str] = ()
) -> ZeroReported | ZeroRefused:
    """Record today's 零报告 of `units` (none named: the sender's own units), once per unit and day."""
    wanted = list(dict.fromkeys(units)) or reporting_units(actor.id, work.directory)
    if not wanted:
        return ZeroRefused(ZeroRefusal.NO_UNIT_ROLE)
    for unit in wanted:
        if not unit_staff(actor.id, [unit], work.directory):
            return ZeroRefused(ZeroRefusal.NOT_OF_UNIT, unit)
    day = work.now.astimezone(work.config.tz).date()
    status = await day_status(work.session, day, work.config.tz)
    recorded: list[str] = []
    for unit in wanted:
        if unit in status.zero or unit in status.with_items:
            continue
        name = work.directory.unit_name(unit)
        await audit.record(work.session, at=work.now, actor=actor.id, chat_id=chat.id, action=ACTION,
                           detail=f"{name}（{unit}）{day.isoformat()} 零报告：今日无舆情",
                           after={"unit": unit, "day": day.isoformat()})
        recorded.append(unit)
    return ZeroReported(
        day, tuple(recorded),
        already=tuple(status.zero[u] for u in wanted if u in status.zero),
        has_items=tuple((u, status.with_items[u]) for u in wanted if u in status.with_items and u not in status.zero),
    )
