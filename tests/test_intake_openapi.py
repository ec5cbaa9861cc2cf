"""The intake API's OpenAPI 3.1 document (issue #15, point 3): served at /api/v1/openapi.json to
token holders, valid OpenAPI 3.1, naming every route the app serves under /api/v1 — and true:
schemathesis generates requests for every operation against the live app and checks that none
is answered with a 5xx, and that every status, content type, header and body is the documented one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import CheckFunction, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.api.items import PREFIX
from bot.clock import ManualClock
from domain.config import Config
from domain.vocab import Scope
from store import db as store_db
from tests.conftest import Bot
from tests.outage_support import database_held
from tests.test_intake_api import FIRE, SOURCE, bot_with, post, token

OPENAPI = f"{PREFIX}/openapi.json"
ALL_SCOPES = tuple(Scope)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, ignored_auth]
NEGATIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 50


async def fetch(bot: Bot, headers: dict[str, str], path: str = OPENAPI) -> tuple[int, Any]:
    response = await bot.client.get(path, headers=headers)
    return response.status, await response.json()


async def the_document(bot: Bot) -> dict[str, Any]:
    status, document = await fetch(bot, await token(bot, Scope.ITEMS_READ))
    assert status == 200
    assert isinstance(document, dict)
    return document


async def test_any_valid_token_reads_the_document_as_utf8_json(bot: Bot) -> None:
    writer = await token(bot, Scope.ITEMS_WRITE)
    response = await bot.client.get(OPENAPI, headers=writer)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    raw = await response.read()
    assert "舆情值班助手接收接口".encode() in raw  # Chinese as written, not \\u escapes
    document = json.loads(raw)
    assert document["openapi"] == "3.1.0" and document["info"]["title"] == "舆情值班助手接收接口"
    assert document["info"]["version"] == "0.1.0"
    assert document["servers"] == [{"url": "/"}]


@pytest.mark.parametrize(("headers", "message"), [
    ({}, "未提供有效的接口令牌：请在请求头写 Authorization: Bearer <令牌>（令牌用 dutybot api token create 生成）。"),
    ({"Authorization": "Bearer dtb_wrong"}, "接口令牌无效或已吊销。"),
])
async def test_without_a_valid_token_the_document_is_401(bot: Bot, headers: dict[str, str], message: str) -> None:
    response = await bot.client.get(OPENAPI, headers=headers)
    assert response.status == 401 and response.headers["WWW-Authenticate"] == 'Bearer realm="dutybot"'
    assert await response.json() == {"error": {"code": "unauthorized", "message": message, "field": None}}


async def test_the_document_is_valid_openapi_3_1(bot: Bot) -> None:
    document = await the_document(bot)
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"bearer": {"type": "http", "scheme": "bearer",
                                  "description": "接口令牌，用 dutybot api token create 生成"}}


async def test_every_route_under_api_v1_is_documented_and_nothing_else(bot: Bot) -> None:
    document = await the_document(bot)
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in bot.client.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith(PREFIX + "/")
        and route.method != "HEAD"  # aiohttp's automatic HEAD of every GET
    }
    documented = {(method, path) for path, operations in document["paths"].items() for method in operations}
    assert served == documented
    assert documented == {("post", "/api/v1/items"), ("get", "/api/v1/items"), ("post", "/api/v1/items:batch"),
                          ("get", "/api/v1/items/{number}"), ("get", "/api/v1/openapi.json")}


async def test_each_operation_names_its_scope_and_every_answer_it_gives(bot: Bot) -> None:
    paths = (await the_document(bot))["paths"]
    expected = {
        ("/api/v1/items", "post"): ("items:write", {"200", "201", "400", "401", "403", "413", "415", "422", "429",
                                                    "503"}),
        ("/api/v1/items:batch", "post"): ("items:write", {"200", "400", "401", "403", "413", "415", "422", "429",
                                                          "503"}),
        ("/api/v1/items", "get"): ("items:read", {"200", "401", "403", "422", "429", "503"}),
        ("/api/v1/items/{number}", "get"): ("items:read", {"200", "401", "403", "404", "429", "503"}),
    }
    for (path, method), (scope, statuses) in expected.items():
        operation = paths[path][method]
        assert operation["security"] == [{"bearer": [scope]}]
        assert operation["description"].startswith(f"需要令牌权限 {scope}。")
        assert set(operation["responses"]) == statuses
    document = paths["/api/v1/openapi.json"]["get"]
    assert document["security"] == [{"bearer": []}]
    assert document["description"] == "任何有效令牌均可（不需要特定权限）。"
    assert set(document["responses"]) == {"200", "401", "429", "503"}
    created = paths["/api/v1/items"]["post"]["responses"]["201"]
    assert created["headers"] == {"Location": {"$ref": "#/components/headers/Location"}}


async def test_the_deployments_limits_are_written_in(config: Config, clock: ManualClock) -> None:
    async with bot_with(config, clock, batch_max_items=20, page_size=10, rate_limit_per_minute=30,
                        max_body_bytes=4096) as bot:
        document = await the_document(bot)
    schemas, responses = document["components"]["schemas"], document["components"]["responses"]
    assert schemas["BatchIn"]["properties"]["items"]["maxItems"] == 20
    assert schemas["ItemPage"]["properties"]["items"]["maxItems"] == 10
    assert responses["E413"]["description"] == "请求体超过 4096 字节，或一次提交超过 20 条"
    assert responses["E429"]["description"] == "请求过于频繁（每个令牌每分钟至多 30 次）"
    listing = document["paths"]["/api/v1/items"]["get"]["description"]
    assert "每页至多 10 条" in listing


# -- behaviour the document promises ---------------------------------------------------------------


@pytest.mark.parametrize("number", ["9223372036854775808", "99999999999999999999999", "²", "0", "-1", "1.5"])
async def test_a_number_that_names_no_item_is_404(bot: Bot, number: str) -> None:
    status, body = await fetch(bot, await token(bot), f"{PREFIX}/items/{number}")
    assert (status, body) == (404, {"error": {"code": "not_found", "message": f"未找到编号为 {number} 的线索。",
                                              "field": None}})


async def test_a_since_without_a_utc_time_is_422(bot: Bot) -> None:
    headers = await token(bot)
    response = await bot.client.get(f"{PREFIX}/items", headers=headers, params={"since": "0001-01-01T00:00:00+08:00"})
    assert response.status == 422
    assert await response.json() == {"error": {"code": "invalid", "message": "取值无效：0001-01-01T00:00:00+08:00",
                                               "field": "since"}}


async def test_a_cursor_past_any_number_is_422(bot: Bot) -> None:
    headers = await token(bot)
    cursor = "bjo5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"  # "n:9999999999999999999999" in base64
    response = await bot.client.get(f"{PREFIX}/items", headers=headers, params={"cursor": cursor})
    assert response.status == 422
    assert await response.json() == {"error": {"code": "invalid", "field": "cursor",
                                               "message": "cursor 无效：请使用上一页返回的 next_cursor。"}}


async def test_an_unknown_field_beside_the_batchs_items_is_422(bot: Bot) -> None:
    status, body = await post(bot, await token(bot), {"items": [FIRE], "colour": "red"}, path=f"{PREFIX}/items:batch")
    assert (status, body) == (422, {"error": {"code": "invalid", "field": "colour",
                                              "message": "不认识的字段（请对照接口文档 /api/v1/openapi.json）"}})


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_database_that_cannot_answer_is_503_with_retry_after(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request checks its token in a write transaction (it marks the token used): with the
    database held by another process, a read is refused as honestly as a write — 503, never a 500.
    SQLite only: there the held write lock covers the whole file; on PostgreSQL the outage helper
    locks the message tables, which a read of items does not touch (and it is answered)."""
    headers = await token(bot)
    monkeypatch.setattr(store_db, "BUSY_WAIT_SECONDS", 0.2)  # the outage is real; the wait for it shortened
    async with database_held(bot):
        for path in (f"{PREFIX}/items", f"{PREFIX}/items/1", OPENAPI):
            response = await bot.client.get(path, headers=headers)
            assert response.status == 503, path
            assert response.headers["Retry-After"] == "5"
            assert await response.json() == {"error": {"code": "unavailable", "field": None,
                                                       "message": "数据库暂时无法访问，请稍后重试。"}}


