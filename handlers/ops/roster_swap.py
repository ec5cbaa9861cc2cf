"""换班 (asked, then agreed or declined by the other person) and 代班: the operations
(handlers/ops/roster.py says what every roster change does).

A 换班 is a question to the other person (a dialogue: DialogueKind.SWAP, payload SwapQuestion) that
lapses after `roster.swap_answer_hours` or when the first shift concerned begins. Nobody is put on
a shift during their own leave: the request is refused with the leave, also when the leave was
registered between the question and the answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.config import ChatConfig, PersonConfig
from domain.dialogues import DialogueKind, ShiftPart, SwapQuestion
from domain.vocab import Role
from handlers.ops.base import Actor, Work
from handlers.ops.roster import (
    AlreadyOn,
    CoverNobody,
    CoverSelf,
    CoverWhom,
    NotAPerson,
    NotEligible,
    NotOnShift,
    OnLeave,
    RosterChange,
    RosterRefusal,
    SelfSwap,
    ShiftCovered,
    ShiftEnded,
    ShiftsSwapped,
    SwapAsked,
    SwapDeclined,
    SwapExpired,
    SwapStale,
    UnknownPerson,
    WhichShift,
)
from handlers.ops.roster_steps import (
    eligible,
    find_person,
    has_roster,
    name,
    on_leave,
    person_of,
    person_range,
    record,
    roster_of,
    settle,
    shifts_named,
    slot_of,
    stored_parts,
)
from handlers.ops.roster_text import part_line
from handlers.roster_parse import ShiftExpr
from handlers.roster_rules import DUTY_ROLES
from handlers.roster_service import Roster
from handlers.roster_view import ShiftView
from store import pending
from store import roster as store
from store.models import RosterOverride
from store.pending import Question

# However soon the shift begins, the other person has this long to answer.
MIN_ANSWER_TIME = timedelta(minutes=5)


def _part(view: ShiftView, role: Role, start: datetime, end: datetime, giver: str, taker: str) -> ShiftPart:
    return ShiftPart(day=view.day, shift=view.name, role=role, start=start, end=end, giver=giver, taker=taker)


# -- 换班 ------------------------------------------------------------------------------------------------


async def ask_swap(
    work: Work, actor: Actor, chat: ChatConfig, target_name: str, give_expr: ShiftExpr, take_expr: ShiftExpr | None
) -> SwapAsked | RosterRefusal:
    """Ask `target_name` to take the actor's shift (and, for an exchange, give theirs)."""
    me = person_of(work, actor)
    if isinstance(me, NotAPerson):
        return me
    refused = await has_roster(work, chat, RosterChange.SWAP)
    if refused is not None:
        return refused
    target = find_person(work, target_name)
    if target is None:
        return UnknownPerson(target_name)
    if target.id == me.id:
        return SelfSwap()
    roster = roster_of(work)
    give = await _pick_shift(work, roster, chat, give_expr, me, own=True)
    if not isinstance(give, tuple):
        return give
    give_view, (give_role, give_start, give_end) = give
    if any(s.person == target.id for s in give_view.of(give_role)):
        return AlreadyOn(target, give_view.day, give_view.name, give_role)
    if not await eligible(work, chat, target.id, give_role):
        return NotEligible(target, (give_role,))
    leave = await on_leave(work, target, give_start, give_end, RosterChange.SWAP)
    if leave is not None:
        return leave
    parts = [_part(give_view, give_role, give_start, give_end, me.id, target.id)]
    if take_expr is not None:
        take = await _pick_shift(work, roster, chat, take_expr, target, own=False)
        if not isinstance(take, tuple):
            return take
        take_view, (take_role, take_start, take_end) = take
        if not await eligible(work, chat, me.id, take_role):
            return NotEligible(me, (take_role,))
        leave = await on_leave(work, me, take_start, take_end, RosterChange.SWAP)
        if leave is not None:
            return leave
        parts.append(_part(take_view, take_role, take_start, take_end, target.id, me.id))
    # The question lapses after the configured hours, or when the first shift concerned begins.
    expires = work.now + timedelta(hours=work.config.roster.swap_answer_hours)
    expires = max(min([expires, *(p.start for p in parts if p.start > work.now)]), work.now + MIN_ANSWER_TIME)
    question = SwapQuestion(asker=me.id, target=target.id, parts=tuple(parts))
    await pending.ask(work.session, platform=chat.platform.value, chat_id=chat.id, users=[target.id],
                      kind=DialogueKind.SWAP, item_id=None, asked_at=work.now, expires_at=expires, payload=question)
    await record(work, actor, chat, "roster_swap_asked", f"{me.name} 请 {target.name} 换班",
                 after={"parts": [p.model_dump(mode="json", by_alias=True) for p in parts]})
    return SwapAsked(me, target, question, expires)


async def _pick_shift(work: Work, roster: Roster, chat: ChatConfig, expr: ShiftExpr, person: PersonConfig, *,
                      own: bool) -> tuple[ShiftView, tuple[Role, datetime, datetime]] | RosterRefusal:
    views = await shifts_named(work, roster, chat, expr)
    if not isinstance(views, list):
        return views
    day, shift = views[0].day, expr.shift or ""
    ended = [v for v in views
             if any(s.person == person.id for r in DUTY_ROLES for s in v.of(r)) and v.end <= work.now]
    mine = [v for v in views if person_range(v, person.id, work.now) is not None]
    if not mine:
        return ShiftEnded(RosterChange.SWAP, day, shift) if ended else NotOnShift(person, day, shift, own)
    if len(mine) > 1:
        return WhichShift(RosterChange.SWAP, day, tuple(v.name for v in mine))
    found = person_range(mine[0], person.id, work.now)
    assert found is not None
    return mine[0], found


