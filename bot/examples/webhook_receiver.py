"""How a receiver checks dutybot's events (README “对外事件推送（Webhook）”, quoted there verbatim).

Recompute the signature over the raw body, compare it in constant time, reject a timestamp more
than 5 minutes from now, and process each event id once (a retry carries the same id).
"""

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

TOLERANCE = 300  # seconds


def verify(secret: str, body: bytes, timestamp: str, signature: str, now: float | None = None) -> bool:
    """True when the request comes from dutybot and is fresh. `body`: the raw request body."""
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(("v1=" + mac.hexdigest()).encode(), signature.encode())


def handle(secret: str, headers: Mapping[str, str], body: bytes, seen: set[str],
           process: Callable[[dict[str, Any]], None], now: float | None = None) -> int:
    """The HTTP status to answer. 401: not from dutybot. An event already processed (a retry whose
    first answer was lost) is answered 200 and not processed again. If `process` raises, answer
    5xx instead: dutybot sends the event again later."""
    timestamp = headers.get("X-Dutybot-Timestamp", "")
    if not verify(secret, body, timestamp, headers.get("X-Dutybot-Signature", ""), now):
        return 401
    event = json.loads(body)
    if event["id"] not in seen:
        process(event)  # event["type"]: item.reported …; event["data"]["item"]: the item
        seen.add(event["id"])
    return 200
