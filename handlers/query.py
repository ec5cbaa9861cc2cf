"""查询 (one item and its timeline) and 待办 (the open items of this chat's unit, most urgent first)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from handlers import items as common
from handlers.actions import ACTIONS as ACTIONS  # re-exported: bot/api/render.py imports it from here
from handlers.context import Context, Outcome
from handlers.ops.respond import recorded_responses
from handlers.parsing import take_item_ref
from handlers.policy import local_time, next_due, remaining_text
from handlers.router import Router, Usage
from store import audit
from store import items as item_store
from store.models import Item, ItemEvent

USAGE_QUERY = "用法：查询 #编号 [全部]，例如：查询 #12"
NOTHING_OPEN = "本群当前没有待办事项（{unit}）。"
TODO_HEADER = "本群待办（{unit}）：{count}项，按紧急程度排列"
# Under the item's details a phone screen holds about a dozen timeline lines: a longer record
# shows its last RECENT_EVENTS and counts the older ones (never "1 more": up to FULL_UP_TO, all).
RECENT_EVENTS = 10
FULL_UP_TO = 12
EARLIER = "……此前还有{count}条记录，发送“查询 #{n} 全部”查看全部。"
ALL_WORDS = ("全部", "所有", "完整", "all")
TODO_MORE = "……另有{count}项，请用“查询 #编号”查看。"
TODO_LIMIT = 20

_SAFE_WHEN_CLASSIFIED = frozenset(
    {"graded", "regraded", "assigned", "acknowledged", "co_acknowledged", "merged", "absorbed", "referred"}
)

router = Router("query")


@dataclass(frozen=True)
class QueryCommand:
    number: int
    everything: bool = False  # "查询 #12 全部": the whole timeline


@dataclass(frozen=True)
class TodoCommand:
    pass


def parse_query(rest: str) -> QueryCommand | Usage:
    ref = take_item_ref(rest)
    if ref is None:
        return Usage(USAGE_QUERY)
    number, words = ref
    if words and words.lower() not in ALL_WORDS:
        return Usage(USAGE_QUERY)
    return QueryCommand(number, everything=bool(words))


def parse_todo(rest: str) -> TodoCommand | Usage:
    return TodoCommand()


@router.command("查询", "查看", parse=parse_query, summary="查询 #编号 — 查看线索详情和处置记录")
async def query(ctx: Context, command: QueryCommand) -> Outcome:
    item = await common.load(ctx, command.number)
    if isinstance(item, Outcome):
        return item
    lines = await _details(ctx, item)
    entries = _timeline_lines(ctx, item, await audit.timeline(ctx.session, item.id))
    lines.append("处置记录：" if entries else "处置记录：无")
    shown = entries if command.everything or len(entries) <= FULL_UP_TO else entries[-RECENT_EVENTS:]
    if len(shown) < len(entries):
        lines.append(EARLIER.format(count=len(entries) - len(shown), n=item.number))
    lines += shown
    return Outcome.say("\n".join(lines))


def _timeline_lines(ctx: Context, item: Item, events: Sequence[ItemEvent]) -> list[str]:
    """The 处置记录: what was done, in order. A refused attempt changed nothing and stays in the
    audit export only; a notice sent to several chats at once (the coordinators' copy) is one line."""
    lines: list[str] = []
    for event in events:
        if event.action == "refused":
            continue
        detail = f" {event.detail}" if detail_shown(item, event.action) and event.detail else ""
        action = ACTIONS.get(event.action, event.action)
        who = ctx.config.bot.name if event.actor == "bot" else ctx.name(event.actor)
        line = f"· {local_time(event.at, ctx.tz)} {who} {action}{detail}"
        if not lines or lines[-1] != line:
            lines.append(line)
    return lines


def detail_shown(item: Item, action: str) -> bool:
    """Whether the timeline shows an entry's detail. A 涉密 item's timeline shows only what names
    no content — grades, units, item numbers, referrals (001 第十七条); never the text of a
    progress note, a response, a result, a reason or a sent notice."""
    if action in ("reported", "refused"):
        return False
    return not item.classified or action in _SAFE_WHEN_CLASSIFIED


async def _details(ctx: Context, item: Item) -> list[str]:
    units = await item_store.units_of(ctx.session, item.id)
    lines = [
        f"#{item.number}【{item.grade or '未定级'}】{item.status}" + ("（涉密）" if item.classified else ""),
        f"摘要：{common.summary_without_link(item)}",  # the link is on the 来源 line
        f"来源：{item.source}" + (f" {item.link}" if item.link and not item.classified else ""),
        f"类别：{item.category}｜承办：{common.unit_names(ctx, units)}",
        f"上报：{ctx.name(item.reported_by)} {local_time(item.reported_at, ctx.tz)}",
    ]
    if item.pass_on_due_at is not None:
        state = "已签收" if item.acknowledged_at else remaining_text(item.pass_on_due_at, ctx.now)
        lines.append(f"签收时限：{local_time(item.pass_on_due_at, ctx.tz)}（{state}）")
    if item.response_due_at is not None:
        state = f"已回应：{item.response_form}" if item.responded_at else remaining_text(item.response_due_at, ctx.now)
        lines.append(f"回应时限：{local_time(item.response_due_at, ctx.tz)}（{state}）")
    # Every public response in order, the first and each 续报 (004 第八条); no link when 涉密.
    for response in recorded_responses(await audit.timeline(ctx.session, item.id)):
        link = common.public_link(item, response.link)
        kind = "（续报）" if response.seq > 1 else ""
        lines.append(f"回应{response.seq}{kind}：{local_time(response.at, ctx.tz)} {response.form}"
                     + (f" {link}" if link else ""))
    if item.referred_to:
        lines.append("已移交：" + "、".join(item.referred_to))
    if item.merged_into:
        lines.append(f"已并入 #{item.merged_into}")
    if item.verdict:
        lines.append(f"结果：{common.public_detail(item, item.verdict)}")
    return lines


def _scope(ctx: Context) -> list[str] | None:
    """Units whose items this chat sees: its unit and the units below it; None means all (coordinators)."""
    if ctx.chat.coordinators or ctx.chat.unit is None:
        return None
    scope = [ctx.chat.unit]
    for unit_id in scope:  # grows while iterating: a breadth-first walk of the unit tree
        scope += [u.id for u in ctx.config.units if u.parent == unit_id and u.id not in scope]
    return scope


def _urgency(item: Item) -> tuple[str, datetime] | None:
    return next_due(item.grade_due_at, item.grade is not None, item.pass_on_due_at,
                    item.acknowledged_at is not None, item.response_due_at, item.responded_at is not None)


@router.command("待办", "待办事项", parse=parse_todo, summary="待办 — 本群单位未办结事项（最紧急在前）")
async def todo(ctx: Context, command: TodoCommand) -> Outcome:
    scope = _scope(ctx)
    if scope is None:
        found = await item_store.open_all(ctx.session)
        unit_label = "全县"
    else:
        found = await item_store.open_for_units(ctx.session, scope)
        found += [i for i in await item_store.open_reported_in_chat(ctx.session, ctx.chat.id) if i not in found]
        unit_label = ctx.directory.unit_name(ctx.chat.unit)
    if not found:
        return Outcome.say(NOTHING_OPEN.format(unit=unit_label))
    far = datetime.max.replace(tzinfo=ctx.now.tzinfo)
    found.sort(key=lambda i: ((_urgency(i) or ("", far))[1], i.number))
    lines = [TODO_HEADER.format(unit=unit_label, count=len(found))]
    for item in found[:TODO_LIMIT]:
        urgency = _urgency(item)
        clock = f"｜{urgency[0]}{remaining_text(urgency[1], ctx.now)}" if urgency else ""
        # Past its deadline the item is 超时未办, whether or not its chase has ended (001 第九条).
        clock += "｜超时未办" if urgency and urgency[1] <= ctx.now else ""
        summary = common.public_summary(item)
        summary = summary if len(summary) <= 24 else summary[:23] + "…"
        lines.append(f"#{item.number}【{item.grade or '未定级'}】{item.status}{clock}｜{summary}")
    if len(found) > TODO_LIMIT:
        lines.append(TODO_MORE.format(count=len(found) - TODO_LIMIT))
    return Outcome.say("\n".join(lines))


