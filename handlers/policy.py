"""Pure rules: deadline arithmetic, who must be @-mentioned for a grade, time formatting.

No I/O here, so these are tested directly (and with hypothesis).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from domain.config import PolicySection
from domain.directory import Directory
from domain.vocab import Grade, Role
from handlers.duty import OnDuty


@dataclass(frozen=True)
class Deadlines:
    grade_due: datetime
    pass_on_due: datetime | None
    response_due: datetime | None


def deadlines(reported_at: datetime, grade: Grade | None, policy: PolicySection) -> Deadlines:
    """All clocks count from the report time, so re-grading recomputes from the same origin."""
    grade_due = reported_at + timedelta(minutes=policy.grade_minutes)
    if grade is None:
        return Deadlines(grade_due, None, None)
    rules = policy.for_grade(grade)
    return Deadlines(
        grade_due,
        reported_at + timedelta(minutes=rules.pass_on_minutes),
        reported_at + timedelta(minutes=rules.response_minutes),
    )


_UNIT_TARGETS = {"主要负责人": Role.PRINCIPAL, "分管领导": Role.LEADER, "联络员": Role.LIAISON}


def notice_mentions(
    grade: Grade, lead_unit: str | None, on_duty: OnDuty, policy: PolicySection, directory: Directory
) -> list[str]:
    """Person ids to @ for a grade notice, in policy order, each once."""
    people: list[str] = []
    for target in policy.for_grade(grade).mention:
        if target in _UNIT_TARGETS:
            if lead_unit is not None:
                people += [p.id for p in directory.responsible(_UNIT_TARGETS[target], lead_unit)]
        elif target == "值班员":
            people += on_duty.officers
        elif target == "带班领导":
            people += on_duty.leaders
    return unique(people)


def unit_contacts(unit_ids: Iterable[str], directory: Directory) -> list[str]:
    """The 分管领导 and 联络员 of each unit: whom an assignment notifies."""
    people: list[str] = []
    for unit in unit_ids:
        people += [p.id for p in directory.responsible(Role.LEADER, unit)]
        people += [p.id for p in directory.responsible(Role.LIAISON, unit)]
    return unique(people)


def unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def span_text(minutes: int) -> str:
    """30 → "30分钟", 120 → "2小时", 1440 → "24小时", 90 → "1小时30分钟"."""
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours}小时{rest}分钟"
    return f"{hours}小时" if hours else f"{rest}分钟"


def local_time(when: datetime, tz: ZoneInfo) -> str:
    """"11月23日 19:00" in the deployment's timezone. Formatted field by field, not with strftime:
    a monthly notice formats tens of thousands of times, and this is a quarter of the time."""
    local = when.astimezone(tz)
    return f"{local.month}月{local.day}日 {local.hour:02d}:{local.minute:02d}"


def remaining_text(due: datetime, now: datetime) -> str:
    """"剩余1小时20分钟" or "已超时15分钟"; minutes rounded towards urgency. Units are spelled
    out: a duty officer reads "6分" as a score, not a time."""
    seconds = (due - now).total_seconds()
    overdue = seconds < 0
    minutes = int(abs(seconds) // 60) if not overdue else int(-(seconds // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = (f"{days}天" if days else "") + (f"{hours}小时" if hours else "")
    parts += f"{minutes}分钟" if minutes or not parts else ""
    return f"已超时{parts}" if overdue else f"剩余{parts}"


def next_due(
    grade_due: datetime,
    graded: bool,
    pass_on_due: datetime | None,
    acknowledged: bool,
    response_due: datetime | None,
    responded: bool,
) -> tuple[str, datetime] | None:
    """The earliest running clock of an item: ("定级"|"签收"|"回应", due)."""
    running: list[tuple[str, datetime]] = []
    if not graded:
        running.append(("定级", grade_due))
    if pass_on_due is not None and not acknowledged:
        running.append(("签收", pass_on_due))
    if response_due is not None and not responded:
        running.append(("回应", response_due))
    return min(running, key=lambda pair: pair[1]) if running else None
