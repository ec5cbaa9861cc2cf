"""换班 (asked, then 同意/拒绝 by the other person) and 代班 in chat.

Nobody is put on a shift during their own leave: the request is refused with the leave and how to
cancel it, also when the leave was registered between the question and the answer. The
confirmation names the people the stored roster has after the change.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from domain.vocab import Role
from handlers.context import Context, Outcome
from handlers.roster_common import (
    ENDED_TEXT,
    NO_ROSTER_CHANGE,
    NOT_ELIGIBLE,
    UNKNOWN_PERSON,
    WHICH_SHIFT,
    eligible,
    find_person,
    gap_warning,
    holders,
    person_range,
    record,
    refuse_if_on_leave,
    roster_of,
    settle,
    shifts_named,
)
from handlers.roster_parse import ShiftExpr
from handlers.roster_rules import DUTY_ROLES
from handlers.roster_service import Roster
from handlers.roster_view import ShiftView, day_label, span, when_label
from store import pending
from store import roster as store
from store.models import PendingQuestion, RosterOverride

NOT_YOURS = "您在{day}{shift}没有值班安排，无法换班。发送“我的值班”查看您的班次。"
NOT_THEIRS = "{name}在{day}{shift}没有值班安排，无法互换。"
SELF_SWAP = "不能和自己换班。"
ALREADY_ON = "{name}已在{day}{shift}值班（{role}）。"
SWAP_ASKED = "已向{to}发出换班申请：\n{lines}\n请{to}回复“同意”或“拒绝”（{expires}前有效）。"
SWAP_DONE = "【换班】{a} 与 {b} 换班已确认：\n{lines}"
SWAP_DECLINED = "{b} 拒绝了 {a} 的换班申请（{summary}），排班不变。"
SWAP_EXPIRED = "该换班申请已于 {at} 过期，排班不变。如仍需换班，请 {a} 重新发起。"
SWAP_STALE = "该换班申请已失效：{summary} 的安排已有变动，排班不变。请重新发起。"
NO_QUESTION = "您当前没有待答复的换班申请。"
SWAP_LINE = "{day} {shift} {span} {role}：{old} → {new}"
COVER_WHOM = "{day}{shift}有多位{role}（{names}），请写明代谁值班，例如：代班 {example} @{first}"
COVER_NOBODY = "{day}{shift}没有可代的{role}班次。"
COVER_SELF = "您已在{day}{shift}值班。"
COVERED = "【代班】{new} 代 {old} 值班：\n{lines}"
ANSWERS_YES = frozenset({"同意", "同意换班", "接受"})
ANSWERS_NO = frozenset({"拒绝", "不同意", "拒绝换班"})


def _iso(when: datetime) -> str:
    return when.isoformat()


def _slot(part: dict[str, Any]) -> dict[str, Any]:
    return {k: part[k] for k in ("day", "shift", "role", "start", "end")}


def _bounds(part: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(part["start"]), datetime.fromisoformat(part["end"])


def part_line(ctx: Context, part: dict[str, Any], new: str | None = None) -> str:
    """One changed slot: what was asked (new=None), or what the stored roster now says (new)."""
    start, end = _bounds(part)
    return SWAP_LINE.format(day=day_label(date.fromisoformat(part["day"])), shift=part["shift"],
                            span=span(start, end, ctx.tz), role=part["role"], old=ctx.name(part["from"]),
                            new=ctx.name(part["to"]) if new is None else new)


async def readback(ctx: Context, parts: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The confirmation lines of changed parts as the stored roster has them now, and who holds them."""
    lines: list[str] = []
    people: list[str] = []
    for part in parts:
        start, end = _bounds(part)
        start = max(start, ctx.now)
        text, held = await holders(ctx, ctx.chat.id, date.fromisoformat(part["day"]), part["shift"],
                                   Role(part["role"]), start, end)
        lines.append(part_line(ctx, {**part, "start": _iso(start)}, text))
        people += held
    return lines, people


def _part(view: ShiftView, role: Role, start: datetime, end: datetime, giver: str, taker: str) -> dict[str, Any]:
    return {"day": view.day.isoformat(), "shift": view.name, "role": role.value,
            "start": _iso(start), "end": _iso(end), "from": giver, "to": taker}


# -- 换班 ------------------------------------------------------------------------------------------------


