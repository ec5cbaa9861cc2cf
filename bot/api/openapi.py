"""The OpenAPI 3.1 document of the intake API, built from the same pydantic models that validate
the requests and shape the answers (pydantic emits JSON Schema 2020-12, OpenAPI 3.1's dialect),
so the document cannot drift from what the code accepts. The deployment's limits (body size,
batch size, page size, rate) are written in, since they decide some of the answers."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from bot.api.models import STATUS_CODES, BatchIn, BatchOut, ErrorOut, ItemIn, ItemOut, ItemPage
from domain.config import ApiSection
from domain.vocab import Grade, ItemStatus, Scope

TITLE = "舆情值班助手接收接口"
PACKAGE = "dutybot"
PREFIX = "/api/v1"
SCHEME = "bearer"
REF = "#/components/schemas/{model}"
JSON = "application/json"
# The largest item number the store can hold (BIGINT): a larger one names no item.
MAX_NUMBER = 2**63 - 1
MODELS: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
    (ItemIn, "validation"), (BatchIn, "validation"),
    (ItemOut, "serialization"), (BatchOut, "serialization"), (ItemPage, "serialization"), (ErrorOut, "serialization"),
)

DESCRIPTION = """舆情监测系统、12345 热线平台等来源系统向值班群提交线索、查询线索处置情况的接口。

- 每个请求须带接口令牌：`Authorization: Bearer <令牌>`（令牌用 `dutybot api token create` 生成），本文档也不例外。
- 请求体和应答均为 JSON（UTF-8）；出错时应答为 `{"error": {"code", "message", "field"}}`，
  `field` 为出错字段的 JSON 路径。
- 同一来源系统、同一 `external_id`（或同一原帖链接）重复提交不会产生新线索，返回已有线索（200）。
- 每个令牌每分钟至多 {rate} 次请求，超出返回 429 并在 Retry-After 中给出等待秒数。
- 数据库暂时无法访问时返回 503：应答 503 的提交未被接收，请按 Retry-After 重试。"""

# Why each refusal happens, in the words a caller reads.
ERRORS = {
    "400": "请求体不是有效的 JSON",
    "401": "未带令牌，或令牌无效、已吊销",
    "403": "令牌没有此操作所需的权限",
    "404": "未找到该编号的线索",
    "413": "请求体超过 {body} 字节，或一次提交超过 {batch} 条",
    "415": "请求体不是 application/json",
    "422": "字段无效：field 指出出错的字段",
    "429": "请求过于频繁（每个令牌每分钟至多 {rate} 次）",
    "503": "数据库暂时无法访问，或尚未配置值班群；请求未被接受",
}

# The header each refusal carries, and whether always (a 503 for a missing duty chat has no Retry-After:
# waiting does not configure one).
ERROR_HEADERS = {"401": ("WWW-Authenticate", True), "429": ("Retry-After", True), "503": ("Retry-After", False)}


def package_version() -> str:
    """The installed package's version (a checkout run without installing has none to tell)."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def document(api: ApiSection) -> dict[str, Any]:
    """The whole document for a deployment with these limits."""
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": package_version(),
                 "description": DESCRIPTION.replace("{rate}", str(api.rate_limit_per_minute))},
        "servers": [{"url": "/"}],
        "security": [{SCHEME: []}],
        "paths": _paths(api),
        "components": {
            "schemas": _schemas(api),
            "securitySchemes": {SCHEME: {"type": "http", "scheme": "bearer",
                                         "description": "接口令牌，用 dutybot api token create 生成"}},
            "responses": _error_responses(api),
            "headers": _headers(),
        },
    }


def _schemas(api: ApiSection) -> dict[str, Any]:
    _, top = models_json_schema(MODELS, ref_template=REF)
    schemas: dict[str, Any] = top["$defs"]
    schemas["BatchIn"]["properties"]["items"]["maxItems"] = api.batch_max_items
    schemas["ItemPage"]["properties"]["items"]["maxItems"] = api.page_size
    return schemas


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _headers() -> dict[str, Any]:
    return {
        "Location": {"description": "该线索的地址，如 /api/v1/items/1", "required": True,
                     "schema": {"type": "string", "pattern": f"^{PREFIX}/items/[1-9][0-9]*$"}},
        "Retry-After": {"description": "建议等待的秒数", "schema": {"type": "string", "pattern": "^[0-9]+$"}},
        "WWW-Authenticate": {"description": "认证方式", "schema": {"type": "string"}},
    }


def _error_responses(api: ApiSection) -> dict[str, Any]:
    words = {"{body}": str(api.max_body_bytes), "{batch}": str(api.batch_max_items),
             "{rate}": str(api.rate_limit_per_minute)}
    responses: dict[str, Any] = {}
    for status, text in ERRORS.items():
        for key, value in words.items():
            text = text.replace(key, value)
        response: dict[str, Any] = {"description": text, "content": {JSON: {"schema": _ref(ErrorOut)}}}
        if status in ERROR_HEADERS:
            header, required = ERROR_HEADERS[status]
            response["headers"] = {header: {**_headers()[header], "required": required}}
        responses[f"E{status}"] = response
    return responses


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}


