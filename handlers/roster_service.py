"""The roster's steps that read or write the store: load a chat's plan, resolve and materialise it
for a window of dates, check coverage, and the roster-backed `DutyLookup`.

Why materialise: "who is on duty at t" is asked for every message (mentions, permissions) and by
every job. Resolving rotations on the fly would mean loading definitions and counting turns from
the rotation's start each time; instead the resolved shifts are stored in `roster_shifts`
(indexed by chat and start) and re-resolved for the affected dates, in the same transaction,
whenever something that decides them changes (import, assignment, override, leave). Jobs,
commands and the CLI read that table directly; the per-message lookup (`RosterDuty`) keeps an
in-memory index of it, dropped when this process commits a roster change and revalidated against
a version counter at most once a second for changes made elsewhere.
"""

from __future__ import annotations

import bisect
import time as time_module
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from domain.config import ChatConfig, Config
from domain.directory import Directory
from domain.vocab import Role
from handlers.calendar import DayType, HolidayCalendar
from handlers.duty import ConfiguredDuty, OnDuty
from handlers.roster_import import ImportBatch
from handlers.roster_limits import DutyLimits
from handlers.roster_resolve import resolve
from handlers.roster_rules import (
    Advance,
    Assignment,
    Coverage,
    Leave,
    Override,
    Plan,
    Resolution,
    Rotation,
    Segment,
    ShiftTemplate,
    Source,
    coverage,
    days_between,
    window_days,
)
from store import audit
from store import roster as store
from store.models import (
    RosterAssignment,
    RosterLeave,
    RosterOverride,
    RosterRotation,
    RosterShift,
    RosterTemplate,
)


def holiday_calendar(config: Config) -> HolidayCalendar:
    overrides = {day: DayType(kind) for day, kind in config.roster.day_types.items()}
    return HolidayCalendar(overrides, config.roster.published_years)


def duty_limits(config: Config) -> DutyLimits:
    return DutyLimits(timedelta(hours=config.roster.max_continuous_hours),
                      timedelta(hours=config.roster.min_rest_hours))


def local_today(now: datetime, config: Config) -> date:
    return now.astimezone(config.tz).date()


def day_start(day: date, config: Config) -> datetime:
    """Local midnight of a date, in UTC."""
    return datetime.combine(day, time(0), tzinfo=config.tz).astimezone(UTC)


# -- rows ⇄ rules ----------------------------------------------------------------------------------


def template_of(row: RosterTemplate) -> ShiftTemplate:
    return ShiftTemplate(row.name, DayType(row.day_type), time.fromisoformat(row.start_time),
                         time.fromisoformat(row.end_time), row.officers, row.leaders)


def rotation_of(row: RosterRotation) -> Rotation:
    return Rotation(Role(row.role), tuple(str(p) for p in row.people), Advance(row.advance), row.start_date,
                    frozenset(str(s) for s in row.shifts))


def plan_of(templates: Iterable[RosterTemplate], rotations: Iterable[RosterRotation],
            assignments: Iterable[RosterAssignment], overrides: Iterable[RosterOverride],
            leaves: Iterable[RosterLeave]) -> Plan:
    return Plan(
        templates=tuple(template_of(t) for t in templates),
        rotations=tuple(rotation_of(r) for r in rotations),
        assignments=tuple(Assignment(a.day, a.shift, Role(a.role), tuple(str(p) for p in a.people))
                          for a in assignments),
        overrides=tuple(Override(o.person_id, o.replaces, o.start_at, o.end_at) for o in overrides),
        leaves=tuple(Leave(v.person_id, v.start_at, v.end_at) for v in leaves),
    )


async def load_plan(session: AsyncSession, chat_id: str, first: date, last: date, config: Config) -> Plan:
    """What decides the chat's shifts on dates first..last."""
    # One day more on each side: resolving looks at the day before and after (limits of duty and rest),
    # and a night shift of the last of them ends the day after.
    start = day_start(first - timedelta(days=1), config)
    end = day_start(last + timedelta(days=3), config)
    return plan_of(
        await store.templates(session, chat_id),
        await store.rotations(session, chat_id),
        await store.assignments(session, chat_id, first - timedelta(days=1), last + timedelta(days=1)),
        await store.overrides(session, chat_id, start, end),
        await store.leaves(session, start, end),
    )


