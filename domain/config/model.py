"""The whole configuration and how it is read: TOML → pydantic v2, plus the cross-reference
checks pydantic cannot express. Every problem is reported with its TOML path, entries named by id,
e.g. ``people[zhao_min].mobile：“110”不是大陆手机号…`` (domain/config/problems.py).

Org structure (units, people, chats, grade policy) lives here; operational data (items, the
roster) lives in the database.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator

from domain.config.base import _Model
from domain.config.org import ChannelConfig, ChatConfig, PersonConfig, UnitConfig
from domain.config.policy import PolicySection, RosterSection
from domain.config.problems import Problem, pydantic_problems, reference_problems, toml_syntax_message
from domain.config.records import RecordsSection
from domain.config.runtime import (
    ApiSection,
    BotSection,
    DatabaseSection,
    DeliverySection,
    ServerSection,
    SpoolSection,
)
from domain.config.webhooks import WebhookSubscriber


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
    records: RecordsSection = RecordsSection()
    webhooks: list[WebhookSubscriber] = []

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
