"""SQL statements and transactions per chat command: a count, not a timing, so it does not move
with the machine's load (the throughput figures on a shared 2-core VM vary by ±15 % and more).

Each command goes through the real path of a platform message — `MessageHandler.handle` with a
channel and a message id (de-duplication, chat log, the command's writes, the reply queued in
the outbox already claimed), then the outbox worker's task posting the reply (handed over by the
handler after its commit) through a sender that answers OK at once — on a migrated database with
the example configuration. SQLAlchemy's engine events count what reaches the driver: statements
(BEGIN/COMMIT included, as the driver sees them) and transactions, split between the handler's
task and the outbox's.

Rerun:
    .venv/bin/python -m bench.statements                       # SQLite
    .venv/bin/python -m bench.statements --database postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.lateness import _drop_pg, _fresh_pg
from bot.channels.base import DeliveryResult
from bot.clock import SystemClock
from bot.dispatch import HANDLE_TASK
from bot.runtime import Runtime
from domain.config import ChatConfig, load_config
from domain.messages import InboundMessage, OutboundMessage
from domain.vocab import Platform

ROOT = Path(__file__).resolve().parents[1]
CHAT = "dingtalk_duty"
COMMANDS = {
    # A link of its own per message: the same link twice is one item (a supplement), not a report.
    "上报": "上报 网友在微博反映西岸滨河路停水三天无人处理 https://weibo.com/7{id}",
    "查询 #N": "查询 #{n}",
    "值班": "值班",
}


class _OkSender:
    """Answers every post at once, like a platform that accepted it; counts the posts."""

    channel_id = "dingtalk"

    def __init__(self) -> None:
        self.posts = 0

    async def send(self, chat: ChatConfig, message: OutboundMessage) -> DeliveryResult:
        self.posts += 1
        return DeliveryResult(ok=True, detail="ok")


@dataclass
class _Tally:
    statements: Counter[str] = field(default_factory=Counter)
    transactions: Counter[str] = field(default_factory=Counter)
    phase: str = "setup"
    handler: asyncio.Task[Any] | None = None  # statements run by this task are the handler's

    def now(self) -> str:
        if self.phase == "setup":
            return "setup"
        task = asyncio.current_task()
        # The handler writes a platform message in a task of its own (its time budget, bot/dispatch).
        mine = task is self.handler or (task is not None and task.get_name().startswith(HANDLE_TASK))
        return "handler" if mine else "outbox"


def _count(runtime: Runtime, tally: _Tally) -> None:
    engine = runtime.db.engine.sync_engine

    @event.listens_for(engine, "before_cursor_execute")
    def statement(*_: Any) -> None:
        tally.statements[tally.now()] += 1

    @event.listens_for(engine, "begin")
    def begin(*_: Any) -> None:
        tally.transactions[tally.now()] += 1


async def measure(
    runtime: Runtime, sender: _OkSender, text: str, repeat: int, tally: _Tally, first_id: int
) -> dict[str, float]:
    tally.statements.clear()
    tally.transactions.clear()
    for n in range(first_id, first_id + repeat):
        now = runtime.clock.now()
        message = InboundMessage(
            platform=Platform.DINGTALK, chat_id=CHAT, sender_id="sun_li", text=text.format(n=max(1, n // 2), id=n),
            received_at=now, mentions_bot=True, channel="dingtalk", message_id=f"stmt{n}",
            reply_url="https://oapi.dingtalk.com/robot/sendBySession?session=s",
            reply_url_expires_at=now + timedelta(hours=1),
        )
        tally.phase = "counting"
        posts = sender.posts
        # The handler hands its reply, already claimed, to the outbox worker: a task that posts it.
        tally.handler = asyncio.create_task(runtime.handler.handle(message))
        await tally.handler
        await runtime.outbox.drain()
        if sender.posts != posts + 1:
            raise RuntimeError("the reply was not posted at once")
        tally.phase = "setup"
    return {
        "handler_statements": tally.statements["handler"] / repeat,
        "handler_transactions": tally.transactions["handler"] / repeat,
        "outbox_statements": tally.statements["outbox"] / repeat,
        "outbox_transactions": tally.transactions["outbox"] / repeat,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    temp = tempfile.mkdtemp(prefix="dutybot-bench-")
    url, pg_name = args.database or f"sqlite+aiosqlite:///{temp}/statements.db", None
    if url.startswith("postgresql"):
        url, pg_name = await _fresh_pg(url)
    runtime = Runtime.build(load_config(ROOT / "config.example.toml").with_database(url), SystemClock())
    sender = _OkSender()
    runtime.outbox.add_senders({CHAT: sender})
    runtime.outbox.rate_limit = 10**6  # count the budget's statements, never wait for it
    tally = _Tally()
    _count(runtime, tally)
    try:
        await runtime.db.upgrade()
        results = {}
        for index, (name, text) in enumerate(COMMANDS.items()):
            results[name] = await measure(runtime, sender, text, args.repeat, tally,
                                          first_id=index * 10 * args.repeat + 1)
    finally:
        await runtime.db.dispose()
        if pg_name:
            await _drop_pg(args.database, pg_name)
    return {"database": "postgresql" if pg_name else "sqlite", "repeat": args.repeat, "per_command": results}


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="PostgreSQL URL (a fresh database is created and dropped); default SQLite")
    parser.add_argument("--repeat", type=int, default=20, help="commands of each kind (the average is reported)")
    parser.add_argument("--json", help="also write the result as JSON to this file")
    args = parser.parse_args(argv)
    result = asyncio.run(main(args))
    print(f"{result['database']}: SQL per command, averaged over {args.repeat} (handler | outbox, for its reply)")
    for name, figures in result["per_command"].items():
        print(f"  {name:8} statements {figures['handler_statements']:5.1f} | {figures['outbox_statements']:5.1f}"
              f"   transactions {figures['handler_transactions']:4.1f} | {figures['outbox_transactions']:4.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
