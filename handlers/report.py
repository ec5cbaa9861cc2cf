"""上报: the chat door of the report operation (handlers/ops/report.py): read the marks people
write (涉密, 新线索), report, and answer with the acceptance and its grade question."""

from __future__ import annotations

import re
from dataclasses import dataclass

from handlers.context import Context, Outcome
from handlers.ops import notify
from handlers.ops import report as ops
from handlers.ops.events import ItemSupplemented
from handlers.ops.report import ReportInput
from handlers.parsing import find_urls, strip_separators
from handlers.router import Router, Usage

USAGE = "请在“上报”后写明线索内容，可附链接。例如：上报 网友在微博反映城关镇某小区停水 https://weibo.com/123"
# "舆情：…" / "舆情 …" is a report; "舆情日志" is not (a separator must follow).
IMPLICIT_MARK = re.compile(r"^舆情(?:线索)?[\s:：,，]+")
# 001 第十七条: the 涉密 mark as people write it, at the start or at the end of the report.
_MARK = r"(?:【涉密】|\[涉密\]|（涉密）|\(涉密\)|〔涉密〕)"
CLASSIFIED_AT_START = re.compile(rf"^\s*(?:{_MARK}|涉密\s*[:：]|涉密(?=\s))\s*")
CLASSIFIED_AT_END = re.compile(rf"\s*(?:{_MARK}|[,，;；。]\s*涉密)\s*[。.]?\s*$")
# Issue 12 p9: a link reported within policy.duplicate_days is a supplement to the earlier item.
DUPLICATE = "与 #{n} 重复，已作为补充信息记入 #{n}（{state}）。如确为新线索，请发送“上报 … 新线索”。"
# "上报 … 新线索" or "上报 新线索 …": the reporter says a link seen before is a new matter. A bare
# 新线索 counts only set apart (a space, a comma, brackets): "发现一条新线索" is content.
_NEW_MARK = r"(?:【新线索】|\[新线索\]|（新线索）|\(新线索\)|〔新线索〕)"
NEW_LEAD_AT_START = re.compile(rf"^\s*(?:{_NEW_MARK}|新线索(?=$|[\s:：,，;；。]))[\s:：,，;；。]*")
NEW_LEAD_AT_END = re.compile(rf"(?:{_NEW_MARK}|(?:^|(?<=[\s,，;；。]))新线索)[\s。.!！]*$")

router = Router("report")


@dataclass(frozen=True)
class ReportCommand:
    text: str


def parse_report(rest: str) -> ReportCommand | Usage:
    return ReportCommand(rest) if rest.strip() else Usage(USAGE)


@router.command("上报", parse=parse_report, summary="上报 <内容> — 登记舆情线索（可附链接）")
async def report(ctx: Context, command: ReportCommand) -> Outcome:
    return await create_item(ctx, command.text)


@router.fallback
async def report_by_habit(ctx: Context) -> Outcome | None:
    """Reports as duty staff write them: "舆情：…" or a message that @s the bot with a link."""
    marked = IMPLICIT_MARK.match(ctx.text)
    if marked:
        return await create_item(ctx, ctx.text[marked.end() :])
    if ctx.message.mentions_bot and find_urls(ctx.text):
        return await create_item(ctx, ctx.text)
    return None


def split_classified(text: str) -> tuple[bool, str]:
    """Whether the report carries the 涉密 mark, and its text without the mark."""
    start = CLASSIFIED_AT_START.match(text)
    if start:
        return True, strip_separators(text[start.end() :])
    end = CLASSIFIED_AT_END.search(text)
    if end:
        return True, text[: end.start()].strip()
    return False, text


def split_new_lead(text: str) -> tuple[bool, str]:
    """Whether the report says 新线索 (a new item even if its link was reported before), and its
    text without those words."""
    start = NEW_LEAD_AT_START.match(text)
    if start:
        return True, text[start.end() :].strip()
    end = NEW_LEAD_AT_END.search(text)
    if end:
        return True, text[: end.start()].rstrip(" ,，;；")
    return False, text


async def create_item(ctx: Context, raw_text: str) -> Outcome:
    # The marks may come in either order: "新线索 【涉密】…", "… 新线索【涉密】", "【涉密】… 新线索".
    forced, text = split_new_lead(raw_text.strip())
    classified, text = split_classified(text)
    if not forced:
        forced, text = split_new_lead(text)
    if not text:
        return Outcome.say(USAGE)
    actor = ctx.actor()
    event = await ops.report(ctx.work(), actor, ReportInput(text, ctx.chat, classified=classified, new_lead=forced))
    if isinstance(event, ItemSupplemented):
        item = event.item
        state = item.status if item.grade is None else f"{item.grade}，{item.status}"
        return Outcome.say(DUPLICATE.format(n=item.number, state=state))
    notice = notify.accepted(ctx.directory, event, reporter=actor)
    return Outcome.say(notice.text, notice.mentions)
