"""Digests: when a chat's backlog outgrows its robot's rate budget, its waiting messages are
folded into one post. Nothing is dropped to stay under the limit: a line per message keeps what
a duty officer acts on — the item's number, grade, summary line, lead unit and deadline (and the
note that it is sent late) — and the digest @-mentions everyone the messages did.

A digest is sized to go out as one post (a part posted before a failed one would be posted again
on retry, and each part would take a rate slot), and is never folded again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import Sender
from bot.logs import FailureLog
from bot.metrics import Metrics
from bot.outbox_parts import CountsPosts, items_of, posts_needed, wanted
from domain.config import ChatConfig
from domain.directory import Directory
from domain.messages import OutboundMessage
from handlers.deadline_rules import running_clocks
from handlers.items import item_clocks, summary_without_link
from handlers.policy import local_time
from store import outbox
from store import outbox_digest as digest_rows
from store.models import Item, OutboxMessage

log = logging.getLogger(__name__)

DIGEST_MAX = 200
FOLD_LOG_SECONDS = 300.0
FOLD_PAGE = 8  # rows taken at a time for a digest (one post holds some six to a dozen lines)
DIGEST_HEADER = "【汇总】因发送频率限制，以下{count}条消息合并发送："
DIGEST_LINE_MAX = 160  # a message without an item this short goes in whole
SUMMARY_MAX = 60  # the reminders' own summary line is cut at 60 characters too
SUMMARY = "摘要："
NO_LEAD = "未指定"


async def fold_in(
    session: AsyncSession, *, now: datetime, directory: Directory, chat: ChatConfig, until: datetime,
    sender: Sender | None, digest_after: int,
) -> int:
    """Fold the chat's messages waiting past the budget into a digest, in the caller's transaction
    (the one that put them back to wait): a crash leaves either the rows or the digest, never rows
    folded into nothing. Returns how many were folded (0: none). The caller reports it (`folded`)
    once the transaction is committed."""
    if await digest_rows.count_due_for_chat(session, chat.id, until, up_to=digest_after + 1) <= digest_after:
        return 0
    kept, items, folded = await _take_fitting(session, chat, until, sender, directory)
    if len(folded) < 2:
        # Nothing worth folding: put the rows back as they were.
        await digest_rows.mark_merged(session, [row.id for row in kept], digest_rows.PENDING)
        return 0
    await digest_rows.mark_merged(session, [row.id for row in kept[len(folded):]], digest_rows.PENDING)
    text, mentions = digest(folded, items, directory)
    fresh = await outbox.enqueue(
        session, key=f"{outbox.DIGEST_PREFIX}{chat.id}:{folded[0].id}-{folded[-1].id}", chat_id=chat.id,
        text=text, mentions=mentions, now=now, due_at=min(r.due_at for r in folded),
    )
    if not fresh:  # cannot happen (a row is folded once); never leave rows folded into nothing
        log.error("digest for chat %s already existed; its rows stay queued", chat.id)
        await digest_rows.mark_merged(session, [row.id for row in folded], digest_rows.PENDING)
        return 0
    return len(folded)


def digest_log() -> FailureLog:
    """The operators' line about digests: one warning per chat per FOLD_LOG_SECONDS with the count
    of digests since (a backlog folds a digest every few hundred milliseconds; a line each buried
    the log). Each digest still gets its own INFO line."""
    return FailureLog(log, FOLD_LOG_SECONDS, level=logging.WARNING,
                      repeated="（此前 {interval:g} 秒内该群又合并了 {repeats} 条汇总）")


def folded(metrics: Metrics, said: FailureLog, chat: ChatConfig, count: int) -> None:
    """Count and log a digest made by `fold_in`, after its transaction committed."""
    if count:
        metrics.digests.inc()
        log.info("folded %d waiting messages for chat %s into one digest", count, chat.id)
        said.failure(f"digest:{chat.id}", f"群 {chat.id} 的消息超出机器人发送频率限制，等待中的消息合并为汇总发送"
                                              f"（本条汇总 {count} 条）")


async def _take_fitting(
    session: AsyncSession, chat: ChatConfig, until: datetime, sender: Sender | None, directory: Directory,
) -> tuple[list[OutboxMessage], dict[int, Item], list[OutboxMessage]]:
    """Take the chat's waiting rows a page at a time until a digest of them would need a second
    post (or DIGEST_MAX are taken): one post holds six to a dozen lines, and taking DIGEST_MAX rows
    to fold six — then putting the rest back — made a backlog cost more to fold than to take
    in. Returns the rows still wanted (the stale ones are cancelled), their items, and the run of
    them that fits one post."""
    kept: list[OutboxMessage] = []
    items: dict[int, Item] = {}
    while True:
        page = await digest_rows.take_pending_for_chat(session, chat.id, until, FOLD_PAGE)
        items.update(await items_of(session, page, items))
        fresh = [row for row in page if wanted(row, items)]
        if len(fresh) < len(page):
            await digest_rows.mark_merged(session, [row.id for row in page if row not in fresh], digest_rows.CANCELLED)
        kept += fresh
        folded = fitting(kept, chat, sender, items, directory)
        if len(page) < FOLD_PAGE or len(kept) >= DIGEST_MAX or len(folded) < len(kept):
            return kept, items, folded


def fitting(
    rows: Sequence[OutboxMessage], chat: ChatConfig, sender: Sender | None, items: Mapping[int, Item],
    directory: Directory,
) -> list[OutboxMessage]:
    """The longest run of rows whose digest goes out as one post."""
    if sender is None or not isinstance(sender, CountsPosts):
        return list(rows)
    lines = _lines(rows, items, directory)  # each line made once, whatever the search tries

    def fits(count: int) -> bool:
        text, mentions = _joined(rows[:count], lines[:count])
        message = OutboundMessage(chat_id=chat.id, text=text, mentions=tuple(mentions))
        return posts_needed(sender, chat, message) <= 1

    low, high = 1, len(rows)  # fits(1) is not required: a lone row is never a digest
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return list(rows[:low]) if low >= 2 else []


def digest(rows: Sequence[OutboxMessage], items: Mapping[int, Item], directory: Directory) -> tuple[str, list[str]]:
    """A digest's text (a header and one line per message) and its mentions (the union, in order)."""
    return _joined(rows, _lines(rows, items, directory))


