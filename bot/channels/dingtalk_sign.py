"""DingTalk signatures: the custom robot's 加签 and the app robot's callback signature.

Both use one construction: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")) with the
timestamp in epoch milliseconds. The custom robot expects it URL-encoded in the query string; the
callback sends it raw in the `sign` header. The signature covers only the timestamp, not the
body, which is why callbacks are also de-duplicated by msgId and the clock skew is kept short.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# An epoch-ms timestamp has 13 digits until the year 2286; anything much longer is garbage and
# is refused before it is turned into an integer.
MAX_TIMESTAMP_DIGITS = 16


def epoch_ms(when: datetime) -> int:
    """Exact epoch milliseconds of an aware datetime (no float rounding)."""
    return (when - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(value: int) -> datetime:
    return EPOCH + timedelta(milliseconds=value)


def sign(timestamp_ms: int | str, secret: str) -> str:
    """The raw base64 signature (not URL-encoded)."""
    message = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_urlencoded(timestamp_ms: int | str, secret: str) -> str:
    """The signature as it appears in the custom robot's query string: encoded exactly once."""
    return quote_plus(sign(timestamp_ms, secret))


def signed_webhook_url(webhook: str, secret: str, timestamp_ms: int) -> str:
    """The custom robot URL with `timestamp` and `sign` appended.

    The result is already encoded: send it as `yarl.URL(url, encoded=True)` so that the HTTP
    client does not encode the `%2B`/`%3D` of the signature a second time (DingTalk would answer
    310000).
    """
    separator = "&" if "?" in webhook else "?"
    return f"{webhook}{separator}timestamp={timestamp_ms}&sign={sign_urlencoded(timestamp_ms, secret)}"


def parse_timestamp(value: str | None) -> int | None:
    """An epoch-ms header value, or None when it is missing or not plain ASCII digits."""
    if value is None or not value or len(value) > MAX_TIMESTAMP_DIGITS:
        return None
    # isdigit() alone accepts other scripts' digits (e.g. "١٢٣"); int() would take "+1", " 1", "1_0".
    if not (value.isascii() and value.isdigit()):
        return None
    return int(value)


def verify_callback(
    timestamp: str | None, signature: str | None, app_secret: str, *, now_ms: int, max_skew_ms: int
) -> bool:
    """Check a callback's `timestamp`/`sign` headers: fresh enough, then a constant-time compare.

    Always the same order; the HMAC is compared with hmac.compare_digest on bytes (a str with
    non-ASCII characters would make compare_digest raise instead of answering False).
    """
    if not app_secret or not signature or timestamp is None:
        return False
    parsed = parse_timestamp(timestamp)
    if parsed is None or abs(now_ms - parsed) > max_skew_ms:
        return False
    # Signed as sent (DingTalk signs the header text, not a normalised number).
    expected = sign(timestamp, app_secret).encode("ascii")
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape"))
