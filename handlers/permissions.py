"""Pure permission rules: who may do what to an item.

Grading (004 第六条) follows the policy's `grade_by` on every path; lowering a grade follows
`downgrade_by` (of the lead unit), changing the lead after 签收 `reassign_after_ack_by`.
Assigning, closing, merging and referring: the duty officer (or leader) on duty, the item's
units' liaisons and leaders, coordinators and admins. 不予回应 needs a leader: a 主要负责人 or
分管领导 of one of the item's units, a 带班领导, or a coordinator.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from domain.config import ActorRole, PolicySection
from domain.directory import Directory
from domain.vocab import Role
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
    RETURN = "退回"
    CLASSIFY = "涉密标记"


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


_ROLE_WORDS: dict[str, Role] = {role.value: role for role in Role}
_DESCRIBED = {"值班员": "当班值班员", "带班领导": "当班带班领导", "协调": "协调人员", "管理员": "管理员"}


def holds_any(
    person: str, roles: Sequence[ActorRole], units: Sequence[str], on_duty: OnDuty, directory: Directory
) -> bool:
    """Whether the person holds one of the policy's actor roles: 值班员/带班领导 on duty now,
    协调/管理员 globally, a unit role in one of `units` (or a unit above it)."""
    for word in roles:
        if word == "值班员" and person in on_duty.officers:
            return True
        if word == "带班领导" and person in on_duty.leaders:
            return True
        if word in ("协调", "管理员") and directory.has_role(person, _ROLE_WORDS[word]):
            return True
        if word in ("主要负责人", "分管领导", "联络员") and holds(person, (_ROLE_WORDS[word],), units, directory):
            return True
    return False


def describe(roles: Sequence[ActorRole], unit_word: str = "承办单位") -> str:
    """"当班值班员、协调人员或承办单位主要负责人、分管领导": the refusal's list of who may."""
    general = [_DESCRIBED[r] for r in roles if r in _DESCRIBED]
    in_unit = [r for r in roles if r not in _DESCRIBED]
    parts = general + ([unit_word + "、".join(in_unit)] if in_unit else [])
    if len(parts) > 1:
        return "、".join(parts[:-1]) + "或" + parts[-1]
    return parts[0] if parts else "（无人）"


def may_grade(person: str, units: Sequence[str], on_duty: OnDuty, directory: Directory, policy: PolicySection) -> bool:
    return holds_any(person, policy.grade_by, units, on_duty, directory)


def may_downgrade(
    person: str, lead_unit: str | None, on_duty: OnDuty, directory: Directory, policy: PolicySection
) -> bool:
    return holds_any(person, policy.downgrade_by, [lead_unit] if lead_unit else [], on_duty, directory)


def may_reassign_after_ack(
    person: str, lead_unit: str | None, on_duty: OnDuty, directory: Directory, policy: PolicySection
) -> bool:
    return holds_any(person, policy.reassign_after_ack_by, [lead_unit] if lead_unit else [], on_duty, directory)


def unit_staff(person: str, units: Sequence[str], directory: Directory) -> bool:
    """A 主要负责人, 分管领导 or 联络员 of one of the units (or a unit above it)."""
    return holds(person, _STAFF_ROLES, units, directory)


def allowed(
    action: Action, person: str, units: Sequence[str], on_duty: OnDuty, directory: Directory,
    policy: PolicySection | None = None,
) -> bool:
    if action is Action.GRADE:
        return may_grade(person, units, on_duty, directory, policy or PolicySection())
    if action is Action.CLASSIFY:
        return is_privileged(person, directory)
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


def who_may(action: Action, policy: PolicySection | None = None) -> str:
    """The refusal text's description of who may do it."""
    if action is Action.GRADE:
        return describe((policy or PolicySection()).grade_by)
    if action is Action.CLASSIFY:
        return "协调人员或管理员"
    if action is Action.NO_RESPONSE:
        return "承办单位主要负责人、分管领导、带班领导或协调人员"
    return "当班值班人员、承办单位联络员及领导、协调人员或管理员"
