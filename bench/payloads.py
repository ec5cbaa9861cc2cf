"""What the load generator sends: request bodies as templates, and the wrk Lua scripts built from them.

A body is a JSON document cut into fixed pieces with slots between them; wrk's Lua fills the
slots per request (a fresh message id from a per-thread prefix and a counter, and the text of the
command) and concatenates. The pieces are made here, in Python, from a real dict, so the bytes wrk
sends are exactly `json.dumps` of the message with the slot values put in (`assemble` does in
Python what the Lua does, for the smoke test).

DingTalk's callback signature covers only the `timestamp` header (PROTOCOLS.md D.1), and the bot
refuses a pair that comes back with another msgId more than 2 s after its first use. So every
request of a run is signed with its own timestamp: a run gets a table of consecutive millisecond
timestamps starting right before it, their signatures precomputed here into the Lua script
(`dingtalk_signatures`), and each request takes the next entry. The server's limits are not
widened for the bench.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.channels.dingtalk_sign import sign

LUA_DIR = Path(__file__).resolve().parent / "lua"
DINGTALK_CONVERSATION = "cidQingHeDuty0000000000=="  # chat dingtalk_duty in config.example.toml
DINGTALK_STAFF_ID = "dt_sunli"  # person sun_li
SESSION_LIFETIME_MS = 5_400_000  # ≈ 90 min, as DingTalk's documented example
SIGN_LENGTH = 44  # base64 of an HMAC-SHA256
# Signatures per second of run: above what dutybot answers (a few hundred to a thousand a second).
# A run that outgrows its table starts over at the first entry; the server refuses those reused
# pairs (401), so an undersized table shows up as errors, never as a wider server.
SIGNATURES_PER_SECOND = 2_500
ONEBOT_SELF_ID = "10001"
ONEBOT_GROUP = 700001
ONEBOT_USER = 20001

# Slot names the Lua knows how to fill.
SLOT_ID = "id"  # the message id (string for DingTalk, a number for OneBot)
SLOT_TEXT = "text"  # the command text
SLOTS = (SLOT_ID, SLOT_TEXT)
_MARK = "@@SLOT:{}@@"  # never occurs in the bodies' own data

# The command texts. `{id}` is the message id; the Lua draws `{n}` for each request.
REPORT_TEXT = "上报 网友在微博反映城关镇东风小区停水三天无人处理 编号{id} https://weibo.com/7{id}"
# The intake API's item (POST /api/v1/items): the summary a source system sends. `{id}` is the
# request's external id, as in the chat report's text, so the two paths store the same words.
INTAKE_SUMMARY = "网友在微博反映县政务服务大厅排队三小时无人引导，编号{id}"
INTAKE_SOURCE = "舆情监测系统"  # the token's source system
INTAKE_UNIT = "县政府办"  # unit_hint: 清河县人民政府办公室, whose duty chat is wecom_duty
QUERY_TEXT = "查询 #{n}"
DUTY_TEXT = "值班"


@dataclass(frozen=True)
class Template:
    """A body cut at its slots: pieces[0] slot[0] pieces[1] … slot[-1] pieces[-1]."""

    pieces: tuple[str, ...]
    slots: tuple[str, ...]

    def assemble(self, values: Mapping[str, str]) -> str:
        """The body for these slot values (what the Lua does, as JSON-escaped text)."""
        out = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            out.append(_json_escape(values[slot]))
            out.append(piece)
        return "".join(out)


def _json_escape(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def cut(document: Mapping[str, Any]) -> Template:
    """Serialise a dict whose string values may contain slot marks, and cut it at the marks."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    pattern = re.compile(re.escape(_MARK.format("X")).replace("X", "([a-z]+)"))
    pieces: list[str] = []
    slots: list[str] = []
    position = 0
    for match in pattern.finditer(text):
        pieces.append(text[position : match.start()])
        slots.append(match.group(1))
        position = match.end()
    pieces.append(text[position:])
    unknown = set(slots) - set(SLOTS)
    if unknown:
        raise ValueError(f"unknown slots {unknown}")
    return Template(tuple(pieces), tuple(slots))


def slot(name: str) -> str:
    return _MARK.format(name)


