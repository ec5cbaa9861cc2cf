"""The grade policy (deadlines, mentions, reminders, escalation, permissions) and the roster settings."""

from __future__ import annotations

from datetime import date, time
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field

from domain.categories import DEFAULT_CATEGORIES, DEFAULT_RESPONSE_FORMS
from domain.config.base import _Model
from domain.vocab import Grade

MentionTarget = Literal["主要负责人", "分管领导", "联络员", "值班员", "带班领导"]


class GradePolicy(_Model):
    pass_on_minutes: int = Field(gt=0)
    response_minutes: int = Field(gt=0)
    mention: list[MentionTarget]
    copy_to_coordinators: bool = False
    # Reminders before a deadline, as fractions of the clock (0.5 = half-way, 0.8 = 80 %).
    reminders: list[Annotated[float, Field(gt=0, lt=1)]] = [0.5, 0.8]
    # After the deadline: the overdue notice, then a repeat every repeat_minutes, at most max_repeats.
    repeat_minutes: int = Field(default=120, gt=0)
    max_repeats: int = Field(default=6, ge=0, le=100)
    # 不漏报、不迟报 (001 第九条): an item of this grade is chased until handled, max_repeats is
    # ignored; each interval is the last one times repeat_growth, at most repeat_max_minutes.
    until_handled: bool = False
    repeat_growth: float = Field(default=1.0, ge=1.0, le=10.0)
    repeat_max_minutes: int | None = Field(default=None, gt=0)
    # Held during the quiet hours of [policy.quiet_hours] (never for 重大 in the defaults).
    quiet: bool = False


def _policy(
    pass_on: int, response: int, mention: list[MentionTarget], copy: bool, repeat: int, quiet: bool,
    until_handled: bool = False,
) -> GradePolicy:
    return GradePolicy(
        pass_on_minutes=pass_on, response_minutes=response, mention=mention, copy_to_coordinators=copy,
        repeat_minutes=repeat, quiet=quiet, until_handled=until_handled,
        repeat_growth=2.0 if until_handled else 1.0, repeat_max_minutes=4 * repeat if until_handled else None,
    )