def _security(scope: Scope | None) -> list[dict[str, list[str]]]:
    # OpenAPI 3.1 lets a bearer requirement name the roles it needs: the token's scope.
    return [{SCHEME: [scope.value] if scope else []}]


def _needs(scope: Scope | None) -> str:
    return f"需要令牌权限 {scope.value}。" if scope else "任何有效令牌均可（不需要特定权限）。"


def _json(schema: dict[str, Any], description: str, headers: tuple[str, ...] = ()) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    return response


def _body(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"required": True, "description": description, "content": {JSON: {"schema": _ref(model)}}}


def _paths(api: ApiSection) -> dict[str, Any]:
    writing = _errors(400, 401, 403, 413, 415, 422, 429, 503)
    return {
        f"{PREFIX}/items": {
            "post": {
                "operationId": "createItem", "tags": ["线索"], "summary": "提交一条线索",
                "description": _needs(Scope.ITEMS_WRITE) + "新线索在其单位的值班群中受理并发出定级提问，"
                               "与群内“上报”相同。同一记录再次提交返回已有线索（200，duplicate 为 true）。",
                "security": _security(Scope.ITEMS_WRITE),
                "requestBody": _body(ItemIn, "线索"),
                "responses": {
                    "201": _json(_ref(ItemOut), "已受理：新建的线索", ("Location",)),
                    "200": _json(_ref(ItemOut), "此前已提交过：返回已有线索（duplicate 为 true）", ("Location",)),
                    **writing,
                },
            },
            "get": {
                "operationId": "listItems", "tags": ["线索"], "summary": "查询线索列表",
                "description": _needs(Scope.ITEMS_READ) + f"按编号从大到小分页，每页至多 {api.page_size} 条；"
                               "翻页时新提交的线索不会使后续页面重复或遗漏。涉密线索仅在令牌有 classified:read 权限时"
                               "显示链接和详情。",
                "security": _security(Scope.ITEMS_READ),
                "parameters": _list_parameters(),
                "responses": {"200": _json(_ref(ItemPage), "一页线索"), **_errors(401, 403, 422, 429, 503)},
            },
        },
        f"{PREFIX}/items:batch": {
            "post": {
                "operationId": "createItems", "tags": ["线索"], "summary": "批量提交线索",
                "description": _needs(Scope.ITEMS_WRITE) + f"一次至多 {api.batch_max_items} 条，在同一事务中处理："
                               "每条单独给出结果（201 新建、200 已有、422 无效），数据库无法写入时全部不接收（503）。",
                "security": _security(Scope.ITEMS_WRITE),
                "requestBody": _body(BatchIn, "线索列表"),
                "responses": {"200": _json(_ref(BatchOut), "每条的结果"), **writing},
            },
        },
        f"{PREFIX}/items/{{number}}": {
            "get": {
                "operationId": "getItem", "tags": ["线索"], "summary": "查询一条线索及其处置记录",
                "description": _needs(Scope.ITEMS_READ) + "涉密线索仅在令牌有 classified:read 权限时"
                               "显示链接和处置详情。",
                "security": _security(Scope.ITEMS_READ),
                "parameters": [{"name": "number", "in": "path", "required": True, "description": "线索编号",
                                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_NUMBER}}],
                "responses": {"200": _json(_ref(ItemOut), "线索及其处置记录（timeline）"),
                              **_errors(401, 403, 404, 429, 503)},
            },
        },
        f"{PREFIX}/openapi.json": {
            "get": {
                "operationId": "getOpenapi", "tags": ["文档"], "summary": "本接口文档（OpenAPI 3.1）",
                "description": _needs(None), "security": _security(None),
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 文档"), **_errors(401, 429, 503)},
            },
        },
    }


def _list_parameters() -> list[dict[str, Any]]:
    statuses = [*STATUS_CODES, *(s.value for s in ItemStatus)]
    # A filter left empty (?grade=) filters nothing, as a form with a blank field means.
    return [{"in": "query", "allowEmptyValue": True, **parameter} for parameter in (
        {"name": "status", "style": "form", "explode": False,
         "description": "按状态筛选，多个用逗号分隔，如 reported,graded（也可写中文状态名，如 待定级）",
         "schema": {"type": "array", "items": {"type": "string", "enum": statuses}}},
        {"name": "grade", "description": "按等级筛选", "schema": {"type": "string", "enum": [g.value for g in Grade]}},
        {"name": "unit", "description": "按承办单位筛选（牵头或协办）：单位编号、全称或简称",
         "schema": {"type": "string", "minLength": 1}},
        {"name": "since", "description": "只列出此时间及以后上报的（ISO 8601；不带时区时按本地时区）",
         "schema": {"type": "string", "format": "date-time"}},
        {"name": "cursor", "description": "翻页：上一页返回的 next_cursor",
         "schema": {"type": "string", "minLength": 1}},
    )]
