"""The item lifecycle after 签收: 进展, 回应, 办结, 不予回应, 合并, 移交 (转办/签收/退回: handlers/assignment.py).

回应 (004 第八条; 000 §四(四)): the forms and their everyday phrasings are the policy's
(`policy.response_forms`). The first 回应 stops the response clock; each later one is a 续报
(continuing release), kept in the audit trail with its sequence number. Responses and closures
of the policy's grades, and referrals, are copied to the coordinators (归口报送, 004 第十条), and
办结 is fed back to the reporter and the lead unit's 分管领导 (001 第十一条). Every text posted
about a 涉密 item goes through the filters of handlers/items (001 第十七条).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domain.config import PolicySection, ResponseFormRule
from domain.vocab import Grade, Referral
from handlers import items as common
from handlers.context import Context, Outcome
from handlers.ops import close as ops
from handlers.ops import respond as responding
from handlers.ops import settle
from handlers.ops.close import NotResponded
from handlers.ops.permits import NotPermitted
from handlers.ops.respond import CONTINUING, FIRST_RESPONSE, ResponseParts
from handlers.ops.settle import AlreadyReferred, MergeRefused
from handlers.parsing import find_urls, strip_separators, take_item_ref
from handlers.permissions import Action
from handlers.policy import local_time, remaining_text
from handlers.router import Router, Usage
from store.models import Item

USAGE_PROGRESS = "用法：进展 #编号 内容，例如：进展 #12 已联系当事人核实情况"
USAGE_RESPOND = "用法：回应 #编号 方式 [链接] 内容，例如：回应 #12 网上发布 https://… 已发布情况通报"
USAGE_RESPOND_FORMS = (
    "用法：回应 #编号 方式 [链接] 内容。方式为：{forms}。例如：回应 #12 {form} https://… 已发布情况通报"
)
MISSING_BOTH = "请写明回应方式和内容，例如：回应 #{n} {form} https://… 已发布情况通报。方式为：{forms}。"
MISSING_CONTENT = "请在“{form}”后写明回应内容或链接，例如：回应 #{n} {form} https://… 已发布情况通报。"
USAGE_CLOSE = "用法：办结 #编号 办理结果，例如：办结 #12 问题已解决，群众表示满意"
USAGE_NO_RESPONSE = "用法：不予回应 #编号 理由，例如：不予回应 #12 经核实为个人诉求，已电话答复"
USAGE_MERGE = "用法：合并 #编号 #目标编号（前者并入后者），例如：合并 #13 #12"
USAGE_REFER = "用法：移交 #编号 公安|网信，例如：移交 #12 公安"
PROGRESS_SAVED = "#{n} 进展已记录（{at}）。"
RESPONDED = "#{n} 已记录回应：{form}{link}。回应计时停止{late}。\n办结请发送“办结 #{n} 办理结果”。"
CONTINUED = "#{n} 已记录第{seq}次回应（续报）：{form}{link}。"
PRESS_CONFERENCE_EXPECTED = (
    "提示：#{n} 属重大突发事件，按规定应召开{form}，目前尚未记录。召开后请发送“回应 #{n} {form} 内容”。"
)
NOT_RESPONDED = "#{n} 尚未回应。请先发送“回应 #{n} 方式 内容”，或由领导发送“不予回应 #{n} 理由”。"
CLOSED = "#{n} 已办结（{at}）。结果：{verdict}"
FED_BACK = "办理结果已反馈{whom}。"
NO_RESPONSE_DONE = "#{n} 经 {who} 决定不予回应，已结束计时。理由：{reason}"
MERGE_SELF = "不能把 #{n} 合并到它自己。"
MERGE_TARGET_FINAL = "#{m} {status}，不能作为合并目标。"
MERGED = "#{n} 已并入 #{m}，后续请在 #{m} 办理。"
ALREADY_REFERRED = "#{n} 已移交{to}，无需重复移交。"
REFERRED = "#{n} 已移交{to}。承办单位仍须按时回应。"
REFERRAL_NAMES = {Referral.POLICE: "公安机关", Referral.CYBERSPACE: "网信部门"}
# Copies to the coordinators' chat (归口报送): what happened, by whom, and the item's public summary.
RESPONSE_COPY = "【回应】#{n} {grade}｜{what}：{form}{link}\n{text}操作：{who} {at}\n摘要：{summary}"
CLOSED_COPY = "【办结】#{n} {grade}｜{who} {at}\n结果：{verdict}\n摘要：{summary}"
NO_RESPONSE_COPY = "【不予回应】#{n} {grade}｜经 {who} 决定（{at}）\n理由：{reason}\n摘要：{summary}"
REFERRED_COPY = "【移交】#{n} {grade}｜已移交{to}（{who} {at}）\n摘要：{summary}"
# A form glued to the content ("发布会已召开") ends where one of these begins.
_FORM_BOUNDARY = (" ", ":", "：", ",", "，", "、", "。", ";", "；", "http")

router = Router("workflow")


# -- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemText:
    """A command of the shape "<verb> #N <text>"."""

    number: int
    text: str


@dataclass(frozen=True)
class RespondCommand:
    """回应 #N and the rest as typed: the forms are the policy's, so the handler reads them."""

    number: int
    rest: str


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