def dingtalk_message(*, robot_base: str, created_ms: int) -> dict[str, Any]:
    """A DingTalk app-robot callback body as tests/fakes/dingtalk.py builds it, with slots."""
    return {
        "msgtype": "text",
        "text": {"content": " " + slot(SLOT_TEXT)},  # DingTalk keeps a space where the @ was
        "msgId": slot(SLOT_ID),
        "createAt": created_ms,
        "conversationType": "2",
        "conversationId": DINGTALK_CONVERSATION,
        "conversationTitle": "清河县舆情值班群",
        "senderId": "$:LWCP_v1:$bench",
        "senderNick": "孙丽",
        "senderCorpId": "dingcorpbench",
        "senderStaffId": DINGTALK_STAFF_ID,
        "chatbotCorpId": "dingcorpbench",
        "chatbotUserId": "$:LWCP_v1:$bot",
        "robotCode": "dingbenchappkey",
        "isAdmin": False,
        "isInAtList": True,
        "sessionWebhook": f"{robot_base}/robot/sendBySession?session=s{slot(SLOT_ID)}",
        "sessionWebhookExpiredTime": created_ms + SESSION_LIFETIME_MS,
    }


def onebot_event(*, now_s: int) -> dict[str, Any]:
    """A OneBot v11 group message event (HTTP POST), with slots; message_id is a number."""
    return {
        "time": now_s,
        "self_id": int(ONEBOT_SELF_ID),
        "post_type": "message",
        "message_type": "group",
        "sub_type": "normal",
        "message_id": slot(SLOT_ID),
        "group_id": ONEBOT_GROUP,
        "user_id": ONEBOT_USER,
        "anonymous": None,
        "message": [{"type": "text", "data": {"text": slot(SLOT_TEXT)}}],
        "raw_message": slot(SLOT_TEXT),
        "font": 0,
        "sender": {"user_id": ONEBOT_USER, "nickname": "孙丽", "card": "", "role": "member"},
    }


def onebot_template(now_s: int) -> Template:
    template = cut(onebot_event(now_s=now_s))
    # message_id is a JSON number: drop the quotes around its slot.
    pieces = list(template.pieces)
    for index, name in enumerate(template.slots):
        if name == SLOT_ID:
            assert pieces[index].endswith('"') and pieces[index + 1].startswith('"')
            pieces[index] = pieces[index][:-1]
            pieces[index + 1] = pieces[index + 1][1:]
    return Template(tuple(pieces), template.slots)


def intake_item() -> dict[str, Any]:
    """One item as a source system pushes it (tests/test_intake_api.py's FIRE), with slots: a
    fresh external id and link per item, so every item of a run is new (the API is idempotent on
    (source_system, external_id) and, without one, on the link)."""
    return {
        "source_system": INTAKE_SOURCE,
        "external_id": slot(SLOT_ID),
        "url": f"https://weibo.com/7/{slot(SLOT_ID)}",
        "title": "县政务服务大厅排长队",
        "summary": slot(SLOT_TEXT),
        "platform": "微博",
        "suggested_grade": "一般",
        "unit_hint": INTAKE_UNIT,
    }


def intake_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


BATCH_OPEN = '{"items":['
BATCH_CLOSE = "]}"


def batch_body(template: Template, text: str, run_tag: str, *, thread: int, request: int, size: int) -> str:
    """The body the Lua sends as a thread's request-th batch (1-based): `size` items, item k
    taking the thread's counter (request - 1) * size + k as its id — what body.lua does."""
    items = []
    for k in range(1, size + 1):
        msg = message_id(run_tag, thread, (request - 1) * size + k, numeric=False)
        items.append(template.assemble({SLOT_ID: msg, SLOT_TEXT: text.format(id=msg)}))
    return BATCH_OPEN + ",".join(items) + BATCH_CLOSE


def dingtalk_headers(app_secret: str, timestamp_ms: int) -> dict[str, str]:
    stamp = str(timestamp_ms)
    return {"timestamp": stamp, "sign": sign(stamp, app_secret), "Content-Type": "application/json; charset=utf-8"}


@dataclass(frozen=True)
class Signatures:
    """Consecutive millisecond timestamps from `first_ms`, each with its signature: request k of
    a run (k counted over all threads) is signed with entry k."""

    first_ms: int
    signs: tuple[str, ...]

    def headers(self, index: int) -> dict[str, str]:
        """Entry `index` (0-based, wrapping) as the request headers (what the Lua does)."""
        index %= len(self.signs)
        return {"timestamp": str(self.first_ms + index), "sign": self.signs[index]}


def dingtalk_signatures(app_secret: str, first_ms: int, count: int) -> Signatures:
    """`count` distinct timestamps (one millisecond apart) and their signatures."""
    signs = tuple(sign(str(first_ms + i), app_secret) for i in range(count))
    assert all(len(s) == SIGN_LENGTH for s in signs)
    return Signatures(first_ms, signs)


def signatures_for(seconds: float) -> int:
    """How many signatures a run of `seconds` gets."""
    return int(seconds * SIGNATURES_PER_SECOND) + 1_000


