"""The item lifecycle after 签收: 进展, 回应, 办结, 不予回应, 合并, 移交 (转办/签收/退回: handlers/assignment.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.vocab import ItemStatus, Referral, ResponseForm
from handlers import items as common
from handlers.context import Context, Outcome
from handlers.parsing import find_urls, strip_separators, take_item_ref
from handlers.permissions import Action
from handlers.policy import local_time, remaining_text
from handlers.router import Router, Usage
from store import pending

USAGE_PROGRESS = "用法：进展 #编号 内容，例如：进展 #12 已联系当事人核实情况"
USAGE_RESPOND = "用法：回应 #编号 方式 [链接] 内容。方式为：{forms}。例如：回应 #12 网上发布 https://… 已发布情况通报"
USAGE_CLOSE = "用法：办结 #编号 办理结果，例如：办结 #12 问题已解决，群众表示满意"
USAGE_NO_RESPONSE = "用法：不予回应 #编号 理由，例如：不予回应 #12 经核实为个人诉求，已电话答复"
USAGE_MERGE = "用法：合并 #编号 #目标编号（前者并入后者），例如：合并 #13 #12"
USAGE_REFER = "用法：移交 #编号 公安|网信，例如：移交 #12 公安"
PROGRESS_SAVED = "#{n} 进展已记录（{at}）。"
ALREADY_RESPONDED = "#{n} 已于 {at} 以“{form}”回应。如需补充，请用“进展 #{n} 内容”。"
RESPONDED = "#{n} 已记录回应：{form}{link}。回应计时停止{late}。\n办结请发送“办结 #{n} 办理结果”。"
NOT_RESPONDED = "#{n} 尚未回应。请先发送“回应 #{n} 方式 内容”，或由领导发送“不予回应 #{n} 理由”。"
CLOSED = "#{n} 已办结（{at}）。结果：{verdict}"
NO_RESPONSE_DONE = "#{n} 经 {who} 决定不予回应，已结束计时。理由：{reason}"
MERGE_SELF = "不能把 #{n} 合并到它自己。"
MERGE_TARGET_FINAL = "#{m} {status}，不能作为合并目标。"
MERGED = "#{n} 已并入 #{m}，后续请在 #{m} 办理。"
ALREADY_REFERRED = "#{n} 已移交{to}，无需重复移交。"
REFERRED = "#{n} 已移交{to}。承办单位仍须按时回应。"
REFERRAL_NAMES = {Referral.POLICE: "公安机关", Referral.CYBERSPACE: "网信部门"}

router = Router("workflow")


# -- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemText:
    """A command of the shape "<verb> #N <text>"."""

    number: int
    text: str


@dataclass(frozen=True)
class RespondCommand:
    number: int
    form: ResponseForm
    link: str | None
    text: str


@dataclass(frozen=True)
class MergeCommand:
    number: int
    target: int


@dataclass(frozen=True)
class ReferCommand:
    number: int
    to: Referral


def item_text_parser(usage: str, *, text_required: bool) -> Callable[[str], ItemText | Usage]:
    def parse(rest: str) -> ItemText | Usage:
        ref = take_item_ref(rest)
        if ref is None or (text_required and not ref[1]):
            return Usage(usage)
        return ItemText(*ref)

    return parse


parse_progress = item_text_parser(USAGE_PROGRESS, text_required=True)
parse_close = item_text_parser(USAGE_CLOSE, text_required=True)
parse_no_response = item_text_parser(USAGE_NO_RESPONSE, text_required=True)


def parse_form(word: str) -> ResponseForm | None:
    """Accept the six forms, also written longer ("网上发布信息") or shorter ("发布会", "辟谣")."""
    for form in ResponseForm:
        if word.startswith(form.value) or (len(word) >= 2 and form.value.startswith(word)):
            return form
    aliases = {
        "发布会": ResponseForm.PRESS_CONFERENCE, "澄清": ResponseForm.REBUTTAL, "答复": ResponseForm.PUBLIC_REPLY,
    }
    return aliases.get(word)


def parse_respond(rest: str) -> RespondCommand | Usage:
    usage = Usage(USAGE_RESPOND.format(forms="、".join(f.value for f in ResponseForm)))
    ref = take_item_ref(rest)
    if ref is None or not ref[1]:
        return usage
    number, tail = ref
    word, _, remainder = tail.partition(" ")
    form = parse_form(word)
    if form is None:
        return usage
    remainder = strip_separators(remainder)
    urls = find_urls(remainder)
    link = urls[0] if urls and remainder.startswith(urls[0]) else None
    text = strip_separators(remainder[len(link) :]) if link else remainder
    if not text and link is None:
        return usage
    return RespondCommand(number, form, link, text)


def parse_merge(rest: str) -> MergeCommand | Usage:
    first = take_item_ref(rest)
    second = take_item_ref(first[1]) if first else None
    if first is None or second is None or second[1]:
        return Usage(USAGE_MERGE)
    return MergeCommand(first[0], second[0])


def parse_refer(rest: str) -> ReferCommand | Usage:
    ref = take_item_ref(rest)
    if ref is None:
        return Usage(USAGE_REFER)
    word = ref[1]
    for referral in Referral:
        if word.startswith(referral.value):
            return ReferCommand(ref[0], referral)
    return Usage(USAGE_REFER)


# -- handlers ---------------------------------------------------------------------------------


@router.command("进展", "续报", parse=parse_progress, summary="进展 #编号 内容 — 记录处置进展")
async def progress(ctx: Context, command: ItemText) -> Outcome:
    item = await common.open_and_permitted(ctx, command.number, Action.PROGRESS)
    if isinstance(item, Outcome):
        return item
    await common.record(ctx, item, "progress", detail=command.text)
    return Outcome.say(PROGRESS_SAVED.format(n=item.number, at=local_time(ctx.now, ctx.tz)))


@router.command("回应", parse=parse_respond, summary="回应 #编号 方式 [链接] 内容 — 记录公开回应（停止回应计时）")
async def respond(ctx: Context, command: RespondCommand) -> Outcome:
    item = await common.open_and_permitted(ctx, command.number, Action.RESPOND)
    if isinstance(item, Outcome):
        return item
    if item.responded_at is not None:
        return Outcome.say(ALREADY_RESPONDED.format(n=item.number, at=local_time(item.responded_at, ctx.tz),
                                                    form=item.response_form))
    fields = ("status", "responded_at", "response_form", "response_link")
    before = common.snapshot(item, *fields)
    item.responded_at = ctx.now
    item.response_form = command.form.value
    item.response_link = command.link
    item.response_text = command.text
    common.advance_status(item, ItemStatus.RESPONDED)
    common.reschedule(ctx, item)
    await common.record(ctx, item, "responded", detail=command.text, before=before,
                        after=common.snapshot(item, *fields))
    late = ""
    if item.response_due_at is not None and ctx.now > item.response_due_at:
        late = f"（{remaining_text(item.response_due_at, ctx.now)}）"
    link = f" {command.link}" if command.link else ""
    return Outcome.say(RESPONDED.format(n=item.number, form=command.form.value, link=link, late=late))


@router.command("办结", parse=parse_close, summary="办结 #编号 结果 — 办结并记录结果")
async def close(ctx: Context, command: ItemText) -> Outcome:
    item = await common.open_and_permitted(ctx, command.number, Action.CLOSE)
    if isinstance(item, Outcome):
        return item
    if item.responded_at is None:
        return Outcome.say(NOT_RESPONDED.format(n=item.number))
    before = common.snapshot(item, "status", "verdict")
    item.status = ItemStatus.CLOSED.value
    item.closed_at = ctx.now
    common.reschedule(ctx, item)
    item.verdict = command.text
    await common.record(ctx, item, "closed", detail=command.text, before=before,
                        after=common.snapshot(item, "status", "verdict"))
    return Outcome.say(CLOSED.format(n=item.number, at=local_time(ctx.now, ctx.tz), verdict=command.text))


@router.command("不予回应", parse=parse_no_response, summary="不予回应 #编号 理由 — 经领导决定不予回应")
async def no_response(ctx: Context, command: ItemText) -> Outcome:
    item = await common.open_and_permitted(ctx, command.number, Action.NO_RESPONSE)
    if isinstance(item, Outcome):
        return item
    before = common.snapshot(item, "status", "verdict")
    item.status = ItemStatus.NO_RESPONSE.value
    item.closed_at = ctx.now
    common.reschedule(ctx, item)
    item.verdict = command.text
    await pending.close_for_item(ctx.session, item.id, "grade")
    await common.record(ctx, item, "no_response", detail=command.text, before=before,
                        after=common.snapshot(item, "status", "verdict"))
    return Outcome.say(NO_RESPONSE_DONE.format(n=item.number, who=ctx.sender.name, reason=command.text))


@router.command("合并", parse=parse_merge, summary="合并 #编号 #目标编号 — 重复线索并入另一条")
async def merge(ctx: Context, command: MergeCommand) -> Outcome:
    if command.number == command.target:
        return Outcome.say(MERGE_SELF.format(n=command.number))
    item = await common.open_and_permitted(ctx, command.number, Action.MERGE)
    if isinstance(item, Outcome):
        return item
    target = await common.load(ctx, command.target)
    if isinstance(target, Outcome):
        return target
    if target.status == ItemStatus.MERGED.value:
        return Outcome.say(MERGE_TARGET_FINAL.format(m=target.number, status=target.status))
    before = common.snapshot(item, "status", "merged_into")
    item.status = ItemStatus.MERGED.value
    item.merged_into = target.number
    item.closed_at = ctx.now
    common.reschedule(ctx, item)
    await pending.close_for_item(ctx.session, item.id, "grade")
    await common.record(ctx, item, "merged", detail=f"#{target.number}", before=before,
                        after=common.snapshot(item, "status", "merged_into"))
    await common.record(ctx, target, "absorbed", detail=f"#{item.number}")
    return Outcome.say(MERGED.format(n=item.number, m=target.number))


@router.command("移交", parse=parse_refer, summary="移交 #编号 公安|网信 — 涉谣言等线索移交")
async def refer(ctx: Context, command: ReferCommand) -> Outcome:
    item = await common.open_and_permitted(ctx, command.number, Action.REFER)
    if isinstance(item, Outcome):
        return item
    to = REFERRAL_NAMES[command.to]
    if command.to.value in item.referred_to:
        return Outcome.say(ALREADY_REFERRED.format(n=item.number, to=to))
    before = {"referred_to": list(item.referred_to)}
    item.referred_to = [*item.referred_to, command.to.value]
    await common.record(ctx, item, "referred", detail=command.to.value, before=before,
                        after={"referred_to": item.referred_to})
    return Outcome.say(REFERRED.format(n=item.number, to=to))
