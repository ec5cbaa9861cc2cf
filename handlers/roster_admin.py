"""排班 by admins and coordinators in chat: the chat door of handlers/ops/roster_admin.py — name the
people of one role in one shift, or put one person in another's place for a shift or a time range.
The confirmation is what the stored roster says after the change.
"""

from __future__ import annotations

from domain.vocab import Role
from handlers.context import Context, Outcome
from handlers.ops import roster_admin as ops
from handlers.ops.roster import ShiftAssigned, ShiftReplaced
from handlers.ops.roster_text import VACANT, holders_between, people_between
from handlers.roster_common import gap_warning, refused
from handlers.roster_parse import RangeExpr, ShiftExpr
from handlers.roster_swap import readback
from handlers.roster_view import day_label

ASSIGNED = "【排班】{day} {shift} {role}：{people}（原：{old}）"
OVERRIDDEN = "【排班】{new} 替 {old} 值班：\n{lines}"


async def assign(ctx: Context, expr: ShiftExpr, role: Role, names: tuple[str, ...]) -> Outcome:
    event = await ops.assign(ctx.work(), ctx.actor(), ctx.chat, expr, role, names)
    if not isinstance(event, ShiftAssigned):
        return await refused(ctx, event)
    text = people_between(ctx.directory, ctx.tz, event.segments, event.start, event.end)
    held = holders_between(event.segments, event.start, event.end)
    reply = ASSIGNED.format(day=day_label(event.day), shift=event.shift, role=event.role.value, people=text,
                            old="、".join(ctx.name(p) for p in event.old) or VACANT)
    return Outcome.say("\n".join([reply, *gap_warning(ctx, event.gaps)]),
                       list(dict.fromkeys([*held, *event.people, *event.old])))


async def override(ctx: Context, new_name: str, old_name: str, expr: ShiftExpr | None, range_expr: RangeExpr | None
                   ) -> Outcome:
    event = await ops.replace(ctx.work(), ctx.actor(), ctx.chat, new_name, old_name, expr, range_expr)
    if not isinstance(event, ShiftReplaced):
        return await refused(ctx, event)
    lines, mentions = readback(ctx, event.parts)
    text = OVERRIDDEN.format(new=event.new.name, old=event.old.name, lines="\n".join(lines))
    return Outcome.say("\n".join([text, *gap_warning(ctx, event.gaps)]),
                       list(dict.fromkeys([event.new.id, event.old.id, *mentions])))