async def swap(ctx: Context, target_name: str, give_expr: ShiftExpr, take_expr: ShiftExpr | None) -> Outcome:
    if not await store.has_roster(ctx.session, ctx.chat.id):
        return Outcome.say(NO_ROSTER_CHANGE.format(action="换班"))
    target = find_person(ctx, target_name)
    if target is None:
        return Outcome.say(UNKNOWN_PERSON.format(name=target_name))
    if target.id == ctx.sender.id:
        return Outcome.say(SELF_SWAP)
    roster = roster_of(ctx)
    give = await _pick_shift(ctx, roster, give_expr, ctx.sender.id, NOT_YOURS, ctx.sender.name)
    if isinstance(give, Outcome):
        return give
    give_role, give_start, give_end = give[1]
    if any(s.person == target.id for s in give[0].of(give_role)):
        return Outcome.say(ALREADY_ON.format(name=target.name, day=day_label(give[0].day), shift=give[0].name,
                                             role=give_role.value))
    if not await eligible(ctx, target.id, give_role):
        return Outcome.say(NOT_ELIGIBLE.format(name=target.name, role=give_role.value))
    refused = await refuse_if_on_leave(ctx, target, give_start, give_end, "换班")
    if refused is not None:
        return refused
    parts = [_part(give[0], give_role, give_start, give_end, ctx.sender.id, target.id)]
    if take_expr is not None:
        take = await _pick_shift(ctx, roster, take_expr, target.id, NOT_THEIRS, target.name)
        if isinstance(take, Outcome):
            return take
        take_role, take_start, take_end = take[1]
        if not await eligible(ctx, ctx.sender.id, take_role):
            return Outcome.say(NOT_ELIGIBLE.format(name=ctx.sender.name, role=take_role.value))
        refused = await refuse_if_on_leave(ctx, ctx.sender, take_start, take_end, "换班")
        if refused is not None:
            return refused
        parts.append(_part(take[0], take_role, take_start, take_end, target.id, ctx.sender.id))
    # The question lapses after the configured hours, or when the first shift concerned begins.
    expires = ctx.now + timedelta(hours=ctx.config.roster.swap_answer_hours)
    starts = [_bounds(p)[0] for p in parts]
    expires = max(min([expires, *(s for s in starts if s > ctx.now)]), ctx.now + timedelta(minutes=5))
    await pending.ask(ctx.session, platform=ctx.chat.platform.value, chat_id=ctx.chat.id, users=[target.id],
                      kind="swap", item_id=None, asked_at=ctx.now, expires_at=expires,
                      payload={"from": ctx.sender.id, "to": target.id, "parts": parts})
    lines = "\n".join(part_line(ctx, p) for p in parts)
    await record(ctx, "roster_swap_asked", f"{ctx.sender.name} 请 {target.name} 换班", after={"parts": parts})
    return Outcome.say(SWAP_ASKED.format(to=target.name, lines=lines, expires=when_label(expires, ctx.tz)),
                       [target.id])


async def _pick_shift(ctx: Context, roster: Roster, expr: ShiftExpr, person_id: str, missing: str, name: str
                      ) -> tuple[ShiftView, tuple[Role, datetime, datetime]] | Outcome:
    views = await shifts_named(ctx, roster, expr)
    if isinstance(views, Outcome):
        return views
    day = day_label(views[0].day)
    shift = expr.shift or ""
    ended = [v for v in views if any(s.person == person_id for r in DUTY_ROLES for s in v.of(r)) and v.end <= ctx.now]
    mine = [v for v in views if person_range(v, person_id, ctx.now) is not None]
    if not mine:
        if ended:
            return Outcome.say(ENDED_TEXT.format(day=day, shift=shift, action="换班"))
        return Outcome.say(missing.format(day=day, shift=shift, name=name))
    if len(mine) > 1:
        names = "、".join(v.name for v in mine)
        return Outcome.say(WHICH_SHIFT.format(day=day, names=names, example=f"换班 @某人 {day}{mine[0].name}"))
    found = person_range(mine[0], person_id, ctx.now)
    assert found is not None
    return mine[0], found


async def _swap_question(ctx: Context) -> PendingQuestion | None:
    question = await pending.find(ctx.session, ctx.chat.platform.value, ctx.chat.id, ctx.sender.id)
    return question if question is not None and question.kind == "swap" else None


async def answer_swap(ctx: Context) -> Outcome | None:
    """同意 / 拒绝 from the person asked to swap (the question survives restarts; it expires)."""
    word = ctx.text.strip().rstrip("。！!")
    if word not in ANSWERS_YES and word not in ANSWERS_NO:
        return None
    question = await _swap_question(ctx)
    if question is None:
        return Outcome.say(NO_QUESTION) if word in ("同意", "拒绝", "不同意") else None
    asker = str(question.payload.get("from", ""))
    parts: list[dict[str, Any]] = list(question.payload.get("parts", []))
    summary = "；".join(part_line(ctx, p) for p in parts)
    await ctx.session.delete(question)
    if question.expires_at <= ctx.now:
        return Outcome.say(SWAP_EXPIRED.format(at=when_label(question.expires_at, ctx.tz), a=ctx.name(asker)),
                           [asker])
    if word in ANSWERS_NO:
        await record(ctx, "roster_swap_declined", f"{ctx.sender.name} 拒绝 {ctx.name(asker)} 的换班申请",
                     after={"parts": parts})
        return Outcome.say(SWAP_DECLINED.format(a=ctx.name(asker), b=ctx.sender.name, summary=summary), [asker])
    stale = await _stale(ctx, parts, asker)
    if stale is not None:
        return stale
    for part in parts:
        start, end = _bounds(part)
        await store.add(ctx.session, RosterOverride(
            chat_id=ctx.chat.id, person_id=part["to"], replaces=part["from"], start_at=max(start, ctx.now),
            end_at=end, kind="swap", created_at=ctx.now, created_by=ctx.sender.id))
    event = await record(ctx, "roster_swap", f"{ctx.name(asker)} 与 {ctx.sender.name} 换班：{summary}",
                         before={"parts": [{"person": p["from"], **_slot(p)} for p in parts]},
                         after={"parts": [{"person": p["to"], **_slot(p)} for p in parts]})
    days = [date.fromisoformat(p["day"]) for p in parts]
    found = await settle(ctx, roster_of(ctx), min(days), max(days), "换班", event, [ctx.chat.id])
    lines, held = await readback(ctx, parts)
    text = SWAP_DONE.format(a=ctx.name(asker), b=ctx.sender.name, lines="\n".join(lines))
    return Outcome.say("\n".join([text, *gap_warning(ctx, found)]), list(dict.fromkeys([asker, ctx.sender.id, *held])))