def parse_respond(rest: str) -> RespondCommand | Usage:
    ref = take_item_ref(rest)
    return Usage(USAGE_RESPOND) if ref is None else RespondCommand(*ref)


def match_form(text: str, rules: Sequence[ResponseFormRule]) -> tuple[str, str] | None:
    """The form named at the start of `text` by its name or an alias, and the text after it.

    The longest phrase wins ("召开新闻发布会" before "发布会"). A phrase glued to the content
    ("发布会已召开") counts only when it has three characters or more (or a link follows) and no
    phrase of another form also starts the text: otherwise the user must put a space after the
    form, and is asked to.
    """
    phrases = sorted(((p, rule.name) for rule in rules for p in (rule.name, *rule.aliases) if p),
                     key=lambda pair: len(pair[0]), reverse=True)  # stable: ties keep the policy's order
    found = [(phrase, name) for phrase, name in phrases if text.startswith(phrase)]
    if not found:
        return None
    phrase, name = found[0]
    rest = text[len(phrase) :]
    glued = bool(rest) and not rest.startswith(_FORM_BOUNDARY)
    # A two-character phrase glued to words reads as ordinary text too often ("采访了当事人").
    short = len(phrase) < 3 and not rest.lower().startswith("http")
    if glued and (short or any(other != name for _, other in found)):
        return None
    return name, rest


def read_response(rest: str, rules: Sequence[ResponseFormRule]) -> ResponseParts | None:
    """"方式 [链接] 内容" → the form, the link (written first or last) and the content; None when
    no form is named or nothing follows it."""
    matched = match_form(rest, rules)
    if matched is None:
        return None
    form, remainder = matched[0], strip_separators(matched[1])
    urls = find_urls(remainder)
    link: str | None = None
    text = remainder
    if urls and remainder.startswith(urls[0]):
        link, text = urls[0], strip_separators(remainder[len(urls[0]) :])
    elif urls and remainder.endswith(urls[-1]):  # "内容 链接": the other habit
        link, text = urls[-1], remainder[: -len(urls[-1])].rstrip(" :：,，、;；")
    if not text and link is None:
        return None
    return ResponseParts(form, link, text)


def respond_usage(rules: Sequence[ResponseFormRule]) -> str:
    return USAGE_RESPOND_FORMS.format(forms="、".join(r.name for r in rules), form=rules[0].name)


def response_problem(number: int, rest: str, rules: Sequence[ResponseFormRule]) -> str:
    """What a 回应 that could not be read lacks, in words: the form, or the content after it."""
    forms = "、".join(r.name for r in rules)
    if not rest:
        return MISSING_BOTH.format(n=number, form=rules[0].name, forms=forms)
    matched = match_form(rest, rules)
    if matched is not None and not strip_separators(matched[1]):
        return MISSING_CONTENT.format(n=number, form=matched[0])
    return respond_usage(rules)  # no form named: the usage lists them


