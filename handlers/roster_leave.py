"""请假 and 销假 in chat: the chat door of handlers/ops/roster_leave.py.

请假: the confirmation names, per shift, who covers it as the stored roster now says, or that nobody
can (that gap went to the admins like the daily gap report). 销假: the confirmation names the
person's shifts that come back, read back from the roster.
"""

from __future__ import annotations

from domain.vocab import Role
from handlers.context import Context, Outcome
from handlers.ops import roster_leave as ops
from handlers.ops.roster import LeaveCancelled, LeaveTaken
from handlers.ops.roster_slots import Slot
from handlers.ops.roster_text import leave_span
from handlers.roster_common import chat_name, refused
from handlers.roster_gaps import admins_reachable
from handlers.roster_parse import DayExpr, RangeExpr
from handlers.roster_rules import Segment
from handlers.roster_view import day_label, name_of, when_label

USAGE_LEAVE = ("用法：请假 开始日期 [至 结束日期] [事由]，例如：请假 11-25 至 11-27 外出培训；"
               "也可写时间：请假 11-25 08:30 至 11-25 17:30")
USAGE_CANCEL = "用法：销假 [日期]，例如：销假 11-25；管理员为他人销假：销假 @孙丽 11-25"
LEAVE_DONE = "【请假】{name} 请假：{span}{reason}。"
LEAVE_NONE_AFFECTED = "期间没有{name}的班次，排班不变。"
LEAVE_CHANGES = "期间班次安排："
LEAVE_LINE = "{day} {shift}{role}：{text}"
COVERED_BY = "{people}顶替"
NOBODY_TO_ADMINS = "无人可顶替，已报管理员"
NOBODY_HERE = "无人可顶替，请管理员补排"
STILL_ON = "仍由{people}值班"
CANCEL_DONE = "【销假】{name} 销假：{spans}。"
CANCEL_BACK = "恢复的班次："
CANCEL_NO_SHIFTS = "期间没有{name}的班次。"
CANCEL_LINE = "{day} {shift} {role}：{people}"


def _people(ctx: Context, segments: list[Segment]) -> str:
    return "、".join(dict.fromkeys(name_of(s.person, ctx.directory) for s in segments))


def _grouped(ctx: Context, lines: list[tuple[str, str]]) -> list[str]:
    """The same line in several chats (one team on two platforms) once; other chats named."""
    chats: dict[str, list[str]] = {}
    for chat_id, line in lines:
        chats.setdefault(line, []).append(chat_id)
    return [line if ctx.chat.id in where else line + "（" + "、".join(chat_name(ctx, c) for c in where) + "）"
            for line, where in chats.items()]


def _slot_line(slot: Slot, text: str) -> str:
    role = "" if slot.role is Role.DUTY_OFFICER else f" {slot.role.value}"
    return LEAVE_LINE.format(day=day_label(slot.day), shift=slot.shift, role=role, text=text)


async def leave(ctx: Context, name: str | None, expr: RangeExpr, reason: str) -> Outcome:
    event = await ops.take_leave(ctx.work(), ctx.actor(), ctx.chat, name, expr, reason)
    if not isinstance(event, LeaveTaken):
        return await refused(ctx, event)
    person = event.person
    span_text = f"{when_label(event.start, ctx.tz)} 至 {when_label(event.end, ctx.tz)}"
    lines = [LEAVE_DONE.format(name=person.name, span=span_text, reason=f"（{event.reason}）" if event.reason else "")]
    if not event.before:
        lines.append(LEAVE_NONE_AFFECTED.format(name=person.name))
        return Outcome.say("\n".join(lines), [person.id])
    nobody = NOBODY_TO_ADMINS if admins_reachable(ctx.directory) else NOBODY_HERE
    found: list[tuple[str, str]] = []
    mentions = [person.id]
    for slot, segments in sorted(event.before.items(), key=lambda pair: (pair[0].start, pair[0].chat_id)):
        had = {s.person for s in segments}
        now_on = event.after.get(slot, [])
        new = [s for s in now_on if s.person not in had]
        if any(s.person == person.id for s in now_on):
            text = STILL_ON.format(people=_people(ctx, [s for s in now_on if s.person == person.id]))
        else:
            text = COVERED_BY.format(people=_people(ctx, new)) if new else nobody
        mentions += [s.person for s in new]
        found.append((slot.chat_id, _slot_line(slot, text)))
    lines += [LEAVE_CHANGES, *_grouped(ctx, found)]
    return Outcome.say("\n".join(lines), list(dict.fromkeys(mentions)))


# -- 销假 ------------------------------------------------------------------------------------------------


async def cancel_leave(ctx: Context, name: str | None, day: DayExpr | None) -> Outcome:
    event = await ops.cancel_leave(ctx.work(), ctx.actor(), ctx.chat, name, day)
    if not isinstance(event, LeaveCancelled):
        return await refused(ctx, event)
    person = event.person
    spans = "；".join(leave_span(v, ctx.tz)[0] + (f"（{v.reason}）" if v.reason else "") for v in event.leaves)
    lines = [CANCEL_DONE.format(name=person.name, spans=spans)]
    mentions = [person.id]
    back: list[tuple[str, str]] = []
    for slot, segments in sorted(event.after.items(), key=lambda pair: (pair[0].start, pair[0].chat_id)):
        mentions += [s.person for s in event.before.get(slot, []) if s.person != person.id]  # no longer needed
        back.append((slot.chat_id, CANCEL_LINE.format(day=day_label(slot.day), shift=slot.shift,
                                                      role=slot.role.value, people=_people(ctx, segments))))
    lines += [CANCEL_BACK, *_grouped(ctx, back)] if back else [CANCEL_NO_SHIFTS.format(name=person.name)]
    return Outcome.say("\n".join(lines), list(dict.fromkeys(mentions)))