# -- Lua -------------------------------------------------------------------------------------------


def lua_string(value: str) -> str:
    """A Lua long-bracket literal that cannot be closed early by the value."""
    level = 0
    while f"]{'=' * level}]" in value:
        level += 1
    eq = "=" * level
    # A long bracket drops a newline right after the opening; pieces never start with one here,
    # but be safe.
    return f"[{eq}[\n{value}]{eq}]"


def lua_list(values: Sequence[str]) -> str:
    return "{" + ", ".join(lua_string(v) for v in values) + "}"


@dataclass(frozen=True)
class LoadSpec:
    """Everything the Lua needs for one run."""

    path: str  # request path
    headers: Mapping[str, str]
    template: Template
    text: str  # REPORT_TEXT, QUERY_TEXT or DUTY_TEXT
    run_tag: str  # makes message ids unique across runs on one database
    numeric_ids: bool = False  # OneBot: message ids are numbers
    max_n: int = 1  # `{n}` is drawn uniformly from 1..max_n
    stop_after: int = 0  # each thread stops after this many responses (0: run for the duration)
    delay_ms: int = 0  # each connection waits this long between requests (0: as fast as answered)
    # DingTalk: a timestamp+sign per request (the `timestamp`/`sign` in `headers` are then replaced).
    signatures: Signatures | None = None
    threads: int = 1  # wrk threads: thread t takes entries t-1, t-1+threads, … of the table
    # A batch (the intake API's items:batch): the template is one item, and each request sends
    # {"items": [ … ]} with this many of them, each with its own id (0: one body per request).
    items_per_request: int = 0
    # Read the `created` count from each 2xx response body (the batch answer) into BENCH_COUNTS.
    count_created: bool = False


def render_lua(spec: LoadSpec) -> str:
    """The wrk script for a run: the template file with this run's constants put in."""
    source = (LUA_DIR / "body.lua").read_text(encoding="utf-8")
    # literal pieces (JSON-escaped: they go inside a JSON string) alternating with "id" / "n"
    text_pieces = [p if i % 2 else _json_escape(p) for i, p in enumerate(re.split(r"\{(id|n)\}", spec.text))]
    constants = "\n".join([
        f"local PATH = {lua_string(spec.path)}",
        "local HEADERS = {"
        + ", ".join(f"[ {lua_string(k)} ] = {lua_string(v)}" for k, v in spec.headers.items()) + "}",
        f"local PIECES = {lua_list(spec.template.pieces)}",
        f"local SLOTS = {lua_list(spec.template.slots)}",
        # the command text, alternating literal pieces and the names "id" / "n"
        f"local TEXT = {lua_list(text_pieces)}",
        f"local RUN_TAG = {lua_string(spec.run_tag)}",
        f"local NUMERIC_IDS = {'true' if spec.numeric_ids else 'false'}",
        f"local MAX_N = {int(spec.max_n)}",
        f"local STOP_AFTER = {int(spec.stop_after)}",
        f"local DELAY_MS = {int(spec.delay_ms)}",
        f"local THREADS = {max(1, int(spec.threads))}",
        f"local ITEMS_PER_REQUEST = {max(0, int(spec.items_per_request))}",
        f"local BATCH_OPEN = {lua_string(BATCH_OPEN)}",
        f"local BATCH_CLOSE = {lua_string(BATCH_CLOSE)}",
        f"local COUNT_CREATED = {'true' if spec.count_created else 'false'}",
        # The signatures end to end in one string (44 bytes per request, cut with string.sub);
        # the timestamps are SIGN_FIRST_MS + index, so they need no table.
        f"local SIGN_FIRST_MS = {spec.signatures.first_ms if spec.signatures else 0}",
        f"local SIGN_COUNT = {len(spec.signatures.signs) if spec.signatures else 0}",
        f"local SIGNS = {lua_string(''.join(spec.signatures.signs) if spec.signatures else '')}",
        f"local SIGN_LENGTH = {SIGN_LENGTH}",
    ])
    return source.replace("-- @@CONSTANTS@@", constants)


def signature_index(thread: int, counter: int, threads: int) -> int:
    """The table entry the Lua signs a thread's counter-th request with (mirrors body.lua)."""
    return (counter - 1) * threads + thread - 1


def message_id(run_tag: str, thread: int, counter: int, *, numeric: bool) -> str:
    """The id the Lua makes for a thread's counter-th request (mirrors body.lua)."""
    if numeric:
        return f"{run_tag}{thread:02d}{counter:09d}"
    return f"bench{run_tag}t{thread}n{counter}"