def expects_press_conference(item: Item, forms: Sequence[str], policy: PolicySection) -> bool:
    """A 重大 突发事件 is answered at a press conference (000 §四(四)): true while none is recorded."""
    return (
        item.grade == Grade.MAJOR.value
        and item.category in policy.emergency_categories
        and policy.press_conference_form not in forms
    )


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
    item = await common.load_open(ctx, command.number, Action.PROGRESS)
    if isinstance(item, Outcome):
        return item
    event = await ops.progress(ctx.work(), ctx.actor(), ctx.chat, item, command.text)
    if isinstance(event, NotPermitted):
        return await refuse(ctx, event)
    return Outcome.say(PROGRESS_SAVED.format(n=item.number, at=local_time(ctx.now, ctx.tz)))


@router.command(
    "回应", parse=parse_respond, summary="回应 #编号 方式 [链接] 内容 — 记录公开回应（首次停止计时，其后为续报）"
)
async def respond(ctx: Context, command: RespondCommand) -> Outcome:
    policy = ctx.config.policy
    parts = read_response(command.rest, policy.response_forms)
    if parts is None:
        return Outcome.say(response_problem(command.number, command.rest, policy.response_forms))
    item = await common.load_open(ctx, command.number, Action.RESPOND)
    if isinstance(item, Outcome):
        return item
    event = await responding.respond(ctx.work(), ctx.actor(), ctx.chat, item, parts)
    if isinstance(event, NotPermitted):
        return await refuse(ctx, event)
    seq, first, event_id = event.seq, event.first, event.event_id
    link = common.public_link(item, parts.link)
    link_text = f" {link}" if link else ""
    if first:
        late = ""
        if item.response_due_at is not None and ctx.now > item.response_due_at:
            late = f"（{remaining_text(item.response_due_at, ctx.now)}）"
        text = RESPONDED.format(n=item.number, form=parts.form, link=link_text, late=late)
    else:
        text = CONTINUED.format(n=item.number, seq=seq, form=parts.form, link=link_text)
    reminder = ""
    if expects_press_conference(item, [*event.earlier_forms, parts.form], policy):
        reminder = "\n" + PRESS_CONFERENCE_EXPECTED.format(n=item.number, form=policy.press_conference_form)
    if common.grade_of(item) in policy.copies.responses:
        what = FIRST_RESPONSE if first else f"第{seq}次回应（{CONTINUING}）"
        await _copy_response(ctx, item, parts, what, reminder, event_id)
    return Outcome.say(text + reminder)


async def _copy_response(
    ctx: Context, item: Item, parts: ResponseParts, what: str, reminder: str, event_id: int
) -> None:
    link = common.public_link(item, parts.link)
    content = common.public_detail(item, parts.text)
    copy = RESPONSE_COPY.format(
        n=item.number, grade=item.grade, what=what, form=parts.form, link=f" {link}" if link else "",
        text=f"内容：{content}\n" if content else "", who=ctx.sender.name, at=local_time(ctx.now, ctx.tz),
        summary=common.notice_summary(item, with_link=True),
    )
    await common.copy_to_coordinators(ctx, item, copy + reminder, key=f"notice:item{item.id}:responded:{event_id}")


@router.command("办结", parse=parse_close, summary="办结 #编号 结果 — 办结并向上报人、分管领导反馈结果")
async def close(ctx: Context, command: ItemText) -> Outcome:
    item = await common.load_open(ctx, command.number, Action.CLOSE)
    if isinstance(item, Outcome):
        return item
    work = ctx.work()
    event = await ops.close(work, ctx.actor(), ctx.chat, item, command.text)
    if isinstance(event, NotPermitted):
        return await refuse(ctx, event)
    if isinstance(event, NotResponded):
        return Outcome.say(NOT_RESPONDED.format(n=item.number))
    at = local_time(ctx.now, ctx.tz)
    verdict = common.public_detail(item, command.text)
    if common.grade_of(item) in ctx.config.policy.copies.closures:
        copy = CLOSED_COPY.format(n=item.number, grade=item.grade, who=ctx.sender.name, at=at, verdict=verdict,
                                  summary=common.notice_summary(item, with_link=True))
        await work.copy_to_coordinators(item.id, copy, f"notice:item{item.id}:closed:{event.event_id}",
                                        besides=ctx.chat)
    text = CLOSED.format(n=item.number, at=at, verdict=verdict)
    if event.fed_back:
        text += "\n" + FED_BACK.format(whom="及".join(word for word, _ in event.fed_back))
    return Outcome.say(text, event.mentions)


