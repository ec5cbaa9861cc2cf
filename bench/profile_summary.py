"""Summarise py-spy's raw (collapsed) stacks: where the server's samples went.

Two views: by activity (which part of the app the sample was in) and by package of the frame
that was running (self time), busy samples only. The raw file itself opens in speedscope or
inferno/flamegraph.pl for the full picture.
"""

from __future__ import annotations

from collections import Counter

# (marker in the stack, label); the first that matches names the sample.
ACTIVITIES = (
    ("concurrent/futures/thread.py:81)", "idle (thread pool waiting for work)"),
    ("_Checkpointer", "SQLite WAL checkpoint (in a thread)"),
    ("_connection_worker_thread", "aiosqlite worker thread (runs the SQL)"),
    ("OutboxWorker", "outbox worker (claim, post the reply, settle)"),
    ("DeadlineSweep", "deadline sweep"),
    ("roster_jobs", "roster jobs"),
    ("MessageHandler.handle", "message handler (dispatch: one transaction per message)"),
    ("DingtalkChannel.callback", "DingTalk callback (verify, parse)"),
    ("web_protocol", "aiohttp server (HTTP parsing, writing)"),
    ("EpollSelector.select", "idle (event loop waiting)"),
)
# store/sqlite_inline.py is where SQLite itself runs (its C calls have no frame of their own).
PACKAGES = ("sqlalchemy/orm", "sqlalchemy/sql", "sqlalchemy/engine", "sqlalchemy", "aiosqlite", "asyncpg", "asyncio",
            "aiohttp", "json", "greenlet", "hmac", "bot/", "handlers/", "store/sqlite_inline.py", "store/")
IDLE_FRAMES = ("EpollSelector.select", "core.py:59)", "SimpleQueue.get", "concurrent/futures/thread.py:81)")


def _activity(stack: str) -> str:
    for marker, label in ACTIVITIES:
        if marker in stack:
            return label
    return "other event-loop work (SQLAlchemy in greenlets, callbacks)"


def _package(frame: str) -> str:
    location = frame.rpartition("(")[2]
    for package in PACKAGES:
        if package in location:
            return package
    return location.split(":")[0] or frame


def summarize(raw: str) -> str:
    activities: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        activities[_activity(stack)] += count
        last = stack.split(";")[-1]
        if not any(marker in last for marker in IDLE_FRAMES) and "_connection_worker_thread" not in last:
            packages[_package(last)] += count
    if total == 0:
        return "no samples\n"
    lines = [f"{total} samples (all threads)", "", "by activity:"]
    lines += [f"  {count / total * 100:5.1f}%  {label}" for label, count in activities.most_common()]
    busy = sum(packages.values())
    lines += ["", f"busy samples by package of the running frame ({busy}):"]
    lines += [f"  {count / busy * 100:5.1f}%  {package}" for package, count in packages.most_common(15)]
    return "\n".join(lines) + "\n"
