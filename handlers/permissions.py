"""Pure permission rules: who may do what to an item.

Grading, assigning, closing, merging and referring: the duty officer (or leader) on duty, the
item's units' liaisons and leaders, coordinators and admins. 不予回应 needs a leader: a
主要负责人 or 分管领导 of one of the item's units, a 带班领导, or a coordinator.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from bot.directory import Directory
from bot.vocab import Role
from handlers.duty import OnDuty


class Action(StrEnum):
    GRADE = "定级"
    ASSIGN = "转办"
    ACKNOWLEDGE = "签收"
    PROGRESS = "进展"
    RESPOND = "回应"
    CLOSE = "办结"
    NO_RESPONSE = "不予回应"
    MERGE = "合并"
    REFER = "移交"


_STAFF_ROLES = (Role.PRINCIPAL, Role.LEADER, Role.LIAISON)
_LEADER_ROLES = (Role.PRINCIPAL, Role.LEADER)


def is_privileged(person: str, directory: Directory) -> bool:
    return directory.has_role(person, Role.COORDINATOR) or directory.has_role(person, Role.ADMIN)


def holds(person: str, roles: Sequence[Role], units: Sequence[str], directory: Directory) -> bool:
    """Whether the person holds one of the roles in one of the units or a unit above them."""
    return any(
        directory.has_role(person, role, unit)
        for role in roles
        for item_unit in units
        for unit in directory.ancestors(item_unit)
    )


def allowed(action: Action, person: str, units: Sequence[str], on_duty: OnDuty, directory: Directory) -> bool:
    if action is Action.PROGRESS:
        return person in directory.people
    if action is Action.NO_RESPONSE:
        return (
            holds(person, _LEADER_ROLES, units, directory)
            or person in on_duty.leaders
            or directory.has_role(person, Role.DUTY_LEADER)
            or directory.has_role(person, Role.COORDINATOR)
        )
    return (
        on_duty.includes(person)
        or holds(person, _STAFF_ROLES, units, directory)
        or is_privileged(person, directory)
    )


def who_may(action: Action) -> str:
    """The refusal text's description of who may do it."""
    if action is Action.NO_RESPONSE:
        return "承办单位主要负责人、分管领导、带班领导或协调人员"
    return "当班值班人员、承办单位联络员及领导、协调人员或管理员"