class QuietHours(_Model):
    """Local times between which reminders of `quiet` grades wait (e.g. 22:00 → 07:30)."""

    start: str = Field(default="22:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="07:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class EscalationPolicy(_Model):
    """Who an overdue notice reaches, by how many times it has been repeated.

    Occurrence 0 is the overdue notice itself (the handler: the lead unit's 联络员 and 分管领导);
    from `principal_after` the unit's 主要负责人 is added, from `coordinators_after` a copy goes
    to the coordinators' chat.
    """

    principal_after: int = Field(default=1, ge=0)
    coordinators_after: int = Field(default=2, ge=0)


# Who may do a controlled action. 值班员 / 带班领导: the people on duty in the chat at the time;
# 主要负责人 / 分管领导 / 联络员: of the item's units (grading) or of its lead unit (downgrade, 转办
# after 签收), or of a unit above it (属地管理); 协调 / 管理员: the global roles.
ActorRole = Literal["值班员", "带班领导", "协调", "管理员", "主要负责人", "分管领导", "联络员"]


class CategoryRule(_Model):
    """One row of the category keyword table: the first rule with a word in the text names the category."""

    name: str = Field(min_length=1, max_length=16)
    keywords: list[str] = Field(min_length=1)

    @cached_property
    def folded_keywords(self) -> tuple[str, ...]:
        """The keywords case-folded once (every report is matched against all of them)."""
        return tuple(word.casefold() for word in self.keywords)


class ResponseFormRule(_Model):
    """A response form (004 第八条) and the everyday phrasings that name it."""

    name: str = Field(min_length=1, max_length=16)
    aliases: list[str] = []


class CoordinatorCopies(_Model):
    """归口报送 (004 第八条, 第十条): what is copied to the coordinators' chat besides grade notices
    (those follow each grade's copy_to_coordinators)."""

    downgrade: bool = True
    lead_change: bool = True
    returned: bool = True
    referred: bool = True
    responses: list[Grade] = [Grade.MAJOR, Grade.SIGNIFICANT]
    closures: list[Grade] = [Grade.MAJOR, Grade.SIGNIFICANT]


def _default_categories() -> list[CategoryRule]:
    return [CategoryRule(name=name, keywords=list(words)) for name, words in DEFAULT_CATEGORIES]


def _default_response_forms() -> list[ResponseFormRule]:
    return [ResponseFormRule(name=name, aliases=list(aliases)) for name, aliases in DEFAULT_RESPONSE_FORMS]


class PolicySection(_Model):
    grade_minutes: int = Field(default=15, gt=0)
    grade_question_minutes: int = Field(default=15, gt=0)
    major: GradePolicy = _policy(
        30, 24 * 60, ["主要负责人", "分管领导", "联络员", "值班员", "带班领导"], True, repeat=30, quiet=False,
        until_handled=True,
    )
    significant: GradePolicy = _policy(
        120, 48 * 60, ["分管领导", "联络员", "值班员", "带班领导"], True, repeat=120, quiet=False
    )
    general: GradePolicy = _policy(24 * 60, 48 * 60, ["分管领导", "联络员", "值班员"], False, repeat=240, quiet=True)
    quiet_hours: QuietHours = QuietHours()
    escalation: EscalationPolicy = EscalationPolicy()
    # 004 第六条 研判定级: who may grade an item (any path: 定级, "#N 等级", the answer to the question).
    grade_by: list[ActorRole] = ["值班员", "带班领导", "协调", "管理员", "主要负责人", "分管领导"]
    # Lowering a grade needs a reason and one of these roles (unit roles: of the lead unit).
    downgrade_by: list[ActorRole] = ["协调", "管理员", "主要负责人", "分管领导"]
    # 000 §三: once the lead unit has signed for an item, only these may change the lead (with a reason).
    reassign_after_ack_by: list[ActorRole] = ["协调", "管理员", "主要负责人", "分管领导"]
    # Categories that count as 突发事件 for the rules that name it (the 一般 warning, the press conference).
    emergency_categories: list[str] = ["突发事件", "自然灾害"]
    # A report whose normalised link matches an item reported within this many days is a supplement.
    duplicate_days: int = Field(default=7, ge=0, le=365)
    categories: list[CategoryRule] = Field(default_factory=_default_categories, min_length=1)
    response_forms: list[ResponseFormRule] = Field(default_factory=_default_response_forms, min_length=1)
    # The form a 重大 突发事件 is expected to be answered in (000 §四(四)).
    press_conference_form: str = "新闻发布会"
    copies: CoordinatorCopies = CoordinatorCopies()

    def for_grade(self, grade: Grade) -> GradePolicy:
        policy: GradePolicy = getattr(self, grade.key)
        return policy


DayTypeName = Literal["工作日", "休息日", "法定节假日"]


class RosterSection(_Model):
    """排班 settings. The roster itself (shifts, rotations, leave) is operational data in the database."""

    # Day types the holiday library does not know or gets wrong: date → 工作日 / 休息日 / 法定节假日.
    day_types: dict[date, DayTypeName] = {}
    # Years whose holidays are fully entered in day_types (before the library has them); their other
    # dates follow the weekday rule instead of being reported as unknown.
    published_years: list[int] = []
    remind: bool = True  # remind tomorrow's people of their shifts
    remind_time: time = time(16, 0)
    handover: bool = True  # post 交接班 at every shift change
    roll_call_times: list[time] = []  # 点名 times (local); empty: no roll call
    roll_call_minutes: int = Field(default=10, ge=1, le=240)
    gap_report_time: time = time(9, 0)  # the daily report of gaps to the admins' chat
    gap_report_days: int = Field(default=7, ge=1, le=60)
    swap_answer_hours: int = Field(default=24, ge=1, le=168)
    # Automatic substitutes (for people on leave) are never given more than this many hours on duty
    # in one stretch; a break shorter than min_rest_hours does not count as rest.
    max_continuous_hours: int = Field(default=24, ge=8, le=72)
    min_rest_hours: int = Field(default=8, ge=0, le=48)
    horizon_days: int = Field(default=400, ge=31, le=2000)  # how far ahead the roster is resolved
    example_file: str | None = None  # the roster `dutybot demo` imports on first start (None: the bundled one)
