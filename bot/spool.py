"""The local spool: where a platform message is kept while the database cannot be written.

不漏报: a callback is acknowledged only once its message is durable. When the database is
stopped, unreachable, out of disk, or its write lock cannot be had in time, the message is
appended here instead — one file per process, one JSON line per message with a CRC, flushed
and fsynced before the callback is answered — and replayed into the database, in order and
once (the platform's message id de-duplicates, store/inbound.py), as soon as writes succeed.

A file is held under an exclusive `flock` by the process that writes it, so a replica or the
next start replays the files of processes that died (kill -9) and never those still alive.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from domain.messages import InboundMessage
from domain.vocab import Platform

log = logging.getLogger(__name__)

PREFIX = "spool-"
LIVE = ".jsonl"
REPLAYING = ".replay"


class SpoolFull(Exception):
    """The spool cannot take this message (its size cap, or the disk): the callback must fail."""


@dataclass(frozen=True)
class Spooled:
    """One kept message and where it came from (for the replay order)."""

    message: InboundMessage
    source: Path
    line: int


def _encode(message: InboundMessage) -> bytes:
    fields = asdict(message)
    for key in ("received_at", "reply_url_expires_at"):
        value = fields[key]
        fields[key] = value.isoformat() if value is not None else None
    fields["platform"] = message.platform.value
    body = json.dumps(fields, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    crc = zlib.crc32(body.encode("utf-8"))
    return (json.dumps({"crc": crc, "m": body}, ensure_ascii=False) + "\n").encode("utf-8")


def _decode(line: bytes) -> InboundMessage | None:
    """The message of a line, or None for a torn or damaged line (a write cut short by a crash
    was never acknowledged, so skipping it loses nothing that was promised)."""
    try:
        record = json.loads(line)
        body = record["m"]
        if zlib.crc32(body.encode("utf-8")) != record["crc"]:
            return None
        fields: dict[str, Any] = json.loads(body)
        fields["platform"] = Platform(fields["platform"])
        for key in ("received_at", "reply_url_expires_at"):
            if fields[key] is not None:
                fields[key] = datetime.fromisoformat(fields[key])
        return InboundMessage(**fields)
    except (ValueError, KeyError, TypeError):
        return None


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int, tag: str) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.path = directory / f"{PREFIX}{tag}{LIVE}"
        self._file: IO[bytes] | None = None
        self._lock = asyncio.Lock()
        self._size = 0
        self._replays = 0
        self._replaying = False

    # -- writing --------------------------------------------------------------------------------

    def _open(self) -> IO[bytes]:
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "ab")
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._file = handle
            self._size = handle.seek(0, os.SEEK_END)
        return self._file

    def _append_sync(self, line: bytes) -> None:
        handle = self._open()
        if self._size + len(line) > self.max_bytes:
            raise SpoolFull(f"spool {self.path.name} would exceed {self.max_bytes} bytes")
        try:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as exc:
            # A partial line may be on disk: it fails its CRC on replay and is skipped.
            raise SpoolFull(f"spool {self.path.name} cannot be written: {exc.strerror}") from exc
        self._size += len(line)

    async def append(self, message: InboundMessage) -> None:
        """Keep the message durably (fsynced) before returning; SpoolFull when that is impossible."""
        line = _encode(message)
        async with self._lock:
            # fsync may take milliseconds on a busy disk: off the event loop.
            await asyncio.to_thread(self._append_sync, line)

    # -- what is waiting ----------------------------------------------------------------------

    def _candidates(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.name.startswith(PREFIX)
                      and (p.name.endswith(LIVE) or p.name.endswith(REPLAYING)))

    def pending(self) -> list[Spooled]:
        """Every kept message in this directory not yet replayed, oldest first."""
        found = [entry for path in self._candidates() for entry in _read(path)]
        return sorted(found, key=lambda s: (s.message.received_at, str(s.source), s.line))

    def holding(self) -> bool:
        """Whether this process has messages kept and not yet through the database (its own file,
        or a replay under way): a newer message must queue behind them, not overtake them."""
        return self._size > 0 or self._replaying

    def waiting(self) -> bool:
        """Whether anything waits in this directory (cheap: sizes only, no file is read)."""
        if self._size > 0:
            return True
        for path in self._candidates():
            try:
                if path.stat().st_size > 0:
                    return True
            except OSError:
                continue
        return False

    def state(self) -> tuple[int, datetime | None]:
        """How many messages wait, and when the oldest of them arrived (for /metrics and doctor)."""
        waiting = self.pending()
        return len(waiting), (waiting[0].message.received_at if waiting else None)

    # -- replaying ------------------------------------------------------------------------------

    async def _take(self) -> list[tuple[Path, IO[bytes]]]:
        """Move what can be replayed aside: this process's own file (rotated under the write
        lock), the files of dead processes (whose lock can be taken), earlier replay files."""
        taken: list[tuple[Path, IO[bytes]]] = []
        async with self._lock:
            if self._file is not None and self._size > 0:
                self._replays += 1
                target = self.path.with_name(f"{self.path.stem}-{self._replays}{REPLAYING}")
                os.replace(self.path, target)
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
                self._file.close()
                self._file, self._size = None, 0
        for path in self._candidates():
            if path == self.path:
                continue
            handle = _try_lock(path)
            if handle is not None:
                taken.append((path, handle))
        return taken

    async def replay(self, handle: Callable[[InboundMessage], Awaitable[object]]) -> int:
        """Hand every kept message to `handle`, oldest first; a file is removed once all its
        messages went through. Stops at the first failure (the database is still away): what
        is left is tried again next time, and messages already handled are de-duplicated."""
        taken = await self._take()
        if not taken:
            return 0
        self._replaying = True
        try:
            entries = sorted((e for path, _ in taken for e in _read(path)),
                             key=lambda s: (s.message.received_at, str(s.source), s.line))
            done = 0
            for entry in entries:
                await handle(entry.message)
                done += 1
            for path, _ in taken:
                path.unlink(missing_ok=True)
            if done:
                log.info("spool: %d message(s) replayed into the database", done)
            return done
        finally:
            self._replaying = False
            for _, lock in taken:
                lock.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _try_lock(path: Path) -> IO[bytes] | None:
    try:
        handle = open(path, "rb")
    except OSError:
        return None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None  # its writer is alive: not ours to replay
    return handle


def _read(path: Path) -> Iterator[Spooled]:
    try:
        data = path.read_bytes()
    except OSError:
        return
    for number, line in enumerate(data.splitlines()):
        message = _decode(line)
        if message is not None:
            yield Spooled(message, path, number)
