"""Pure rules for a new report: where it comes from and what kind it is."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from domain.config import CategoryRule
from handlers.parsing import find_urls

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

# Words that mark a message as news of online opinion rather than talk among colleagues: where
# it was seen (platforms, 12345, 市长信箱) or how people speak of it (网传, 网友, 爆料, 投诉).
# Deliberately not 舆情 ("今日无舆情" is a zero report), 视频 (视频会议) or 媒体 (融媒体中心).
_REPORT_WORDS = (
    "网传", "网友", "网民", "网帖", "发帖", "帖子", "跟帖", "爆料", "曝光", "热搜", "评论区", "留言板",
    "微博", "抖音", "快手", "小红书", "今日头条", "视频号", "短视频", "自媒体", "朋友圈", "公众号", "贴吧",
    "12345", "市长信箱", "投诉", "举报",
)
# A report states something; a question to colleagues ("抖音上那个视频你看了吗？") does not.
_QUESTION = re.compile(r"(?:[?？]|吗|呢|么)[。！!~～\s]*$")
# 零报告 and the like: saying that there is nothing (DOMAIN: 零报告).
_NOTHING = ("无舆情", "零报告", "暂无", "未发现")
# Shorter than this, a message is a remark ("网友说的"), not an account of what happened.
MIN_REPORT_CHARS = 12


def reads_like_report(text: str) -> bool:
    """Whether a message without a command verb is probably a report: it carries a link, or it
    names where public opinion was seen in a statement of at least MIN_REPORT_CHARS characters
    that is neither a question nor a zero report."""
    if find_urls(text):
        return True
    body = "".join(text.split())
    if len(body) < MIN_REPORT_CHARS or _QUESTION.search(body) or any(word in body for word in _NOTHING):
        return False
    return any(word in body for word in _REPORT_WORDS)


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
        if any(word in folded for word in rule.folded_keywords):
            return rule.name
    return OTHER_CATEGORY
