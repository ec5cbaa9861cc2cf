"""Reply URLs taken from callbacks are used only when they are the platform's own endpoint.

A callback names the URL to answer it on (WeCom `response_url`, DingTalk `sessionWebhook`). The
bot posts the reply, which may quote a report, to that URL, so a URL that is not the platform's
would hand the text to whoever wrote it: DingTalk's signature covers only a timestamp, so a
captured signature can carry any body. Such a URL is dropped at intake — never stored, never
used — and the reply goes to the configured robot instead.

The platform's endpoint (PROTOCOLS.md B.3, D.1) is https on its host, with its reply path and
parameter. The host of the configured robot webhook is accepted as well: the operator named it as
the platform (a private deployment, or a test's fake platform); plain http only when that host is
this machine's loopback address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

MAX_URL = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host, port


@dataclass(frozen=True)
class ReplyEndpoint:
    origins: frozenset[Origin]
    path: str
    param: str

    @classmethod
    def of(cls, *, official_host: str, path: str, param: str, configured: str) -> ReplyEndpoint:
        origins: set[Origin] = {("https", official_host, 443)}
        robot = _origin(configured)
        if robot is not None and (robot[0] == "https" or _loopback(robot[1])):
            origins.add(robot)
        return cls(frozenset(origins), path, param)

    def accept(self, url: object) -> str | None:
        """`url` when it is this platform's reply endpoint, else None."""
        if not isinstance(url, str) or not url or len(url) > MAX_URL or not url.isascii():
            return None
        if any(c.isspace() or not c.isprintable() for c in url):
            return None
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.fragment or "@" in parts.netloc or _origin(url) not in self.origins or parts.path != self.path:
            return None
        values = parse_qs(parts.query, keep_blank_values=True).get(self.param, [])
        return url if len(values) == 1 and values[0] else None


WECOM = {"official_host": "qyapi.weixin.qq.com", "path": "/cgi-bin/aibot/response", "param": "response_code"}
DINGTALK = {"official_host": "oapi.dingtalk.com", "path": "/robot/sendBySession", "param": "session"}


def _origin(url: str) -> Origin | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower().rstrip("."), port or DEFAULT_PORTS[scheme]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
