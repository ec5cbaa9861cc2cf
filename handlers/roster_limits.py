"""How long one person may be on duty in one stretch, and what counts as rest in between.

A stretch is a person's duty with every break shorter than the minimum rest counted as duty (a
two-hour break between a day and a night shift is no rest). No stretch may be longer than the
maximum continuous duty. The roster's automatic substitutes are chosen within these limits (a
person just off a 24-hour holiday shift is not made to cover the next morning too); explicit
choices by people (排班, 换班, 代班) are theirs to make, and the coverage check names every
stretch that is too long, whoever made it.

The limits are for 值班员, who sit the shift. A 带班领导 is on call (reachable, and comes in when
needed); taking 带班 for a whole week is common practice, so it is not counted as continuous duty.
Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.vocab import Role

LIMITED_ROLE = Role.DUTY_OFFICER


@dataclass(frozen=True)
class DutyLimits:
    max_continuous: timedelta = timedelta(hours=24)
    min_rest: timedelta = timedelta(hours=8)

    def stretches(self, spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
        """The spans joined wherever the break between them is shorter than the minimum rest."""
        merged: list[tuple[datetime, datetime]] = []
        for start, end in sorted(spans):
            if merged and start - merged[-1][1] < self.min_rest:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def allows(self, spans: Iterable[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
        """Whether someone on duty for `spans` may also take [start, end)."""
        for first, last in self.stretches([*spans, (start, end)]):
            if first <= start and end <= last:
                return last - first <= self.max_continuous
        return True


@dataclass(frozen=True)
class Strain:
    """A stretch of one person's duty longer than the limit."""

    person: str
    start: datetime
    end: datetime


def strains(spans: Iterable[tuple[str, datetime, datetime]], limits: DutyLimits) -> list[Strain]:
    """Every stretch (person, start, end) longer than the maximum continuous duty."""
    by_person: dict[str, list[tuple[datetime, datetime]]] = {}
    for person, start, end in spans:
        by_person.setdefault(person, []).append((start, end))
    found = [Strain(person, first, last) for person, mine in by_person.items()
             for first, last in limits.stretches(mine) if last - first > limits.max_continuous]
    return sorted(found, key=lambda s: (s.start, s.person))
