"""/api/v1/items: report items from a source system, read them back.

Order of checks on every request: the token (401), its scope (403), its rate (429), the body's
size (413), its JSON (400/415), its fields (422) — then one transaction runs the operation
(handlers/ops/intake.py). A database that cannot be written answers 503: nothing is
acknowledged that is not kept.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.api.auth import Caller, RateLimiter, TokenChecks, caller_of
from bot.api.coalesce import Coalescer
from bot.api.errors import ApiError, dumps, error_response, invalid, json_response
from bot.api.models import (
    BatchIn,
    BatchOut,
    BatchResult,
    ErrorBody,
    ItemIn,
    ItemPage,
)
from bot.api.openapi import MAX_NUMBER, document
from bot.api.render import item_out, item_view
from bot.runtime import RUNTIME, Runtime
from domain.vocab import Grade, ItemStatus, Scope
from handlers.ops.base import Actor, ActorKind, Work
from handlers.ops.intake import Intake, NoChat, take_many, units_of_taken
from store import items as item_store
from store.db import database_unavailable

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
NOT_FOUND = "未找到编号为 {n} 的线索。"
BAD_JSON = "请求体不是有效的 JSON。"
NOT_JSON = "请求体须为 JSON（Content-Type: application/json）。"
TOO_LARGE = "请求体过大：至多 {limit} 字节。"
WRONG_SOURCE = "与令牌的来源系统“{source}”不一致。"
UNKNOWN_UNIT = "未找到单位“{name}”，请写配置中的单位编号、全称或简称。"
UNAVAILABLE = "数据库暂时无法写入，本次请求未被接受，请稍后重试。"
UNREADABLE = "数据库暂时无法访问，请稍后重试。"
NO_CHAT = "尚未配置任何值班群，无法接收线索。"
BAD_CURSOR = "cursor 无效：请使用上一页返回的 next_cursor。"
BAD_FILTER = "取值无效：{value}"
BATCH_SHAPE = "请求体须为 {\"items\": [ … ]}，且至少含一条。"
BATCH_TOO_MANY = "一次至多提交 {limit} 条。"
UNKNOWN_FIELD = "不认识的字段（请对照接口文档 /api/v1/openapi.json）"
CLIENT_CLOSED = "客户端在请求发送完之前断开了连接。"
INTERNAL = "服务内部错误，请稍后重试；如持续出现请联系管理员。"
STATUS_CODES = {status.name.lower(): status for status in ItemStatus}
LIMITER = web.AppKey("api_limiter", RateLimiter)
TOKEN_CHECKS = web.AppKey("api_token_checks", TokenChecks)
COALESCER = web.AppKey("api_coalescer", Coalescer)
# The OpenAPI document, rendered once: it depends only on the configuration.
OPENAPI = web.AppKey("api_openapi", str)
# ItemOut's optional parts each answer leaves out: only POST says `duplicate`, only GET {number} the timeline.
POSTED = {"timeline"}
LISTED = {"duplicate", "timeline"}


def setup(app: web.Application, runtime: Runtime) -> None:
    app[LIMITER] = RateLimiter(runtime.config.api.rate_limit_per_minute)
    app[TOKEN_CHECKS] = TokenChecks(runtime.db)
    app[OPENAPI] = dumps(document(runtime.config.api))
    app[COALESCER] = Coalescer(lambda: _work(runtime))
    app.router.add_post(f"{PREFIX}/items", create_item)
    app.router.add_post(f"{PREFIX}/items:batch", create_batch)
    app.router.add_get(f"{PREFIX}/items", list_items)
    app.router.add_get(f"{PREFIX}/items/{{number}}", get_item)
    app.router.add_get(f"{PREFIX}/openapi.json", openapi_json)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer under /api/v1 is JSON, failures included (never a traceback, never HTML)."""
    if not request.path.startswith(PREFIX + "/"):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError as error:
        return error.response()
    except web.HTTPException as http:
        if http.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(http.status, "http_error")
        return error_response(http.status, code, http.reason)
    except ConnectionResetError:
        # The client hung up mid-request (a timeout of its own): nothing to answer, nothing kept.
        log.info("intake API: the client closed the connection before the request was read")
        return error_response(400, "client_closed", CLIENT_CLOSED)
    except Exception:
        log.exception("intake API request failed")
        return error_response(500, "internal", INTERNAL)


