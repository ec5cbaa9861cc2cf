"""Configuration: TOML → pydantic v2, plus the cross-reference checks pydantic cannot express.

Org structure (units, people, chats, grade policy) lives here; operational data (items, the
roster) lives in the database. Every problem is reported with its TOML path, entries named by id,
e.g. ``people[zhao_min].mobile：“110”不是大陆手机号…`` (bot/config_errors.py).
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.categories import DEFAULT_CATEGORIES, DEFAULT_RESPONSE_FORMS
from bot.config_errors import Problem as Problem
from bot.config_errors import pydantic_problems, reference_problems, toml_syntax_message
from bot.vocab import Grade, Platform, Role, UnitKind

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
ID_RE = r"^[A-Za-z0-9_.-]{1,64}$"

Ident = Annotated[str, Field(pattern=ID_RE)]


class _Model(BaseModel):
    # Unknown keys are errors: a typo in the TOML must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class BotSection(_Model):
    name: str = "舆情值班助手"


class ServerSection(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # The local channel and /sim let anyone who reaches them speak as any configured person:
    # always on for `dutybot demo`; for `dutybot serve` only when turned on here, and then only
    # for clients on this machine (loopback) unless simulator_remote is also set.
    simulator: bool = False
    simulator_remote: bool = False


class DeliverySection(_Model):
    """How the outbox delivers: timeouts, the per-webhook budget, leases, digests."""

    # One webhook call may take this long before it counts as failed (and is retried).
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    # The platforms allow 20 messages per robot in any 60 seconds (failed sends included).
    rate_limit: int = Field(default=20, ge=1)
    rate_window_seconds: int = Field(default=60, ge=1)
    # Counted on top of the window: the platform stamps posts with its own clocks when they
    # arrive, which we never see; a margin keeps jitter between its clocks and ours from ever
    # letting a 21st post into its 60 seconds.
    rate_skew_seconds: float = Field(default=2, ge=0, le=30)
    # More messages than this waiting for one chat's budget are folded into one digest.
    digest_after: int = Field(default=10, ge=2)
    # A claimed message whose worker died is taken over after this long.
    lease_seconds: int = Field(default=120, ge=5)
    # How often the scheduler sweeps the clocks and the outbox.
    tick_seconds: float = Field(default=1, gt=0, le=60)
    # On SIGTERM, posts in flight may finish for this long; the process exits within it plus 2 s.
    shutdown_seconds: float = Field(default=10, gt=0, le=300)
    # Messages a robot refused for a configuration reason are held; this often one of them is
    # tried again per chat, and once the robot accepts it the rest follow.
    held_probe_seconds: int = Field(default=60, ge=5)

    @model_validator(mode="after")
    def _lease_outlives_a_post(self) -> DeliverySection:
        # A claim must outlive the post it covers and the write after it: a lease that runs out
        # while the platform is still answering lets another replica take the row and post it again.
        if self.lease_seconds < 2 * self.timeout_seconds:
            raise ValueError(
                f"lease_seconds（{self.lease_seconds}）应不小于 timeout_seconds（{self.timeout_seconds:g}）的两倍，"
                "否则一次较慢的发送尚未结束，租约已到期，别的实例会重复发送"
            )
        return self


def check_database_url(value: str) -> str:
    """The URL if dutybot can use it: PostgreSQL through asyncpg, or an SQLite *file* (the store
    runs SQLite statements on its own connections to that file; an in-memory database would be a
    different, empty database on each of them)."""
    sqlite_path = value.removeprefix("sqlite+aiosqlite:///") if value.startswith("sqlite+aiosqlite:///") else None
    if value.startswith("postgresql+asyncpg://") or (sqlite_path and sqlite_path.split("?")[0] != ":memory:"):
        return value
    raise ValueError("数据库 URL 应为 sqlite+aiosqlite:///文件路径 或 postgresql+asyncpg://用户@主机/库名")


class SpoolSection(_Model):
    """Where a platform message is kept while the database cannot be written (bot/spool.py)."""

    # One file per process in this directory (relative paths: from the working directory).
    directory: str = "var/spool"
    # A process's file stops taking messages at this size; callbacks then get 503 and are retried.
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    # How long a platform message may wait for the database before it is spooled instead
    # (WeCom retries a callback not answered within 5 seconds).
    write_budget_seconds: float = Field(default=3.0, gt=0, le=30)


class ApiSection(_Model):
    """The intake API (/api/v1) for monitoring systems and the 12345 platform. It answers only
    requests with a valid token (`dutybot api token create`): with no token, no open door."""

    # Requests per token per minute; more get 429 with Retry-After.
    rate_limit_per_minute: int = Field(default=600, ge=1, le=100_000)
    # The largest request body accepted (bytes); larger ones get 413 before they are read.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Items in one POST /api/v1/items:batch.
    batch_max_items: int = Field(default=500, ge=1, le=500)
    # GET /api/v1/items: items per page (default and most).
    page_size: int = Field(default=50, ge=1, le=500)


class DatabaseSection(_Model):
    url: str = "sqlite+aiosqlite:///var/dutybot.db"

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        return check_database_url(value)


class UnitConfig(_Model):
    id: Ident
    name: str = Field(min_length=1)
    parent: str | None = None
    kind: UnitKind
    keywords: list[str] = []
    aliases: list[str] = []


class RoleAssignment(_Model):
    role: Role
    unit: str | None = None


class PersonConfig(_Model):
    id: Ident
    name: str = Field(min_length=1)
    mobile: str | None = None
    wecom_userid: str | None = None
    dingtalk_userid: str | None = None
    roles: list[RoleAssignment] = []
    # AB角: the person's named stand-in (a person id), @-mentioned instead while this person is on leave.
    deputy: str | None = None

    @field_validator("mobile")
    @classmethod
    def _mainland_mobile(cls, value: str | None) -> str | None:
        if value is not None and not MOBILE_RE.match(value):
            raise ValueError(f"“{value}”不是大陆手机号（应为 11 位数字，以 1 开头）")
        return value


EnvName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,99}$")]


class ChatConfig(_Model):
    id: Ident
    platform: Platform
    name: str = Field(min_length=1)
    unit: str | None = None
    coordinators: bool = False
    admins: bool = False
    platform_chat_id: str | None = None
    # Name of the environment variable holding this chat's own robot webhook URL; when unset the
    # chat uses its channel's webhook_env (each group robot has its own URL).
    webhook_env: EnvName | None = None
    # DingTalk only: the variable holding this chat's own robot's 加签 secret (each custom robot
    # has its own SEC… secret); when unset the channel's secret_env is used.
    secret_env: EnvName | None = None
    # Stand-in for the roster: who is on duty for this chat when no roster says otherwise.
    duty_officers: list[str] = []
    duty_leaders: list[str] = []

    @model_validator(mode="after")
    def _secret_only_on_dingtalk(self) -> ChatConfig:
        # A WeCom group robot's webhook carries its key in the URL and takes no signing secret:
        # a secret_env there would be silently ignored, so say so instead.
        if self.secret_env is not None and self.platform is not Platform.DINGTALK:
            raise ValueError("secret_env 仅适用于钉钉群（企业微信群机器人的 webhook 不需要加签密钥），请删除此项")
        return self



class WecomChannelConfig(_Model):
    """WeCom: the AI bot (智能机器人, API mode) receives; the group robot webhook sends."""

    id: Ident
    platform: Literal["wecom"]
    chats: list[str] = Field(min_length=1)
    token_env: EnvName = "DUTYBOT_WECOM_TOKEN"
    aes_key_env: EnvName = "DUTYBOT_WECOM_AES_KEY"
    webhook_env: EnvName = "DUTYBOT_WECOM_WEBHOOK"
    # The receive id checked after decryption: empty for the AI bot, the CorpID for a self-built app.
    receive_id: str = ""
    # Markdown (with <@userid>) or plain text (with mentioned_list) for webhook posts.
    message_format: Literal["text", "markdown"] = "text"


class DingtalkChannelConfig(_Model):
    """DingTalk: the enterprise-internal app robot receives; the custom robot (加签) sends."""

    id: Ident
    platform: Literal["dingtalk"]
    chats: list[str] = Field(min_length=1)
    mode: Literal["http", "stream"] = "http"
    app_key_env: EnvName = "DUTYBOT_DINGTALK_APP_KEY"  # Stream mode only (clientId)
    # The app's robot (robotCode, by default the app key when one is set) and organisation
    # (chatbotCorpId). A callback's signature covers only its timestamp: a message naming another
    # robot or organisation is refused, whatever its signature.
    robot_code: str | None = Field(default=None, min_length=1, max_length=128)
    corp_id: str | None = Field(default=None, min_length=1, max_length=128)
    app_secret_env: EnvName = "DUTYBOT_DINGTALK_APP_SECRET"
    webhook_env: EnvName = "DUTYBOT_DINGTALK_WEBHOOK"
    secret_env: EnvName = "DUTYBOT_DINGTALK_SECRET"
    # DingTalk itself allows an hour; a shorter window narrows replay of a captured signature.
    max_skew_seconds: int = Field(default=300, ge=5, le=3600)
    message_format: Literal["text", "markdown"] = "text"


ChannelConfig = Annotated[WecomChannelConfig | DingtalkChannelConfig, Field(discriminator="platform")]


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


class Config(_Model):
    timezone: str = "Asia/Shanghai"
    bot: BotSection = BotSection()
    server: ServerSection = ServerSection()
    database: DatabaseSection = DatabaseSection()
    delivery: DeliverySection = DeliverySection()
    spool: SpoolSection = SpoolSection()
    api: ApiSection = ApiSection()
    units: list[UnitConfig] = Field(min_length=1)
    people: list[PersonConfig] = Field(min_length=1)
    chats: list[ChatConfig] = Field(min_length=1)
    channels: list[ChannelConfig] = []
    policy: PolicySection = PolicySection()
    roster: RosterSection = RosterSection()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"未知的时区“{value}”（请用 IANA 时区名，例如 Asia/Shanghai）") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def with_database(self, url: str) -> Config:
        return self.model_copy(update={"database": DatabaseSection(url=url)})


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def parse_config(data: dict[str, Any]) -> tuple[Config | None, list[Problem]]:
    """Validate a decoded TOML document; returns the config (if valid) and every problem found:
    type errors and cross-references together, in one pass."""
    references = reference_problems(data, PolicySection().model_dump(mode="json"))
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        structural = pydantic_problems(exc, data)
        reported = {p.path for p in structural}
        return None, structural + [p for p in references if p.path not in reported]
    return config, references


def read_config(path: Path) -> tuple[Config | None, list[Problem]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(str(path), f"无法读取文件（{exc.strerror}）")]
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, [Problem(str(path), "不是 UTF-8 编码的文本，请用 UTF-8 保存")]
    except tomllib.TOMLDecodeError as exc:
        return None, [Problem(str(path), toml_syntax_message(exc))]
    return parse_config(data)


def load_config(path: Path) -> Config:
    """Load and validate, raising ConfigError on any error (warnings are allowed)."""
    config, problems = read_config(path)
    errors = [p for p in problems if not p.warning]
    if config is None or errors:
        raise ConfigError(errors or problems)
    return config
