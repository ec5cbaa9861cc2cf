"""Where a gap in the roster is reported, in one place for the daily gap report (bot/roster_jobs.py)
and for a change in chat that leaves a slot nobody can take (请假, 排班 …): to every admins' chat
with the admins @-mentioned; where the deployment has no admins' chat, in the chat that has the
gap, so a gap is never reported to nobody. Each notice carries an idempotency key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domain.directory import Directory
from domain.vocab import Role
from store import outbox

GAP_NOTICE = "【排班缺口】{chat}因{cause}出现缺口：\n{lines}\n请补排：排班 日期班次 值班员|带班领导 @某人。"


def admins_reachable(directory: Directory) -> bool:
    """Whether a gap reaches the admins in a chat of their own (else it is posted where it is)."""
    return bool(directory.admin_chats())


async def report_to_admins(session: AsyncSession, directory: Directory, now: datetime, *, key: str, text: str,
                           chats_with_gaps: Sequence[str]) -> int:
    """Queue `text` under `key:<chat>` for every admins' chat, or for each chat with a gap when
    there is no admins' chat; returns how many notices were new."""
    targets = [c.id for c in directory.admin_chats()]
    admins = [p.id for p in directory.people_with(Role.ADMIN)] if targets else []
    queued = 0
    for chat_id in targets or list(chats_with_gaps):
        if await outbox.enqueue(session, key=f"{key}:{chat_id}", chat_id=chat_id, text=text, mentions=admins,
                                now=now):
            queued += 1
    return queued
