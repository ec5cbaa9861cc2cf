"""Events into notices: the words and @-mentions every door sends alike. A report from the
intake API is announced in the item's chat exactly as the chat's own 上报 is answered (plus the
summary and who reported it, which the chat's own message shows there already)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.directory import Directory
from handlers import items as common
from handlers.ops.base import Actor, Work
from handlers.ops.events import ItemReported
from handlers.policy import local_time
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
    notice = accepted(work.directory, event, reporter=reporter)
    text, mentions = await with_stand_ins(work.session, work.now, work.directory, notice.text, notice.mentions)
    await outbox.enqueue(work.session, key=f"notice:item{event.item.id}:reported", chat_id=event.item.chat_id,
                         text=text, mentions=mentions, now=work.now, item_id=event.item.id)