# -- requests ---------------------------------------------------------------------------------------


async def _caller(request: web.Request, scope: Scope | None) -> tuple[Runtime, Caller]:
    runtime = request.app[RUNTIME]
    async with _unavailable_is_503(UNREADABLE):  # the token is checked (and marked used) in the database
        caller = await caller_of(request, request.app[TOKEN_CHECKS], runtime.db, runtime.clock.now())
    if scope is not None:
        caller.require(scope)
    request.app[LIMITER].check(caller.token_id)
    return runtime, caller


@asynccontextmanager
async def _unavailable_is_503(message: str) -> AsyncIterator[None]:
    """A database that cannot answer now is 503 with Retry-After (fail closed, and say when to come
    back); any other failure stays a 500: it is a bug, logged as one."""
    try:
        yield
    except ApiError:
        raise
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        log.warning("intake API: database unavailable: %s", type(exc).__name__)
        raise ApiError(503, "unavailable", message, headers={"Retry-After": "5"}) from exc


async def openapi_json(request: web.Request) -> web.StreamResponse:
    """The document is no door, but the API answers only token holders: any valid token reads it."""
    await _caller(request, None)
    return web.Response(text=request.app[OPENAPI], content_type="application/json")


async def json_body(request: web.Request, limit: int) -> Any:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", TOO_LARGE.format(limit=limit))
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", NOT_JSON)
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", TOO_LARGE.format(limit=limit))
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", BAD_JSON) from exc


def _actor(caller: Caller) -> Actor:
    # The source system is the reporter of record and the actor of its audit rows.
    return Actor(caller.source, caller.source, ActorKind.API)


def _intake(runtime: Runtime, caller: Caller, body: ItemIn) -> Intake:
    if body.source_system != caller.source:
        raise ApiError(422, "invalid", WRONG_SOURCE.format(source=caller.source), "source_system")
    unit_id = None
    if body.unit_hint:
        unit = runtime.directory.find_unit(body.unit_hint)
        if unit is None:
            raise ApiError(422, "invalid", UNKNOWN_UNIT.format(name=body.unit_hint), "unit_hint")
        unit_id = unit.id
    return Intake(body.source_system, body.external_id, body.url, body.title, body.summary, body.platform,
                  body.suggested_grade, unit_id, body.classified)


async def create_item(request: web.Request) -> web.StreamResponse:
    runtime, caller = await _caller(request, Scope.ITEMS_WRITE)
    raw = await json_body(request, runtime.config.api.max_body_bytes)
    try:
        body = ItemIn.model_validate(raw)
    except ValidationError as error:
        raise invalid(error) from error
    data = _intake(runtime, caller, body)
    try:
        took = await request.app[COALESCER].take(_actor(caller), data)
    except NoChat as exc:
        raise ApiError(503, "no_chat", NO_CHAT) from exc
    except Exception as exc:  # the database: nothing was kept, so nothing is acknowledged
        log.warning("intake API: item not kept: %s", type(exc).__name__)
        raise ApiError(503, "unavailable", UNAVAILABLE, headers={"Retry-After": "5"}) from exc
    taken = took.taken
    if not taken.duplicate:
        # The acceptance and grade question go out now, not at the next tick; at most one drain
        # per KICK_GAP_SECONDS (a push of creates would otherwise start a claim per group commit).
        runtime.outbox.kick_soon()
    out = item_view(runtime, taken.item, caller, took.units, duplicate=taken.duplicate)
    location = f"{PREFIX}/items/{taken.item.number}"
    return json_response(out.model_dump(mode="json", exclude=POSTED), status=200 if taken.duplicate else 201,
                         headers={"Location": location})