async def _stale(ctx: Context, parts: list[dict[str, Any]], asker: str) -> Outcome | None:
    """The roster or a leave may have changed since the question was asked."""
    for part in parts:
        start, end = _bounds(part)
        rows = await store.shifts_between(ctx.session, max(start, ctx.now), end, chat_id=ctx.chat.id,
                                          person_id=part["from"])
        if not any(r.role == part["role"] for r in rows):
            return Outcome.say(SWAP_STALE.format(summary=part_line(ctx, part)), [asker])
        taker = ctx.directory.people.get(part["to"])
        if taker is not None:
            refused = await refuse_if_on_leave(ctx, taker, max(start, ctx.now), end, "换班")
            if refused is not None:
                return refused
    return None


# -- 代班 ------------------------------------------------------------------------------------------------


async def cover(ctx: Context, expr: ShiftExpr, replaces: str | None) -> Outcome:
    if not await store.has_roster(ctx.session, ctx.chat.id):
        return Outcome.say(NO_ROSTER_CHANGE.format(action="代班"))
    roster = roster_of(ctx)
    views = await shifts_named(ctx, roster, expr)
    if isinstance(views, Outcome):
        return views
    original = None
    if replaces is not None:
        original = find_person(ctx, replaces)
        if original is None:
            return Outcome.say(UNKNOWN_PERSON.format(name=replaces))
    roles = [r for r in (Role.DUTY_OFFICER, Role.DUTY_LEADER) if await eligible(ctx, ctx.sender.id, r)]
    day, shift = day_label(views[0].day), expr.shift or ""
    if not roles:
        return Outcome.say(NOT_ELIGIBLE.format(name=ctx.sender.name, role="值班员或带班领导"))
    open_views = [v for v in views if v.end > ctx.now]
    if not open_views:
        return Outcome.say(ENDED_TEXT.format(day=day, shift=shift, action="代班"))
    free = [v for v in open_views if not any(ctx.sender.id in v.person_ids(r) for r in DUTY_ROLES)]
    if not free:
        return Outcome.say(COVER_SELF.format(day=day, shift=shift))
    choices = [(v, role, p) for v in free for role in roles for p in v.person_ids(role)
               if original is None or p == original.id]
    if not choices:
        return Outcome.say(COVER_NOBODY.format(day=day, shift=shift, role="或".join(r.value for r in roles)))
    if len(choices) > 1:
        names = "、".join(f"{v.name}{ctx.name(p)}" for v, _, p in choices)
        return Outcome.say(COVER_WHOM.format(day=day, shift=shift, role="值班人员", names=names,
                                             example=f"{day}{choices[0][0].name}", first=ctx.name(choices[0][2])))
    view, role, person = choices[0]
    found = person_range(view, person, ctx.now)
    assert found is not None
    _, start, end = found
    refused = await refuse_if_on_leave(ctx, ctx.sender, start, end, "代班")
    if refused is not None:
        return refused
    await store.add(ctx.session, RosterOverride(chat_id=ctx.chat.id, person_id=ctx.sender.id, replaces=person,
                                                start_at=start, end_at=end, kind="cover", created_at=ctx.now,
                                                created_by=ctx.sender.id))
    part = _part(view, role, start, end, person, ctx.sender.id)
    event = await record(ctx, "roster_cover", f"{ctx.sender.name} 代 {ctx.name(person)} 值班：{part_line(ctx, part)}",
                         before={"person": person, **_slot(part)}, after={"person": ctx.sender.id, **_slot(part)})
    found_gaps = await settle(ctx, roster, view.day, view.day, "代班", event, [ctx.chat.id])
    lines, held = await readback(ctx, [part])
    text = COVERED.format(new=ctx.sender.name, old=ctx.name(person), lines="\n".join(lines))
    return Outcome.say("\n".join([text, *gap_warning(ctx, found_gaps)]),
                       list(dict.fromkeys([ctx.sender.id, person, *held])))