def _lines(rows: Sequence[OutboxMessage], items: Mapping[int, Item], directory: Directory) -> list[str]:
    return [digest_line(row, items.get(row.item_id) if row.item_id is not None else None, directory)
            for row in rows]


def _joined(rows: Sequence[OutboxMessage], lines: Sequence[str]) -> tuple[str, list[str]]:
    text = "\n".join([DIGEST_HEADER.format(count=len(rows)), *lines])
    return text, list(dict.fromkeys(p for row in rows for p in row.mentions))


def digest_line(row: OutboxMessage, item: Item | None, directory: Directory) -> str:
    """One line of a digest. A message about an item keeps its first line (which names the item and,
    for a reminder, its grade and deadline) and adds what that line lacks of the summary line,
    grade, lead unit and deadline; a late one keeps its last line, the note that it is sent late
    (补发). Any other message goes in whole when short, else its first line."""
    lines = row.text.splitlines() or [""]
    head = lines[0]
    if item is None:
        text = row.text.replace("\n", " ") if len(row.text) <= DIGEST_LINE_MAX else head
        if row.late and len(lines) > 1 and len(row.text) > DIGEST_LINE_MAX:
            text = f"{text} {lines[-1]}"
        return f"· {text}"
    parts = [head]
    summary = next((line for line in lines[1:] if line.startswith(SUMMARY)), None)
    if SUMMARY not in head:
        parts.append(summary or SUMMARY + _short(summary_without_link(item)))
    grade = item.grade or "未定级"
    if grade not in head:
        parts.append(f"等级：{grade}")
    lead = directory.unit_name(item.lead_unit_id) if item.lead_unit_id else NO_LEAD
    parts.append(f"牵头：{lead}")
    if "时限" not in head:
        due = _deadline(row, item)
        if due is not None:
            parts.append(f"时限：{local_time(due, directory.config.tz)}")
    text = "｜".join(parts)
    if row.late and len(lines) > 1:
        text = f"{text} {lines[-1]}"
    return f"· {text}"


def _deadline(row: OutboxMessage, item: Item) -> datetime | None:
    """The deadline the message is about: a reminder's own, else the item's next running clock."""
    if row.clock_due is not None:
        return row.clock_due
    dues = [clock.due for clock in running_clocks(item_clocks(item))]
    return min(dues) if dues else None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"
