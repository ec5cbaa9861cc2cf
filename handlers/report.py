"""上报: record a new item, suggest its unit, and ask for the grade."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from bot.vocab import ItemStatus, Role
from handlers import items as common
from handlers.context import Context, Outcome
from handlers.intake import guess_category, guess_source
from handlers.links import link_key
from handlers.parsing import find_urls, strip_separators
from handlers.permissions import may_grade
from handlers.policy import deadlines, local_time, unique
from handlers.router import Router, Usage
from store import items as item_store
from store import pending
from store.models import Item

USAGE = "请在“上报”后写明线索内容，可附链接。例如：上报 网友在微博反映城关镇某小区停水 https://weibo.com/123"
ACCEPTED = (
    "已受理舆情线索 #{n}\n"
    "来源：{source}｜类别：{category}\n"
    "建议牵头单位：{unit}\n"
    "请于 {due} 前定级，直接回复：1 重大｜2 较大｜3 一般\n"
    "（也可发送“定级 #{n} 重大”）"
)
# "舆情：…" / "舆情 …" is a report; "舆情日志" is not (a separator must follow).
IMPLICIT_MARK = re.compile(r"^舆情(?:线索)?[\s:：,，]+")
STILL_UNGRADED = "（#{n} 仍待定级，请发送“定级 #{n} 等级”。）"
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
    urls = find_urls(text)
    link = urls[0] if urls else None
    key = link_key(link) if link else None
    if key is not None and not forced:
        same = await _same_link(ctx, key)
        if same is not None:
            return await _supplement(ctx, same, text, link, classified)
    unit = ctx.directory.suggest_unit(text)
    unit_id = unit.id if unit else ctx.chat.unit
    due = deadlines(ctx.now, None, ctx.config.policy)
    item = Item(
        number=await item_store.next_number(ctx.session),
        chat_id=ctx.chat.id,
        source=guess_source(link, text),
        link=link,
        link_key=key,
        summary=text,
        category=guess_category(text, ctx.config.policy.categories),
        grade=None,
        lead_unit_id=unit_id,
        status=ItemStatus.REPORTED.value,
        reported_by=ctx.sender.id,
        reported_at=ctx.now,
        grade_due_at=due.grade_due,
        classified=classified,
        referred_to=[],
        updated_at=ctx.now,
    )
    common.reschedule(ctx, item)
    await item_store.add(ctx.session, item)
    if unit_id is not None:
        await item_store.set_units(ctx.session, item, [unit_id], new_item=True)
    after = common.snapshot(item, "number", "source", "link", "category", "lead_unit_id", "classified")
    if forced:
        after["new_lead"] = True  # the reporter overrode the duplicate check: on record
    await common.record(ctx, item, "reported", detail=common.public_summary(item), after=after)
    on_duty = await ctx.on_duty()
    earlier = await pending.open_question(ctx.session, ctx.chat.platform.value, ctx.chat.id, ctx.sender.id, ctx.now)
    asked = await _ask_for_grade(ctx, item, unit_id, list(on_duty.officers) + list(on_duty.leaders))
    text_out = ACCEPTED.format(
        n=item.number, source=item.source, category=item.category,
        unit=ctx.directory.unit_name(unit_id), due=local_time(item.grade_due_at, ctx.tz),
    )
    if earlier is not None and earlier[0] == "grade":
        text_out += "\n" + STILL_UNGRADED.format(n=earlier[1].get("number"))
    # The question @-mentions only people who may answer it (the officers on duty, by default).
    return Outcome.say(text_out, [p for p in on_duty.officers if p != ctx.sender.id and p in asked])


async def _same_link(ctx: Context, key: str) -> Item | None:
    """The item reported with the same link within policy.duplicate_days (0: the check is off)."""
    days = ctx.config.policy.duplicate_days
    if days == 0:
        return None
    return await item_store.latest_by_link_key(ctx.session, key, ctx.now - timedelta(days=days))


async def _supplement(ctx: Context, item: Item, text: str, link: str | None, classified: bool) -> Outcome:
    """Record a report of a known link on the earlier item: no new number, no grade question.

    A closed item is still the one the link belongs to (the reply says it is closed; 新线索 opens
    a new one). 查询 shows the entry's detail in groups, so the detail is the text only when
    neither the item nor this report is 涉密 (001 第十七条); the audit keeps the text in `after`."""
    public = common.CLASSIFIED_DETAIL if classified or item.classified else text
    await common.record(
        ctx, item, "supplement", detail=public, after={"summary": text, "link": link, "classified": classified},
    )
    state = item.status if item.grade is None else f"{item.grade}，{item.status}"
    return Outcome.say(DUPLICATE.format(n=item.number, state=state))


async def _ask_for_grade(ctx: Context, item: Item, unit_id: str | None, on_duty: list[str]) -> list[str]:
    """The reporter, the people on duty and the unit's leaders — those of them who may grade
    (004 第六条, policy.grade_by) — may each answer with a bare 1/2/3. Returns who was asked."""
    leaders: list[str] = []
    if unit_id is not None:
        for role in (Role.PRINCIPAL, Role.LEADER):
            leaders += [p.id for p in ctx.directory.responsible(role, unit_id)]
    duty = await ctx.on_duty()
    units = [unit_id] if unit_id else []
    asked = [
        person for person in unique([ctx.sender.id, *on_duty, *leaders])
        if may_grade(person, units, duty, ctx.directory, ctx.config.policy)
    ]
    await pending.ask(
        ctx.session,
        platform=ctx.chat.platform.value,
        chat_id=ctx.chat.id,
        users=asked,
        kind="grade",
        item_id=item.id,
        asked_at=ctx.now,
        expires_at=ctx.now + timedelta(minutes=ctx.config.policy.grade_question_minutes),
        payload={"number": item.number},
    )
    return asked
