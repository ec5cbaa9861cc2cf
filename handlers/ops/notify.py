"""Events into notices: the words and @-mentions every door sends alike. A report from the
intake API is announced in the item's chat exactly as the chat's own 上报 is answered (plus the
summary and who reported it, which the chat's own message shows there already)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.config import ChatConfig
from domain.directory import Directory
from domain.vocab import Grade
from handlers import items as common
from handlers.ops.base import Actor, Work
from handlers.ops.events import ItemReported
from handlers.ops.grade import ItemGraded
from handlers.policy import local_time, remaining_text, span_text
from handlers.standins import with_stand_ins
from store import outbox

ACCEPTED = (
    "已受理舆情线索 #{n}\n"
    "来源：{source}｜类别：{category}\n"
    "建议牵头单位：{unit}\n"
    "请于 {due} 前定级，直接回复：1 重大｜2 较大｜3 一般\n"
    "（也可发送“定级 #{n} 重大”）"
)
STILL_UNGRADED = "（#{n} 仍待定级，请发送“定级 #{n} 等级”。）"
FROM_API = "摘要：{summary}{link}\n上报：{source}（接口）{suggested}"
SUGGESTED = "，建议等级：{grade}"
HEADER_NEW = "【舆情通报】#{n} {grade}舆情"
HEADER_REGRADE = "【舆情通报】#{n} 等级调整：{old} → {grade}"
HEADER_DOWNGRADE = "【舆情通报】#{n} 等级调整（下调）：{old} → {grade}"
ADJUSTMENT = "原定级：{grader} {at}（{old}）\n调整理由：{reason}\n"
NOTICE_BODY = (
    "摘要：{summary}\n"
    "来源：{source}\n"
    "牵头单位：{units}\n"
    "定级：{who} {at}\n"
    "{adjustment}"
    "签收时限：{pass_on}（上报后{pass_on_span}内{pass_on_state}）\n"
    "回应时限：{response}（上报后{response_span}内{response_state}）\n"
    "{ask}"
)
ASK_ACK = "请相关负责同志及时签收处置：发送“签收 #{n}”。"
ASK_CONTINUE = "该线索已签收，请按调整后的时限继续处置。"
EMERGENCY_WARNING = "\n提示：该线索类别为“{category}”，定为一般请再次研判确认。"


@dataclass(frozen=True)
class Notice:
    text: str
    mentions: tuple[str, ...]


def accepted(directory: Directory, event: ItemReported, *, reporter: Actor) -> Notice:
    """The acceptance of a report and its grade question. It @-mentions only the officers on duty
    who were asked (not the reporter, who knows)."""
    item = event.item
    text = ACCEPTED.format(
        n=item.number, source=item.source, category=item.category, unit=directory.unit_name(item.lead_unit_id),
        due=local_time(item.grade_due_at, directory.config.tz),
    )
    if not reporter.is_person:
        suggested = SUGGESTED.format(grade=event.suggested_grade) if event.suggested_grade else ""
        link = common.public_link(item, item.link)
        text += "\n" + FROM_API.format(summary=common.notice_summary(item), link=f" {link}" if link else "",
                                       source=reporter.name, suggested=suggested)
    if event.replaced_grade_question is not None:
        text += "\n" + STILL_UNGRADED.format(n=event.replaced_grade_question)
    mentions = tuple(p for p in event.officers_on_duty if p != reporter.id and p in event.asked)
    return Notice(text, mentions)


async def announce_reported(work: Work, event: ItemReported, reporter: Actor) -> None:
    """Post the acceptance in the item's chat through the outbox (a report that did not come from
    that chat), once per item whatever retries the door sees."""
    await announce_reported_many(work, [event], reporter)


async def announce_reported_many(work: Work, events: Sequence[ItemReported], reporter: Actor) -> None:
    """`announce_reported` for a batch: one outbox statement, and the leave of the people mentioned
    looked up once per distinct set of them (a batch into one chat mentions the same officers)."""
    suffixes: dict[tuple[str, ...], tuple[str, tuple[str, ...]]] = {}
    messages = []
    for event in events:
        notice = accepted(work.directory, event, reporter=reporter)
        if notice.mentions not in suffixes:
            suffixes[notice.mentions] = await with_stand_ins(
                work.session, work.now, work.directory, "", notice.mentions)
        suffix, mentions = suffixes[notice.mentions]
        messages.append({"key": f"notice:item{event.item.id}:reported", "chat_id": event.item.chat_id,
                         "text": notice.text + suffix, "mentions": mentions, "item_id": event.item.id})
    await outbox.enqueue_many(work.session, messages, now=work.now)


def _state(due: datetime, stopped: datetime | None, word: str, now: datetime) -> str:
    """"，已签收" for a stopped clock, "，已超时1小时30分钟" for one already past, else nothing."""
    if stopped is not None:
        return f"，{word}"
    return f"，{remaining_text(due, now)}" if due <= now else ""


def _header(event: ItemGraded) -> str:
    n, new = event.item.number, event.grade.value
    if event.old is None:
        return HEADER_NEW.format(n=n, grade=new)
    template = HEADER_DOWNGRADE if event.downgraded else HEADER_REGRADE
    return template.format(n=n, old=event.old.value, grade=new)


def graded(work: Work, event: ItemGraded) -> Notice:
    """The grade notice (【舆情通报】): deadlines, who graded, the adjustment of a regrade, and
    whom the policy @-mentions. A regrade after 签收 does not ask for 签收 again."""
    item, tz, directory = event.item, work.config.tz, work.directory
    rules = work.config.policy.for_grade(event.grade)
    adjustment = ""
    if event.old is not None and event.previous is not None and (event.reason or event.downgraded):
        shown = common.public_detail(item, event.reason) if event.reason else "未说明"
        grader = directory.people.get(event.previous[0])
        adjustment = ADJUSTMENT.format(grader=grader.name if grader else event.previous[0], old=event.old.value,
                                       reason=shown, at=local_time(event.previous[1], tz))
    link = common.public_link(item, item.link)
    assert item.pass_on_due_at is not None and item.response_due_at is not None
    body = NOTICE_BODY.format(
        summary=common.notice_summary(item), source=f"{item.source} {link}" if link else item.source,
        units="、".join(directory.unit_name(u) for u in event.units) or "未指定",
        who=event.by.name, at=local_time(work.now, tz), adjustment=adjustment,
        pass_on=local_time(item.pass_on_due_at, tz), pass_on_span=span_text(rules.pass_on_minutes),
        pass_on_state=_state(item.pass_on_due_at, item.acknowledged_at, "已签收", work.now),
        response=local_time(item.response_due_at, tz), response_span=span_text(rules.response_minutes),
        response_state=_state(item.response_due_at, item.responded_at, "已回应", work.now),
        ask=(ASK_CONTINUE if item.acknowledged_at else ASK_ACK.format(n=item.number)),
    )
    text = f"{_header(event)}\n{body}"
    if event.grade is Grade.GENERAL and item.category in work.config.policy.emergency_categories:
        text += EMERGENCY_WARNING.format(category=item.category)
    return Notice(text, event.mentions)


async def announce_graded(work: Work, event: ItemGraded, notice: Notice, *, chat: ChatConfig) -> None:
    """The coordinators' copy of a grade notice, when the policy asks for one (a grade that is
    copied, or any downgrade when policy.copies.downgrade)."""
    policy = work.config.policy
    if policy.for_grade(event.grade).copy_to_coordinators or (event.downgraded and policy.copies.downgrade):
        key = f"notice:item{event.item.id}:grade:{event.event_id}"
        await work.copy_to_coordinators(event.item.id, notice.text, key, besides=chat)
