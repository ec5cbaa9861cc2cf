"""Log output: plain text for a terminal, one JSON object per line for a log collector.

Code that logs about an item or a notice passes its facts as `extra` (e.g. `item`, `key`,
`outbox_id`, `chat`, `outcome`), never inside the message only: both formats then carry them
as fields, so an operator can find every line about item #12 or about one idempotency key with
a plain filter (`jq 'select(.item == 12)'`, `grep 'key=reminder:…'`). Secrets never go into
`extra`; the channels log only what they verified, not what they were given.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Final

FORMATS: Final = ("text", "json")

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", …extra fields, "exc"}` on one line, UTC timestamps."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The usual one-line text, with the extra fields appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = extra_fields(record)
        if not fields:
            return line
        tail = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        head, newline, trace = line.partition("\n")  # keep a traceback below the fields
        return f"{head} [{tail}]{newline}{trace}"


def configure(level: str, fmt: str) -> None:
    """Set up the root logger for the CLI. Like logging.basicConfig, it adds no handler when the
    root logger already has one (e.g. pytest's capture), but the level is always applied."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    # The scheduler logs every 1-second tick at INFO; only its problems are worth a line.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))


class FailureLog:
    """One error line per failure kind per interval, with the count of repeats since the last
    line — not a traceback twice a second while the database is away (an operator must be able
    to read the log during an outage). The traceback is kept for the first line of a kind only."""

    def __init__(self, logger: logging.Logger, interval_seconds: float = 60.0, *, level: int = logging.ERROR,
                 repeated: str = "（此前 {interval:g} 秒内同类错误又发生 {repeats} 次）") -> None:
        self._log = logger
        self._interval = interval_seconds
        self._level = level
        self._repeated = repeated  # the suffix of a line after repeats: {interval} and {repeats}
        self._last: dict[str, float] = {}
        self._repeats: dict[str, int] = {}

    def failure(self, kind: str, message: str, *, exc: BaseException | None = None, now: float | None = None) -> None:
        # Monotonic: intervals of the log itself, not of the injected business clock.
        at = time.monotonic() if now is None else now
        last = self._last.get(kind)
        if last is not None and at - last < self._interval:
            self._repeats[kind] = self._repeats.get(kind, 0) + 1
            return
        repeats = self._repeats.pop(kind, 0)
        suffix = self._repeated.format(interval=self._interval, repeats=repeats) if repeats else ""
        detail = f": {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}" if exc else ""
        self._log.log(self._level, "%s%s%s", message, detail, suffix, extra={"failure": kind, "repeats": repeats},
                      exc_info=exc if last is None and exc is not None else None)
        self._last[kind] = at

    def recovered(self, kind: str) -> None:
        """The failure is over: the next one of this kind is logged at once, with its traceback."""
        if self._last.pop(kind, None) is not None:
            repeats = self._repeats.pop(kind, 0)
            self._log.warning("恢复正常：%s（期间同类错误共重复 %d 次）", kind, repeats, extra={"failure": kind})
