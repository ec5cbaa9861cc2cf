"""The intake API's errors: always JSON {"error": {"code", "message", "field"}}, the message in
Chinese, `field` the JSON path of the offending value (None when the request as a whole is wrong)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from domain.config.problems import translate

_API_WORDS = {
    "missing": "缺少此项",
    "extra_forbidden": "不认识的字段（请对照接口文档 /api/v1/openapi.json）",
    "datetime_type": "须为 ISO 8601 时间，例如 2026-11-23T10:00:00+08:00",
    "datetime_parsing": "须为 ISO 8601 时间，例如 2026-11-23T10:00:00+08:00",
    "datetime_from_date_parsing": "须为 ISO 8601 时间，例如 2026-11-23T10:00:00+08:00",
    "model_type": "须为 JSON 对象",
    "model_attributes_type": "须为 JSON 对象",
}


class ApiError(Exception):
    """An answer other than success, raised anywhere in a request's handling."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}")
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, self.field, self.headers)


def dumps(value: Any) -> str:
    """JSON as UTF-8 text (Chinese as written, not \\u escapes): what people read in logs and curl."""
    return json.dumps(value, ensure_ascii=False)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=dumps)


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    body = {"error": {"code": code, "message": message, "field": field}}
    return json_response(body, status=status, headers=headers)


def json_path(loc: Sequence[int | str], prefix: str = "") -> str | None:
    """("items", 3, "url") → "items[3].url"; () → the prefix alone, or None."""
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or None


def first_problem(error: ValidationError, prefix: str = "") -> tuple[str | None, str]:
    """The JSON path and the Chinese message of a request body's first problem."""
    detail: ErrorDetails = error.errors(include_url=False)[0]
    loc = [p for p in detail["loc"] if p != "[key]"]
    message = _API_WORDS.get(detail["type"]) or translate(detail)
    return json_path(loc, prefix), message


def invalid(error: ValidationError, prefix: str = "") -> ApiError:
    field, message = first_problem(error, prefix)
    return ApiError(422, "invalid", message, field)


def problems(error: ValidationError) -> list[dict[str, Any]]:
    """Every problem of a body, for a batch item's result."""
    found = []
    for detail in error.errors(include_url=False):
        loc = [p for p in detail["loc"] if p != "[key]"]
        found.append({"field": json_path(loc), "message": _API_WORDS.get(detail["type"]) or translate(detail)})
    return found