def segment_row(chat_id: str, seg: Segment) -> dict[str, Any]:
    return {
        "chat_id": chat_id, "day": seg.day, "shift": seg.shift, "shift_start": seg.shift_start,
        "shift_end": seg.shift_end, "role": seg.role.value, "slot": seg.slot, "person_id": seg.person,
        "start_at": seg.start, "end_at": seg.end, "source": seg.source.value, "provisional": seg.provisional,
    }


# -- materialising ----------------------------------------------------------------------------------


@dataclass
class Roster:
    """The roster operations of one running bot (config + holiday calendar)."""

    config: Config
    directory: Directory
    calendar: HolidayCalendar
    limits: DutyLimits

    @classmethod
    def build(cls, config: Config, directory: Directory) -> Roster:
        return cls(config, directory, holiday_calendar(config), duty_limits(config))

    def resolve(self, plan: Plan, first: date, last: date) -> Resolution:
        return resolve(plan, first, last, self.calendar, self.config.tz, self.limits)

    def today(self, now: datetime) -> date:
        return local_today(now, self.config)

    def horizon(self, now: datetime) -> date:
        return self.today(now) + timedelta(days=self.config.roster.horizon_days)

    async def rebuild(self, session: AsyncSession, chat_id: str, first: date, last: date) -> None:
        """Resolve dates first..last again and swap them into roster_shifts."""
        if last < first:
            return
        plan = await load_plan(session, chat_id, first, last, self.config)
        resolution = self.resolve(plan, first, last)
        await store.replace_shifts(session, chat_id, first, last,
                                   [segment_row(chat_id, s) for s in resolution.segments])
        await store.bump_version(session)

    async def rebuild_changed(self, session: AsyncSession, now: datetime, first: date, last: date,
                              chats: Sequence[str] | None = None) -> None:
        """After a change touching dates first..last: re-resolve them (never dates long past)."""
        first = max(first, self.today(now) - timedelta(days=1))
        last = min(last, self.horizon(now))
        for chat_id in chats if chats is not None else await store.roster_chats(session):
            await self.rebuild(session, chat_id, first, last)

    async def rebuild_all(self, session: AsyncSession, now: datetime, chats: Sequence[str] | None = None,
                          until: date | None = None) -> None:
        """From yesterday to the horizon (after an import, or when the definitions change)."""
        last = max(self.horizon(now), until or self.horizon(now))
        for chat_id in chats if chats is not None else await store.roster_chats(session):
            await self.rebuild(session, chat_id, self.today(now) - timedelta(days=1), last)

    async def extend_horizon(self, session: AsyncSession, now: datetime) -> list[str]:
        """Resolve the days that have come within the horizon since the last run; returns the chats extended."""
        extended = []
        target = self.horizon(now)
        for chat_id in await store.roster_chats(session):
            last = await store.last_day(session, chat_id)
            first = self.today(now) - timedelta(days=1) if last is None else last + timedelta(days=1)
            first = max(first, self.today(now) - timedelta(days=1))
            if first <= target:
                await self.rebuild(session, chat_id, first, target)
                extended.append(chat_id)
        return extended

    # -- coverage --------------------------------------------------------------------------------

    def reachable(self, person_id: str) -> bool:
        person = self.directory.people.get(person_id)
        return person is not None and bool(person.mobile or person.wecom_userid or person.dingtalk_userid)

    async def check(self, session: AsyncSession, start: datetime, end: datetime,
                    chats: Sequence[str] | None = None) -> dict[str, Coverage]:
        """Coverage of [start, end) per chat with a roster, resolved afresh from the definitions."""
        first, last = window_days(start, end, self.config.tz)
        result = {}
        for chat_id in chats if chats is not None else await store.roster_chats(session):
            plan = await load_plan(session, chat_id, first, last, self.config)
            resolution = self.resolve(plan, first, last)
            found = coverage(resolution, start, end, self.reachable, self.limits)
            inside = [d for d in found.unknown_days if day_start(d, self.config) < end
                      and day_start(d + timedelta(days=1), self.config) > start]
            result[chat_id] = Coverage(found.gaps, found.unreachable, inside, found.strains)
        return result