async def answer_swap(
    work: Work, actor: Actor, chat: ChatConfig, question: Question[SwapQuestion], *, agree: bool
) -> ShiftsSwapped | SwapDeclined | SwapExpired | SwapStale | OnLeave | NotAPerson:
    """The answer of the person asked (the question is closed whatever the answer)."""
    me = person_of(work, actor)
    if isinstance(me, NotAPerson):
        return me
    asked = question.payload
    await pending.close(work.session, question.id)
    if question.expires_at <= work.now:
        return SwapExpired(asked, question.expires_at)
    parts = [p.model_dump(mode="json", by_alias=True) for p in asked.parts]
    if not agree:
        await record(work, actor, chat, "roster_swap_declined", f"{me.name} 拒绝 {name(work, asked.asker)} 的换班申请",
                     after={"parts": parts})
        return SwapDeclined(me, asked)
    stale = await _stale(work, chat, asked)
    if stale is not None:
        return stale
    for part in asked.parts:
        await store.add(work.session, RosterOverride(
            chat_id=chat.id, person_id=part.taker, replaces=part.giver, start_at=max(part.start, work.now),
            end_at=part.end, kind="swap", created_at=work.now, created_by=me.id))
    summary = "；".join(part_line(p, work.directory, work.config.tz) for p in asked.parts)
    event = await record(work, actor, chat, "roster_swap", f"{name(work, asked.asker)} 与 {me.name} 换班：{summary}",
                         before={"parts": [{"person": p.giver, **slot_of(p)} for p in asked.parts]},
                         after={"parts": [{"person": p.taker, **slot_of(p)} for p in asked.parts]})
    days = [p.day for p in asked.parts]
    found = await settle(work, roster_of(work), min(days), max(days), RosterChange.SWAP.value, event, [chat.id])
    return ShiftsSwapped(me, asked, await stored_parts(work, chat, asked.parts), found, event)


async def _stale(work: Work, chat: ChatConfig, asked: SwapQuestion) -> SwapStale | OnLeave | None:
    """The roster or a leave may have changed since the question was asked."""
    for part in asked.parts:
        start = max(part.start, work.now)
        rows = await store.shifts_between(work.session, start, part.end, chat_id=chat.id, person_id=part.giver)
        if not any(r.role == part.role for r in rows):
            return SwapStale(asked, part)
        taker = work.directory.people.get(part.taker)
        if taker is not None:
            leave = await on_leave(work, taker, start, part.end, RosterChange.SWAP)
            if leave is not None:
                return leave
    return None


# -- 代班 ------------------------------------------------------------------------------------------------


async def cover(
    work: Work, actor: Actor, chat: ChatConfig, expr: ShiftExpr, replaces: str | None
) -> ShiftCovered | RosterRefusal:
    """The actor takes someone's shift (the one person on it, or `replaces`)."""
    me = person_of(work, actor)
    if isinstance(me, NotAPerson):
        return me
    refused = await has_roster(work, chat, RosterChange.COVER)
    if refused is not None:
        return refused
    roster = roster_of(work)
    views = await shifts_named(work, roster, chat, expr)
    if not isinstance(views, list):
        return views
    original = None
    if replaces is not None:
        original = find_person(work, replaces)
        if original is None:
            return UnknownPerson(replaces)
    roles = tuple([r for r in (Role.DUTY_OFFICER, Role.DUTY_LEADER) if await eligible(work, chat, me.id, r)])
    day, shift = views[0].day, expr.shift or ""
    if not roles:
        return NotEligible(me, (Role.DUTY_OFFICER, Role.DUTY_LEADER))
    open_views = [v for v in views if v.end > work.now]
    if not open_views:
        return ShiftEnded(RosterChange.COVER, day, shift)
    free = [v for v in open_views if not any(me.id in v.person_ids(r) for r in DUTY_ROLES)]
    if not free:
        return CoverSelf(day, shift)
    choices = [(v, role, p) for v in free for role in roles for p in v.person_ids(role)
               if original is None or p == original.id]
    if not choices:
        return CoverNobody(day, shift, roles)
    if len(choices) > 1:
        return CoverWhom(day, shift, tuple((v.name, p) for v, _, p in choices))
    view, role, person = choices[0]
    found = person_range(view, person, work.now)
    assert found is not None
    _, start, end = found
    leave = await on_leave(work, me, start, end, RosterChange.COVER)
    if leave is not None:
        return leave
    await store.add(work.session, RosterOverride(chat_id=chat.id, person_id=me.id, replaces=person, start_at=start,
                                                 end_at=end, kind="cover", created_at=work.now, created_by=me.id))
    part = _part(view, role, start, end, person, me.id)
    event = await record(work, actor, chat, "roster_cover",
                         f"{me.name} 代 {name(work, person)} 值班：{part_line(part, work.directory, work.config.tz)}",
                         before={"person": person, **slot_of(part)}, after={"person": me.id, **slot_of(part)})
    gaps = await settle(work, roster, view.day, view.day, RosterChange.COVER.value, event, [chat.id])
    [stored] = await stored_parts(work, chat, [part])
    return ShiftCovered(me, stored, gaps, event)