@asynccontextmanager
async def _work(runtime: Runtime) -> AsyncIterator[Work]:
    """One unit of work for the intake: a transaction and the runtime's clock."""
    async with runtime.db.transaction() as session:
        yield Work(session, runtime.config, runtime.directory, runtime.duty, runtime.clock.now())


async def create_batch(request: web.Request) -> web.StreamResponse:
    """Up to [api] batch_max_items items, each with its own result (201 new, 200 duplicate, 422
    invalid), in one transaction: a database failure keeps none of them and answers 503."""
    runtime, caller = await _caller(request, Scope.ITEMS_WRITE)
    raw = await json_body(request, runtime.config.api.max_body_bytes)
    entries = raw.get("items") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ApiError(422, "invalid", BATCH_SHAPE, "items")
    unknown = sorted(set(raw) - set(BatchIn.model_fields))
    if unknown:
        raise ApiError(422, "invalid", UNKNOWN_FIELD, unknown[0])
    limit = runtime.config.api.batch_max_items
    if len(entries) > limit:
        raise ApiError(413, "payload_too_large", BATCH_TOO_MANY.format(limit=limit), "items")
    checked: list[Intake | ApiError] = [_checked(runtime, caller, entry, index) for index, entry in enumerate(entries)]
    try:
        async with runtime.db.transaction() as session:
            work = Work(session, runtime.config, runtime.directory, runtime.duty, runtime.clock.now())
            results = await _batch_results(session, runtime, work, caller, checked)
    except NoChat as exc:
        raise ApiError(503, "no_chat", NO_CHAT) from exc
    except Exception as exc:
        log.warning("intake API: batch not kept: %s", type(exc).__name__)
        raise ApiError(503, "unavailable", UNAVAILABLE, headers={"Retry-After": "5"}) from exc
    if any(r.status == 201 for r in results):
        runtime.outbox.kick_soon()
    out = BatchOut(results=results, created=_counted(results, 201), duplicates=_counted(results, 200),
                   failed=_counted(results, 422))
    return json_response(out.model_dump(mode="json", exclude={"results": {"__all__": {"item": POSTED}}}))


def _counted(results: list[BatchResult], status: int) -> int:
    return sum(1 for r in results if r.status == status)


def _checked(runtime: Runtime, caller: Caller, entry: Any, index: int) -> Intake | ApiError:
    try:
        return _intake(runtime, caller, ItemIn.model_validate(entry))
    except ValidationError as error:
        return invalid(error, prefix=f"items[{index}]")
    except ApiError as error:
        field = f"items[{index}]" + (f".{error.field}" if error.field else "")
        return ApiError(error.status, error.code, error.message, field)


async def _batch_results(session: AsyncSession, runtime: Runtime, work: Work, caller: Caller,
                         checked: list[Intake | ApiError]) -> list[BatchResult]:
    """The valid entries are taken together (one statement per kind of row, not per item); each
    entry gets its own result in the order given."""
    valid = [data for data in checked if not isinstance(data, ApiError)]
    taken = iter(await take_many(work, _actor(caller), valid))
    outcomes = [data if isinstance(data, ApiError) else next(taken) for data in checked]
    units = await units_of_taken(work, [t for t in outcomes if not isinstance(t, ApiError)])
    results: list[BatchResult] = []
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, ApiError):
            error = ErrorBody(code=outcome.code, message=outcome.message, field=outcome.field)
            results.append(BatchResult(index=index, status=422, item=None, error=error))
            continue
        out = await item_out(session, runtime, outcome.item, caller, duplicate=outcome.duplicate,
                             units=units.get(outcome.item.id, []))
        results.append(BatchResult(index=index, status=200 if outcome.duplicate else 201, item=out, error=None))
    return results


