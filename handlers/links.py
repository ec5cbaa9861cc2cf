"""The same link twice is one item (issue 12, point 9): a link's normal form and its key.

People paste the same post in many shapes: from the app (http, a mobile host, a share id, the
sharer's tracking), from the browser (https, www., utm_* of the page that led there), with the
parameters in another order. `normalize_link` folds these into one form, keeping everything
that says *which* content it is (`id=`, a path, mp.weixin's `__biz`/`mid`/`idx`/`sn` …), so
that two different posts never get the same form. `link_key` is the hash stored in
`items.link_key` (any length of link, one indexed column).

Pure functions, no network: a short link (t.cn, b23.tv, v.douyin.com) is not expanded, so it
matches only the same short link.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote, urlsplit

# Hosts whose mobile site ("m.") serves the same content at the same path as the desktop host
# (m.bilibili.com/video/BV… = www.bilibili.com/video/BV…), so the prefix can go. Only listed
# hosts: elsewhere "m." may be another site altogether — m.weibo.cn is not weibo.com, and
# weibo.cn (without m.) is an older site with other paths.
_SAME_SITE_MOBILE = frozenset({"m.douyin.com", "m.bilibili.com", "m.zhihu.com", "m.thepaper.cn", "m.toutiao.com"})

# Query parameters that say how a link travelled, never which content it is, dropped on every host.
# (A site whose content id were called "from" or "share_id" would see its links folded; none of
# the platforms people report from does that, and the gain — every shared copy found — is daily.)
_TRACKING_PREFIXES = (
    "utm_",  # campaign analytics (Google Analytics and everyone copying it)
    "share_",  # the share button: share_source, share_medium, share_plat, share_id, share_token …
    "sharer_",  # WeChat: who shared when (sharer_sharetime, sharer_shareid, sharer_shareinfo …)
    "xsec_",  # 小红书: xsec_source, xsec_token (a per-viewer signature)
)
_TRACKING = frozenset({
    # Share buttons and app hand-offs, in the spellings the platforms use.
    "shareid", "share_id", "isappinstalled", "from", "timestamp", "clicktime", "enterid", "scene",
    # Position tracking: Alibaba/Youku/Bilibili "spm", Bilibili's spm_id_from and vd_source.
    "spm", "spm_id_from", "vd_source",
    # Search-engine referral marks (Baidu's wfr=spider), ad click ids.
    "wfr", "fbclid", "gclid", "msclkid",
    # WeChat articles: a checksum and an export key that differ per share; sn identifies.
    "chksm", "mpshare", "srcid", "exportkey",
})
# Parameters that are tracking only on one platform; elsewhere the same name may identify content.
_HOST_TRACKING: tuple[tuple[tuple[str, ...], frozenset[str]], ...] = (
    # The reader's WeChat session, never the article (__biz, mid, idx, sn are kept).
    (("mp.weixin.qq.com",), frozenset({
        "ascene", "subscene", "devicetype", "version", "lang", "nettype", "uin", "key", "pass_ticket",
        "wx_header", "abtest_cookie", "poc_token", "sessionid", "realreporttime",
    })),
    # The sharer's device and app (the video is in the path).
    (("douyin.com", "iesdouyin.com"), frozenset({
        "u_code", "did", "iid", "with_sec_did", "titletype", "ts", "from_aid", "from_ssr", "app", "region",
        "previous_page", "is_copy_url", "is_from_webapp", "sender_device", "web_id",
    })),
    # Where on Weibo the link was opened (the post is in the path).
    (("weibo.com", "weibo.cn"), frozenset({"sourcetype", "wm", "featurecode", "luicode", "lfid", "jumpfrom"})),
    # The sharer's app (the note is in the path).
    (("xiaohongshu.com",), frozenset({
        "app_platform", "app_version", "author_share", "xhsshare", "appuid", "apptime",
    })),
    # The sharer and the player (the video is in the path; "p", the part, is kept).
    (("bilibili.com",), frozenset({"unique_k", "bbid", "buvid", "up_id", "plat_id", "is_story_h5"})),
    # The app and the feed it came from (the article is in the path).
    (("toutiao.com",), frozenset({
        "app", "use_new_style", "req_id", "tt_from", "wxshare_count", "source", "upstream_biz", "category_new",
        "log_from",
    })),
    # Baidu's article pages: "for=pc" says which layout (the article is "id").
    (("baijiahao.baidu.com",), frozenset({"for"})),
)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})|%")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# What stays as typed when re-encoding: ASCII punctuation with a meaning in URLs, and "%" so that
# existing escapes are not escaped again. Anything else (Chinese, spaces) is UTF-8 %-encoded.
_SAFE = "!$&'()*+,;=:@/%~-._"
_DEFAULT_PORTS = frozenset({80, 443})


def normalize_link(url: str) -> str:
    """One form for every shape of the same link (see the module docstring)."""
    text = url.strip()
    try:
        parts = urlsplit(text if _SCHEME.match(text) else "https://" + text)
        port = parts.port
    except ValueError:  # "http://[::1" or a port that is not a number: nothing to fold safely
        return text
    # http and https serve the same post; a link pasted from an old app still says http.
    scheme = "https" if parts.scheme.lower() in ("http", "https") else parts.scheme.lower()
    host = _host(parts.hostname or "")
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    netloc = host if port is None or port in _DEFAULT_PORTS else f"{host}:{port}"  # user:password@ dropped
    path = _canonical(parts.path).rstrip("/")
    query = _query(parts.query, host)
    # The fragment is a place on the page — except a hash route ("#/news/12", "#!/detail?id=3"),
    # where single-page sites put the content itself.
    fragment = parts.fragment if parts.fragment.startswith(("/", "!/")) else ""
    return (
        f"{scheme}://{netloc}{path}"
        + (f"?{query}" if query else "")
        + (f"#{_canonical(fragment, _SAFE + '?#')}" if fragment else "")
    )


def link_key(url: str) -> str:
    """The hash of the normal form: what items.link_key holds (64 hex digits)."""
    return hashlib.sha256(normalize_link(url).encode("utf-8")).hexdigest()


def _host(hostname: str) -> str:
    host = hostname
    try:  # 政务.cn and its xn--… spelling are one host
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    # A stray character in a pasted host gets one spelling too; then case and the root dot go.
    host = _canonical(host, safe=":%").lower().rstrip(".")
    while host.startswith("www.") and host.count(".") >= 2:  # "www.com" is a host of its own
        host = host[4:]
    if host in _SAME_SITE_MOBILE:
        host = host[2:]
    return host


def _canonical(part: str, safe: str = _SAFE) -> str:
    """One spelling of the same characters: %7E and ~ alike, %e5 and %E5 alike, 停水 and %E5%81%9C…
    alike, a lone "%" and %25 alike. An escape of a reserved character (%2F, %26, %3D) keeps its
    meaning and stays escaped."""
    def unescape(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "%25"
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return quote(_ESCAPE.sub(unescape, part), safe=safe)


def _query(query: str, host: str) -> str:
    """The content parameters in one order: tracking parameters dropped, the rest sorted."""
    extra: frozenset[str] = frozenset().union(*(names for hosts, names in _HOST_TRACKING if _on(host, hosts)))
    kept: list[str] = []
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        name = _canonical(name)  # "utm%5Fsource" is utm_source too
        lowered = name.lower()
        if not pair or lowered in _TRACKING or lowered in extra or lowered.startswith(_TRACKING_PREFIXES):
            continue
        kept.append(name + equals + _canonical(value))
    # Sorted as whole pairs: the same parameters in any order give the same text.
    return "&".join(sorted(kept))


def _on(host: str, suffixes: tuple[str, ...]) -> bool:
    return any(host == suffix or host.endswith("." + suffix) for suffix in suffixes)