@dataclass
class _ChatIndex:
    """One chat's materialised rows from `since` on, sorted by start, as of one roster version."""

    version: int
    checked: float  # monotonic time the version was last confirmed
    since: datetime
    has_roster: bool
    starts: list[datetime]
    rows: list[tuple[datetime, datetime, str, int, str]]

    def at(self, when: datetime) -> list[tuple[str, str]]:
        low = bisect.bisect_left(self.starts, when - store.MAX_SHIFT)
        high = bisect.bisect_right(self.starts, when)
        found = sorted((role, slot, start, person) for start, end, role, slot, person in self.rows[low:high]
                       if end > when)
        return [(role, person) for role, _, _, person in found]


class RosterDuty:
    """The DutyLookup backed by the roster; chats without a roster keep the configured people.

    Answers from an in-memory index of each chat's materialised rows (from two days before the
    first lookup onwards): a binary search, microseconds, whatever the size of the roster.
    The index is dropped the moment a transaction of this process that changed the roster commits
    (`watch` hooks the engine's commit event), and the roster version counter is re-read at most
    every `revalidate` seconds, so a change made by another process or replica (the CLI, a second
    instance) is seen within that time. A session that has itself changed the roster and not
    committed yet reads the table directly; so do lookups of times before the cached window.
    """

    KEEP_BEFORE = timedelta(days=2)

    def __init__(self, directory: Directory, *, revalidate: float = 1.0,
                 monotonic: Callable[[], float] = time_module.monotonic) -> None:
        self._fallback = ConfiguredDuty(directory)
        self._cache: dict[str, _ChatIndex] = {}
        self._revalidate = revalidate
        self._monotonic = monotonic

    def watch(self, engine: AsyncEngine) -> None:
        """Drop the cache when a roster change committed through this engine."""
        event.listen(engine.sync_engine, "commit", self._on_commit)
        event.listen(engine.sync_engine, "rollback", self._on_rollback)

    def _on_commit(self, connection: Connection) -> None:
        if connection.info.pop(store.DIRTY, False):
            self._cache.clear()

    def _on_rollback(self, connection: Connection) -> None:
        connection.info.pop(store.DIRTY, None)

    async def on_duty(self, session: AsyncSession, chat: ChatConfig, at: datetime) -> OnDuty:
        rows = await self._rows(session, chat.id, at)
        if rows is None:
            return await self._fallback.on_duty(session, chat, at)
        officers = tuple(dict.fromkeys(p for role, p in rows if role == Role.DUTY_OFFICER.value))
        leaders = tuple(dict.fromkeys(p for role, p in rows if role == Role.DUTY_LEADER.value))
        return OnDuty(officers, leaders)

    async def _rows(self, session: AsyncSession, chat_id: str, at: datetime) -> list[tuple[str, str]] | None:
        """(role, person) on duty, or None when the chat has no roster."""
        if store.changed_in(session):
            return await self._from_table(session, chat_id, at, None)
        index = self._cache.get(chat_id)
        now = self._monotonic()
        if index is not None and now - index.checked >= self._revalidate:
            version = await store.version(session)
            if version == index.version:
                index.checked = now
            else:
                index = None
        if index is None:
            index = await self._load(session, chat_id, at - self.KEEP_BEFORE, now)
        if at < index.since:  # history before the cached window
            return await self._from_table(session, chat_id, at, index.has_roster)
        return index.at(at) if index.has_roster else None

    async def _from_table(self, session: AsyncSession, chat_id: str, at: datetime, has_roster: bool | None
                          ) -> list[tuple[str, str]] | None:
        rows = await store.on_duty_at(session, chat_id, at)
        if rows:
            return rows
        if has_roster is None:
            has_roster = await store.has_roster(session, chat_id)
        return rows if has_roster else None

    async def _load(self, session: AsyncSession, chat_id: str, since: datetime, now: float) -> _ChatIndex:
        version = await store.version(session)
        rows = await store.rows_since(session, chat_id, since)
        has_roster = bool(rows) or await store.has_roster(session, chat_id)
        typed = [(r[0], r[1], str(r[2]), int(r[3]), str(r[4])) for r in rows]
        index = _ChatIndex(version, now, since, has_roster, [r[0] for r in typed], typed)
        self._cache[chat_id] = index
        return index


