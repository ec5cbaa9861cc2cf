"""Text posted on a platform can @-mention only the people the bot chose.

Notices, replies and digests quote what users wrote (summaries, progress, results, names). On the
platforms a few characters in a text are markup: WeCom turns `<@userid>` into a mention (markdown,
and reportedly text) and knows `@all`; DingTalk highlights and notifies `@userId` / `@mobile`
written in the text (with its `at` object) and has `@all`. So the outgoing builders neutralise
every "@" of the text they are given that could start a mention (one followed by anything but
whitespace, and any "<@") — it becomes the full-width "＠", which reads the same to a person (and
NFKC-normalises back to "@" when someone copies an example) but is markup to no platform — and
only then add the bot's own mention markup.

Web addresses keep their "@" (https://www.example.com/@user must still open): they cannot hold
a space or "<", so no `<@…>` can start inside one, and an `@userId` there notifies nobody the `at`
object does not already name. Only `@all` is neutralised inside them too.
"""

from __future__ import annotations

import re

AT = "@"
NEUTRAL_AT = "＠"  # U+FF20 FULLWIDTH COMMERCIAL AT
# An http(s) address made of the characters RFC 3986 allows (no space, no "<", no ">").
_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.IGNORECASE)
_AT_ALL = re.compile(r"@(?=all)", re.IGNORECASE)
# "@" before anything but whitespace (or the end), or right after "<": where a mention could start.
_MENTION_AT = re.compile(r"(?<=<)@|@(?=\S)")


def neutralise(text: str) -> str:
    """The text with no @-mention markup left outside web addresses."""
    if AT not in text:
        return text
    out: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        out.append(_MENTION_AT.sub(NEUTRAL_AT, text[position : match.start()]))
        out.append(_AT_ALL.sub(NEUTRAL_AT, match.group()))
        position = match.end()
    out.append(_MENTION_AT.sub(NEUTRAL_AT, text[position:]))
    return "".join(out)