# -- schemathesis against the live app -------------------------------------------------------------


def as_the_tokens_source(case: schemathesis.Case[Any], adopt: bool) -> schemathesis.Case[Any]:
    """Half the bodies name the token's own source system and a known unit: the API refuses any
    other (422) by a rule of the token the schema cannot state, and only accepted items reach the
    201/200 answers and the items the GET operations then read."""
    bodies = case.body.get("items") if isinstance(case.body, dict) and "items" in case.body else [case.body]
    for body in bodies if adopt and isinstance(bodies, list) else []:
        if isinstance(body, dict):
            body["source_system"] = SOURCE
            body["unit_hint"] = "城关镇"
    return case


def fuzz(document: dict[str, Any], base_url: str, headers: dict[str, str]) -> list[str]:
    """Runs in a thread (schemathesis calls with `requests`, blocking) while the app serves on the
    test's event loop. Returns each failing operation's report. The document is the one served,
    given as a dict: loaded from its URL, schemathesis would leave its own operation untested."""
    schema = schemathesis.openapi.from_dict(document, config=schemathesis.Config())
    failures = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # a part of the document schemathesis cannot read is a fault too
        operation = result.ok()
        for mode, checks in plan(document["paths"][operation.path][operation.method.lower()]):
            failure = attack(operation, mode, checks, base_url, headers)
            if failure is not None:
                failures.append(f"{operation.label} ({mode.value}): {failure}")
    return failures