# -- reading the roster for people -------------------------------------------------------------------


def segment_of(row: RosterShift) -> Segment:
    return Segment(row.day, row.shift, row.shift_start, row.shift_end, Role(row.role), row.slot, row.person_id,
                   row.start_at, row.end_at, Source(row.source), row.provisional)


async def segments_for_days(roster: Roster, session: AsyncSession, chat_id: str, first: date, last: date
                            ) -> list[Segment]:
    """The shifts of dates first..last: as materialised, and resolved afresh for dates never materialised
    (before the roster was imported, or beyond the horizon)."""
    rows = [segment_of(r) for r in await store.shifts_on_days(session, chat_id, first, last)]
    have = {s.day for s in rows}
    missing = [d for d in days_between(first, last) if d not in have]
    if missing:
        plan = await load_plan(session, chat_id, missing[0], missing[-1], roster.config)
        resolution = roster.resolve(plan, missing[0], missing[-1])
        rows += [s for s in resolution.segments if s.day not in have]
    rows.sort(key=lambda s: (s.shift_start, s.role is Role.DUTY_OFFICER, s.slot, s.start))
    return rows


async def segments_of_person(session: AsyncSession, person_id: str, start: datetime, end: datetime
                             ) -> list[tuple[str, Segment]]:
    return [(r.chat_id, segment_of(r)) for r in await store.shifts_between(session, start, end, person_id=person_id)]


# -- import ---------------------------------------------------------------------------------------


async def apply_import(roster: Roster, session: AsyncSession, batch: ImportBatch, now: datetime, actor: str,
                       until: date | None = None) -> None:
    """Write a validated batch: the chats' shifts and rotations are replaced, the rest is added
    (an identical assignment, override or leave already present is not added twice)."""
    template_chats = {t.chat for t in batch.templates}
    rotation_chats = {r.chat for r in batch.rotations}
    for chat in sorted(template_chats | rotation_chats):
        templates = [RosterTemplate(chat_id=chat, name=t.template.name, day_type=t.template.day_type.value,
                                    start_time=f"{t.template.start:%H:%M}", end_time=f"{t.template.end:%H:%M}",
                                    officers=t.template.officers, leaders=t.template.leaders)
                     for t in batch.templates if t.chat == chat]
        rotations = [RosterRotation(chat_id=chat, role=r.rotation.role.value, shifts=sorted(r.rotation.shifts),
                                    people=list(r.rotation.people), advance=r.rotation.advance.value,
                                    start_date=r.rotation.start)
                     for r in batch.rotations if r.chat == chat]
        await store.replace_definitions(session, chat, templates if chat in template_chats else None,
                                        rotations if chat in rotation_chats else None)
    for a in batch.assignments:
        await store.set_assignment(session, RosterAssignment(
            chat_id=a.chat, day=a.day, shift=a.shift, role=a.role.value, people=list(a.people), created_at=now,
            created_by=actor))
    known = {(o.chat_id, o.person_id, o.replaces, o.start_at, o.end_at) for o in await store.overrides(session, None)}
    for o in batch.overrides:
        if (o.chat, o.person, o.replaces, o.start, o.end) not in known:
            await store.add(session, RosterOverride(chat_id=o.chat, person_id=o.person, replaces=o.replaces,
                                                    start_at=o.start, end_at=o.end, kind="import", created_at=now,
                                                    created_by=actor))
    had = {(v.person_id, v.start_at, v.end_at) for v in await store.leaves(session)}
    for v in batch.leaves:
        if (v.person, v.start, v.end) not in had:
            await store.add(session, RosterLeave(person_id=v.person, start_at=v.start, end_at=v.end, reason=v.reason,
                                                 created_at=now, created_by=actor))
    await audit.record(session, at=now, actor=actor, action="roster_import", detail=batch.summary(),
                       after={"chats": batch.chats()})
    await roster.rebuild_all(session, now, until=until)