async def get_item(request: web.Request) -> web.StreamResponse:
    runtime, caller = await _caller(request, Scope.ITEMS_READ)
    number = _number(request.match_info["number"])
    async with _unavailable_is_503(UNREADABLE), runtime.db.read() as session:
        item = await item_store.by_number(session, number)
        if item is None:
            raise ApiError(404, "not_found", NOT_FOUND.format(n=number))
        out = await item_out(session, runtime, item, caller, timeline=True)
    return json_response(out.model_dump(mode="json", exclude={"duplicate"}))


def _number(text: str) -> int:
    """ASCII digits only ("²".isdigit() is true, int("²") fails); a number past what the store can
    hold names no item either (the database would refuse the query)."""
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_NUMBER:
        raise ApiError(404, "not_found", NOT_FOUND.format(n=text))
    return int(text)


@dataclass(frozen=True)
class Filters:
    statuses: tuple[str, ...]
    grade: str | None
    unit: str | None
    since: datetime | None
    before: int | None


def _filters(request: web.Request, runtime: Runtime) -> Filters:
    query = request.query
    statuses: list[str] = []
    for word in filter(None, query.get("status", "").split(",")):
        word = word.strip()
        status = STATUS_CODES.get(word.lower()) or next((s for s in ItemStatus if s.value == word), None)
        if status is None:
            raise ApiError(422, "invalid", BAD_FILTER.format(value=word), "status")
        statuses.append(status.value)
    grade = query.get("grade") or None
    if grade is not None and grade not in {g.value for g in Grade}:
        raise ApiError(422, "invalid", BAD_FILTER.format(value=grade), "grade")
    unit = None
    if query.get("unit"):
        found = runtime.directory.find_unit(query["unit"])
        if found is None:
            raise ApiError(422, "invalid", UNKNOWN_UNIT.format(name=query["unit"]), "unit")
        unit = found.id
    since = None
    if query.get("since"):
        try:
            since = datetime.fromisoformat(query["since"])
        except ValueError as exc:
            raise ApiError(422, "invalid", BAD_FILTER.format(value=query["since"]), "since") from exc
        if since.tzinfo is None:
            since = since.replace(tzinfo=runtime.config.tz)
        try:
            since.astimezone(UTC)  # the store compares in UTC: 0001-01-01T00:00+08:00 has no UTC time
        except OverflowError as exc:
            raise ApiError(422, "invalid", BAD_FILTER.format(value=query["since"]), "since") from exc
    return Filters(tuple(statuses), grade, unit, since, _cursor(query.get("cursor")))


def _cursor(text: str | None) -> int | None:
    """The cursor is the number below which the next page starts, opaque to clients."""
    if not text:
        return None
    try:
        value = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        kind, _, number = value.partition(":")
        if kind != "n" or not (number.isascii() and number.isdigit()) or not 0 < int(number) <= MAX_NUMBER:
            raise ValueError(value)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(422, "invalid", BAD_CURSOR, "cursor") from exc


def _next_cursor(number: int) -> str:
    return base64.urlsafe_b64encode(f"n:{number}".encode()).decode().rstrip("=")


async def list_items(request: web.Request) -> web.StreamResponse:
    runtime, caller = await _caller(request, Scope.ITEMS_READ)
    filters = _filters(request, runtime)
    size = runtime.config.api.page_size
    async with _unavailable_is_503(UNREADABLE), runtime.db.read() as session:
        found = await item_store.page(session, statuses=filters.statuses, grade=filters.grade, unit=filters.unit,
                                      since=filters.since, before_number=filters.before, limit=size + 1)
        items = [await item_out(session, runtime, item, caller) for item in found[:size]]
    more = len(found) > size
    page = ItemPage(items=items, next_cursor=_next_cursor(items[-1].number) if more and items else None)
    return json_response(page.model_dump(mode="json", exclude={"items": {"__all__": LISTED}}))