def plan(operation: dict[str, Any]) -> list[tuple[GenerationMode, list[CheckFunction]]]:
    """Valid requests for every operation; invalid ones where there is something to get wrong.
    A batch answers an invalid item with 200 and that item's own 422 (its documented design),
    so there only the answer's conformance is checked, not that the whole request was refused."""
    modes = [(GenerationMode.POSITIVE, CHECKS)]
    if "parameters" in operation or "requestBody" in operation:
        whole = operation["operationId"] != "createItems"
        modes.append((GenerationMode.NEGATIVE, NEGATIVE_CHECKS + ([negative_data_rejection] if whole else [])))
    return modes


def attack(operation: schemathesis.APIOperation[Any, Any, Any, Any], mode: GenerationMode, checks: list[CheckFunction],
           base_url: str, headers: dict[str, str]) -> str | None:
    # The token is given, never generated: a negative case is wrong in what the document describes.
    generated = operation.as_strategy(mode, headers=headers)
    adopt = st.booleans() if mode is GenerationMode.POSITIVE else st.just(False)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.builds(as_the_tokens_source, generated, adopt))
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=checks)

    try:
        check()
    except (Exception, BaseExceptionGroup) as failure:  # schemathesis reports a FailureGroup
        return str(failure)
    return None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_schemathesis_finds_no_fault_in_any_operation(config: Config, clock: ManualClock) -> None:
    """SQLite only: what is tested is the HTTP door against its document, not the database (the
    API's behaviour on both databases is tests/test_intake_api.py's)."""
    async with bot_with(config, clock, rate_limit_per_minute=100_000) as bot:
        headers = await token(bot, *ALL_SCOPES)
        base_url = str(bot.client.make_url("/"))
        failures = await asyncio.to_thread(fuzz, await the_document(bot), base_url, headers)
        assert not failures, "\n\n".join(failures)
