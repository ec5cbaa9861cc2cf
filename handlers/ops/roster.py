"""The roster's operations and what they return: 请假 / 销假 (handlers/ops/roster_leave.py), 换班
and 代班 (roster_swap.py), 排班 and 替班 by an admin (roster_admin.py), over a unit of work, an actor
and the clock, knowing nothing of chats or text.

Every change writes the definition (leave, override, assignment), re-resolves the affected dates in
the same transaction, is recorded in the audit trail and reports a slot nobody can take to the
admins. Its event carries the shifts as stored after the change (re-read, never taken from the
request), so a confirmation rendered from it is the truth: a change the rules do not let stand is
visible at once instead of being confirmed and silently not applied.

A request the rules refuse returns one of the refusal types below instead, with what the answer
needs to say why (and, for a leave, which leave and its reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from domain.config import PersonConfig
from domain.dialogues import ShiftPart, SwapQuestion
from domain.vocab import Role
from handlers.ops.roster_slots import Slot
from handlers.roster_parse import DayExpr
from handlers.roster_rules import Coverage, Segment


class RosterChange(StrEnum):
    """The roster changes (the words people use for them)."""

    SWAP = "换班"
    COVER = "代班"
    ASSIGN = "排班"
    LEAVE = "请假"
    CANCEL_LEAVE = "销假"


@dataclass(frozen=True)
class LeaveSpan:
    """A leave as it was when the operation read it."""

    id: int
    person_id: str
    start_at: datetime
    end_at: datetime
    reason: str


# -- refusals ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotAPerson:
    """The actor is no configured person (an API client): the roster is people's own."""

    actor: str


@dataclass(frozen=True)
class NoRoster:
    """The chat has no roster to change."""

    change: RosterChange


@dataclass(frozen=True)
class PrivilegedOnly:
    """Only admins and coordinators may make this change (or make it for someone else)."""

    change: RosterChange


@dataclass(frozen=True)
class BadDate:
    """The day named does not exist (2月30日)."""

    day: DayExpr


@dataclass(frozen=True)
class UnknownPerson:
    name: str


@dataclass(frozen=True)
class NoShiftsOn:
    day: date


@dataclass(frozen=True)
class NoShiftNamed:
    day: date
    shift: str
    names: tuple[str, ...]  # the shifts the day has


@dataclass(frozen=True)
class WhichShift:
    """The person (or the request) names a day with several shifts: which one?"""

    change: RosterChange
    day: date
    names: tuple[str, ...]


@dataclass(frozen=True)
class ShiftEnded:
    change: RosterChange
    day: date
    shift: str  # as asked ("" when no shift was named)


@dataclass(frozen=True)
class NotEligible:
    """`person` may not hold the role(s) (neither the global role nor in the chat's rotation)."""

    person: PersonConfig
    roles: tuple[Role, ...]


@dataclass(frozen=True)
class OnLeave:
    """Nobody is put on a shift during their own leave: which leave, and its reason."""

    change: RosterChange
    person: PersonConfig
    leave: LeaveSpan


@dataclass(frozen=True)
class NotOnShift:
    """`person` has no shift to give there; `own`: the actor's own shift (else the other side's)."""

    person: PersonConfig
    day: date
    shift: str
    own: bool


@dataclass(frozen=True)
class SelfSwap:
    pass


@dataclass(frozen=True)
class AlreadyOn:
    person: PersonConfig
    day: date
    shift: str
    role: Role


@dataclass(frozen=True)
class CoverWhom:
    """Several people could be covered: (shift, person) of each."""

    day: date
    shift: str
    choices: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CoverNobody:
    day: date
    shift: str
    roles: tuple[Role, ...]


@dataclass(frozen=True)
class CoverSelf:
    day: date
    shift: str


@dataclass(frozen=True)
class BadLeaveRange:
    """The leave ends before it starts, or before now."""


@dataclass(frozen=True)
class LeaveTooLong:
    days: int


@dataclass(frozen=True)
class NoLeave:
    person: PersonConfig
    day: date | None  # None: no leave not yet ended at all


@dataclass(frozen=True)
class BadRange:
    """A 替班 range that ends before it starts."""


@dataclass(frozen=True)
class NothingToReplace:
    old: PersonConfig


RosterRefusal = (
    NotAPerson | NoRoster | PrivilegedOnly | BadDate | UnknownPerson | NoShiftsOn | NoShiftNamed | WhichShift
    | ShiftEnded | NotEligible | OnLeave | NotOnShift | SelfSwap | AlreadyOn | CoverWhom | CoverNobody | CoverSelf
    | BadLeaveRange | LeaveTooLong | NoLeave | BadRange | NothingToReplace
)


# -- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredPart:
    """A changed part and the stored segments of its slot after the change (shown from `start`)."""

    part: ShiftPart
    start: datetime
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class LeaveTaken:
    person: PersonConfig
    start: datetime
    end: datetime
    reason: str
    event_id: int
    before: dict[Slot, list[Segment]]  # the person's slots in the period, before the leave
    after: dict[Slot, list[Segment]]  # every slot in the period, as stored after it


@dataclass(frozen=True)
class LeaveCancelled:
    person: PersonConfig
    leaves: tuple[LeaveSpan, ...]  # as they were
    event_id: int
    before: dict[Slot, list[Segment]]  # every slot in the period, before
    after: dict[Slot, list[Segment]]  # the person's slots in the period, as stored after


@dataclass(frozen=True)
class SwapAsked:
    asker: PersonConfig
    target: PersonConfig
    question: SwapQuestion
    expires_at: datetime


@dataclass(frozen=True)
class SwapDeclined:
    by: PersonConfig
    question: SwapQuestion


@dataclass(frozen=True)
class SwapExpired:
    question: SwapQuestion
    expired_at: datetime


@dataclass(frozen=True)
class SwapStale:
    """The roster changed since the question: the asker no longer holds `part`."""

    question: SwapQuestion
    part: ShiftPart


@dataclass(frozen=True)
class ShiftsSwapped:
    by: PersonConfig  # who agreed
    question: SwapQuestion
    parts: tuple[StoredPart, ...]
    gaps: dict[str, Coverage]
    event_id: int


@dataclass(frozen=True)
class ShiftCovered:
    by: PersonConfig
    part: StoredPart  # giver: the person covered
    gaps: dict[str, Coverage]
    event_id: int


@dataclass(frozen=True)
class ShiftAssigned:
    day: date
    shift: str
    role: Role
    start: datetime
    end: datetime
    people: tuple[str, ...]  # as named
    old: tuple[str, ...]  # before the change
    segments: tuple[Segment, ...]  # the slot as stored after it
    gaps: dict[str, Coverage]
    event_id: int


@dataclass(frozen=True)
class ShiftReplaced:
    """替班 by an admin: `new` takes `old`'s place in every part."""

    new: PersonConfig
    old: PersonConfig
    parts: tuple[StoredPart, ...]
    gaps: dict[str, Coverage]
    event_id: int
