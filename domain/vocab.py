"""The domain's fixed vocabulary, shared by config, handlers and store (stored as these words)."""

from __future__ import annotations

from enum import StrEnum


class Grade(StrEnum):
    MAJOR = "重大"
    SIGNIFICANT = "较大"
    GENERAL = "一般"

    @property
    def key(self) -> str:
        """The ASCII key used for this grade in the TOML policy tables."""
        return {Grade.MAJOR: "major", Grade.SIGNIFICANT: "significant", Grade.GENERAL: "general"}[self]


class Role(StrEnum):
    PRINCIPAL = "主要负责人"
    LEADER = "分管领导"
    LIAISON = "联络员"
    DUTY_OFFICER = "值班员"
    DUTY_LEADER = "带班领导"
    COORDINATOR = "协调"
    ADMIN = "管理员"


UNIT_ROLES = frozenset({Role.PRINCIPAL, Role.LEADER, Role.LIAISON})
GLOBAL_ROLES = frozenset({Role.DUTY_OFFICER, Role.DUTY_LEADER, Role.COORDINATOR, Role.ADMIN})


class UnitKind(StrEnum):
    TOWN = "镇街"
    DEPARTMENT = "部门"
    VERTICAL = "垂直管理"


class Platform(StrEnum):
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    LOCAL = "local"


class ItemStatus(StrEnum):
    REPORTED = "待定级"
    GRADED = "已定级"
    ASSIGNED = "已转办"
    ACKNOWLEDGED = "已签收"
    RESPONDED = "已回应"
    CLOSED = "已办结"
    NO_RESPONSE = "不予回应"
    MERGED = "已合并"


# Statuses after which no clock runs and the item leaves the to-do list.
FINAL_STATUSES = frozenset({ItemStatus.CLOSED, ItemStatus.NO_RESPONSE, ItemStatus.MERGED})


# Response forms are not fixed words: they are the policy's (`policy.response_forms`, defaults in
# bot/categories.py), so a county can name them as its own rules do.


class Referral(StrEnum):
    POLICE = "公安"
    CYBERSPACE = "网信"


class Category(StrEnum):
    POLICY = "政策误读"
    INTERESTS = "切身利益"
    MORALS = "道德底线"
    EMERGENCY = "突发事件"
    DISASTER = "自然灾害"
    HIGHER_LEVEL = "上级要求"
    RUMOUR = "谣言"
    OTHER = "其他"


class Scope(StrEnum):
    """What an intake-API token may do; a token holds a list of these (stored as these words)."""

    ITEMS_WRITE = "items:write"
    ITEMS_READ = "items:read"
    CLASSIFIED_READ = "classified:read"
