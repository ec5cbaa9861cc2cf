"""The intake API's payloads, validated by pydantic (the OpenAPI document comes from them too)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from handlers.parsing import find_urls

GradeWord = Literal["重大", "较大", "一般"]


class ItemIn(BaseModel):
    """One item as a source system sends it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    source_system: str = Field(min_length=1, max_length=64, description="来源系统名称，须与令牌的来源系统一致")
    external_id: str | None = Field(default=None, min_length=1, max_length=256,
                                    description="来源系统中的记录编号；同一来源系统、同一编号重复推送时返回已有线索")
    url: str | None = Field(default=None, max_length=2000, description="原帖链接（http/https）")
    title: str = Field(default="", max_length=200, description="标题")
    summary: str = Field(default="", max_length=4000, description="摘要或正文")
    published_at: datetime | None = Field(default=None, description="原帖发布时间（ISO 8601，须带时区）")
    platform: str | None = Field(default=None, min_length=1, max_length=32, description="发布平台，如 微博、抖音")
    suggested_grade: GradeWord | None = Field(
        default=None, description="来源系统建议的等级（仅供参考，定级仍由值班人员研判）")
    unit_hint: str | None = Field(default=None, min_length=1, max_length=64,
                                  description="建议牵头单位：单位编号、全称或简称")
    classified: bool = Field(default=False, description="是否涉密")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        found = find_urls(value)
        if not found or found[0] != value:
            raise ValueError("须为完整的 http 或 https 链接")
        return value

    @field_validator("published_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("须带时区，例如 2026-11-23T10:00:00+08:00")
        return value

    @model_validator(mode="after")
    def _something_to_report(self) -> ItemIn:
        if not self.title and not self.summary:
            raise ValueError("标题和摘要不能都为空")
        return self


class Deadline(BaseModel):
    due_at: datetime
    remaining_seconds: int | None = Field(description="距时限的秒数；已超时为负数；计时已停止时为 null")
    stopped_at: datetime | None = Field(description="计时停止的时间（已定级、已签收、已回应）")


class Unit(BaseModel):
    id: str
    name: str


class TimelineEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    action_label: str
    detail: str | None


class ItemOut(BaseModel):
    number: int
    status: str
    status_label: str
    grade: GradeWord | None
    summary: str
    url: str | None
    source: str
    category: str
    classified: bool
    lead_unit: Unit | None
    units: list[Unit]
    chat: str
    reported_at: datetime
    reported_by: str
    deadlines: dict[str, Deadline]
    duplicate: bool | None = None
    timeline: list[TimelineEntry] | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody
