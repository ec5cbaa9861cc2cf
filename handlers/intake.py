"""Pure rules for a new report: where it comes from and what kind it is."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from bot.config import CategoryRule

# The category of a report no rule's keyword names (000 §二 "其他").
OTHER_CATEGORY = "其他"

# Host suffix → source word used by the staff (DOMAIN: 来源).
_SOURCES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("weibo.com", "weibo.cn", "t.cn"), "微博"),
    (("mp.weixin.qq.com", "weixin.qq.com", "wx.qq.com"), "微信公众号"),
    (("douyin.com", "iesdouyin.com"), "抖音"),
    (("kuaishou.com", "gifshow.com"), "快手"),
    (("xiaohongshu.com", "xhslink.com"), "小红书"),
    (("toutiao.com", "toutiaocdn.com"), "今日头条"),
    (("bilibili.com", "b23.tv"), "哔哩哔哩"),
    (("zhihu.com",), "知乎"),
    (("tieba.baidu.com",), "百度贴吧"),
    (("12345",), "12345平台"),
    (("gov.cn",), "政府网站"),
    (
        ("people.com.cn", "xinhuanet.com", "news.cn", "thepaper.cn", "163.com", "sina.com.cn", "qq.com"),
        "新闻跟帖",
    ),
)

_TEXT_SOURCES = (
    ("12345", "12345平台"),
    ("热线", "12345平台"),
    ("市长信箱", "市长信箱"),
    ("信访", "网上信访"),
    ("微博", "微博"),
    ("公众号", "微信公众号"),
    ("抖音", "抖音"),
    ("举报", "举报投诉"),
    ("投诉", "举报投诉"),
    ("报纸", "传统媒体"),
    ("电视", "传统媒体"),
)

def guess_source(url: str | None, text: str) -> str:
    if url:
        host = (urlsplit(url).hostname or "").lower()
        for suffixes, source in _SOURCES:
            # Domains match as a suffix ("m.weibo.cn"); only a bare word like "12345" may occur
            # anywhere in the host (a plain substring test made every "*.net.cn" host "t.cn" = 微博).
            if any(host == s or host.endswith("." + s) or ("." not in s and s in host) for s in suffixes):
                return source
    for word, source in _TEXT_SOURCES:
        if word in text:
            return source
    return "网络" if url else "其他"


def guess_category(text: str, rules: Sequence[CategoryRule]) -> str:
    """The name of the first rule with a keyword in the text (the policy's table, in order), else 其他.

    Case-folded so that a keyword like "PM2.5" or "ETC" matches however it is typed."""
    folded = text.casefold()
    for rule in rules:
        if any(word.casefold() in folded for word in rule.keywords):
            return rule.name
    return OTHER_CATEGORY