async def refuse(ctx: Context, refused: NotPermitted) -> Outcome:
    """An operation's NotPermitted as the chat says it, recorded as a refusal."""
    text = common.REFUSED.format(n=refused.item.number, action=refused.action.value, who=refused.who)
    return await ctx.refuse(text, action=refused.action.value, item_id=refused.item.id)


@router.command("不予回应", parse=parse_no_response, summary="不予回应 #编号 理由 — 经领导决定不予回应")
async def no_response(ctx: Context, command: ItemText) -> Outcome:
    item = await common.load_open(ctx, command.number, Action.NO_RESPONSE)
    if isinstance(item, Outcome):
        return item
    work = ctx.work()
    event = await settle.no_response(work, ctx.actor(), ctx.chat, item, command.text)
    if isinstance(event, NotPermitted):
        return await refuse(ctx, event)
    reason = common.public_detail(item, command.text)
    if common.grade_of(item) in ctx.config.policy.copies.closures:
        copy = NO_RESPONSE_COPY.format(n=item.number, grade=item.grade, who=ctx.sender.name,
                                       at=local_time(ctx.now, ctx.tz), reason=reason,
                                       summary=common.notice_summary(item, with_link=True))
        await work.copy_to_coordinators(item.id, copy, f"notice:item{item.id}:no_response:{event.event_id}",
                                        besides=ctx.chat)
    return Outcome.say(NO_RESPONSE_DONE.format(n=item.number, who=ctx.sender.name, reason=reason))


@router.command("合并", parse=parse_merge, summary="合并 #编号 #目标编号 — 重复线索并入另一条")
async def merge(ctx: Context, command: MergeCommand) -> Outcome:
    if command.number == command.target:
        return Outcome.say(MERGE_SELF.format(n=command.number))
    item = await common.load_open(ctx, command.number, Action.MERGE)
    if isinstance(item, Outcome):
        return item
    event = await settle.merge(ctx.work(), ctx.actor(), ctx.chat, item, command.target)
    if isinstance(event, NotPermitted):
        return await refuse(ctx, event)
    if isinstance(event, MergeRefused):
        if event.target is None:
            return Outcome.say(common.NOT_FOUND.format(n=command.target))
        return Outcome.say(MERGE_TARGET_FINAL.format(m=event.target.number, status=event.target.status))
    return Outcome.say(MERGED.format(n=item.number, m=event.target.number))


@router.command("移交", parse=parse_refer, summary="移交 #编号 公安|网信 — 涉谣言等线索移交")
async def refer(ctx: Context, command: ReferCommand) -> Outcome:
    item = await common.load_open(ctx, command.number, Action.REFER)
    if isinstance(item, Outcome):
        return item
    work = ctx.work()
    event = await settle.refer(work, ctx.actor(), ctx.chat, item, command.to)
    if isinstance(event, NotPermitted):
        return await refuse(ctx, event)
    to = REFERRAL_NAMES[command.to]
    if isinstance(event, AlreadyReferred):
        return Outcome.say(ALREADY_REFERRED.format(n=item.number, to=to))
    if ctx.config.policy.copies.referred:
        copy = REFERRED_COPY.format(n=item.number, grade=item.grade or "未定级", to=to, who=ctx.sender.name,
                                    at=local_time(ctx.now, ctx.tz), summary=common.notice_summary(item, with_link=True))
        await work.copy_to_coordinators(item.id, copy, f"notice:item{item.id}:referred:{event.event_id}",
                                        besides=ctx.chat)
    return Outcome.say(REFERRED.format(n=item.number, to=to))
