"""The intake API's payloads, validated by pydantic (the OpenAPI document comes from them too)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.vocab import ItemStatus
from handlers.parsing import find_urls

GradeWord = Literal["重大", "较大", "一般"]
# The API's status codes: ItemStatus by name (the Chinese word is status_label).
STATUS_CODES = tuple(status.name.lower() for status in ItemStatus)
# The clocks an item may carry, by the names ItemOut.deadlines uses.
DEADLINE_NAMES = ("grade", "pass_on", "response")


class ItemIn(BaseModel):
    """One item as a source system sends it."""

    # The schema states the one rule across fields too: a title or a summary (not blank) is required.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"anyOf": [
        {"required": ["title"], "properties": {"title": {"pattern": "\\S"}}},
        {"required": ["summary"], "properties": {"summary": {"pattern": "\\S"}}},
    ]})

    source_system: str = Field(min_length=1, max_length=64, description="来源系统名称，须与令牌的来源系统一致")
    external_id: str | None = Field(default=None, min_length=1, max_length=256,
                                    description="来源系统中的记录编号；同一来源系统、同一编号重复推送时返回已有线索")
    url: str | None = Field(default=None, max_length=2000, description="原帖链接（http/https）",
                            json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})
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
    due_at: datetime = Field(description="时限")
    remaining_seconds: int | None = Field(description="距时限的秒数；已超时为负数；计时已停止时为 null")
    stopped_at: datetime | None = Field(description="计时停止的时间（已定级、已签收、已回应）")


class Unit(BaseModel):
    id: str = Field(description="单位编号")
    name: str = Field(description="单位全称")


class TimelineEntry(BaseModel):
    at: datetime
    actor: str = Field(description="操作人或来源系统")
    action: str = Field(description="操作代码，如 reported、graded")
    action_label: str = Field(description="操作名称，如 上报、定级")
    detail: str | None = Field(description="操作内容；涉密线索且令牌无 classified:read 权限时为 null")


class ItemOut(BaseModel):
    number: int = Field(ge=1, description="线索编号（群内的 #编号）")
    status: str = Field(description="状态代码", json_schema_extra={"enum": list(STATUS_CODES)})
    status_label: str = Field(description="状态名称", json_schema_extra={"enum": [s.value for s in ItemStatus]})
    grade: GradeWord | None = Field(description="等级；尚未定级时为 null")
    summary: str = Field(description="摘要；涉密线索且令牌无 classified:read 权限时为经授权的概述")
    url: str | None = Field(description="原帖链接；涉密线索且令牌无 classified:read 权限时为 null")
    source: str = Field(description="来源平台")
    category: str = Field(description="类别")
    classified: bool = Field(description="是否涉密")
    lead_unit: Unit | None = Field(description="牵头单位；尚未确定时为 null")
    units: list[Unit] = Field(description="承办单位（牵头单位及协办单位）")
    chat: str = Field(description="所在值班群")
    reported_at: datetime = Field(description="上报时间")
    reported_by: str = Field(description="上报人或来源系统")
    deadlines: dict[str, Deadline] = Field(
        description="各项时限：grade 定级、pass_on 签收、response 回应；尚无此项时限时不出现",
        json_schema_extra={"propertyNames": {"enum": list(DEADLINE_NAMES)}})
    duplicate: bool | None = Field(
        default=None, description="仅出现在提交的应答中：true 表示该记录此前已提交过，返回的是已有线索")
    timeline: list[TimelineEntry] | None = Field(
        default=None, description="仅出现在 GET /api/v1/items/{number} 的应答中：处置记录，按时间先后")


class ErrorBody(BaseModel):
    code: str = Field(description="错误代码，如 invalid、unauthorized、rate_limited")
    message: str = Field(description="错误说明（中文）")
    field: str | None = Field(default=None, description="出错字段的 JSON 路径，如 items[2].url；针对整个请求时为 null")


class ErrorOut(BaseModel):
    error: ErrorBody


class BatchIn(BaseModel):
    """POST /api/v1/items:batch: the items are checked one by one (each gets its own result), so
    the handler validates each with ItemIn; this model states the request's shape."""

    model_config = ConfigDict(extra="forbid")

    items: list[ItemIn] = Field(min_length=1, description="待提交的线索；每条单独校验、单独给出结果")


class BatchResult(BaseModel):
    index: int = Field(ge=0, description="该条在请求 items 中的位置（从 0 起）")
    status: Literal[200, 201, 422] = Field(
        description="201 新建；200 此前已提交过（返回已有线索）；422 该条无效，未接收")
    item: ItemOut | None = Field(description="线索；该条无效时为 null")
    error: ErrorBody | None = Field(description="该条无效的原因；否则为 null")


class BatchOut(BaseModel):
    results: list[BatchResult] = Field(description="每条的结果，顺序与请求一致")
    created: int = Field(ge=0, description="新建条数")
    duplicates: int = Field(ge=0, description="此前已提交过的条数")
    failed: int = Field(ge=0, description="无效条数")


class ItemPage(BaseModel):
    items: list[ItemOut] = Field(description="本页线索，编号从大到小（最新的在前）")
    next_cursor: str | None = Field(description="下一页的 cursor 参数；已是最后一页时为 null")
