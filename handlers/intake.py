"""Pure rules for a new report: where it comes from and what kind it is."""

from __future__ import annotations

from urllib.parse import urlsplit

from bot.vocab import Category

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

_CATEGORY_WORDS: tuple[tuple[tuple[str, ...], Category], ...] = (
    (("谣言", "不实", "造谣", "假消息"), Category.RUMOUR),
    (("地震", "洪水", "暴雨", "台风", "泥石流", "山体滑坡", "干旱", "冰雹"), Category.DISASTER),
    (("火灾", "爆炸", "事故", "坍塌", "中毒", "死亡", "伤亡", "疫情", "群体性"), Category.EMERGENCY),
    (("上级", "省里", "市里要求", "督办", "交办"), Category.HIGHER_LEVEL),
    (("政策", "误读", "文件", "新规"), Category.POLICY),
    (("虐待", "欺凌", "见死不救", "道德"), Category.MORALS),
    (
        ("拆迁", "征地", "欠薪", "工资", "补偿", "学校", "医院", "物业", "房价", "养老", "医保", "低保"),
        Category.INTERESTS,
    ),
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


def guess_category(text: str) -> Category:
    for words, category in _CATEGORY_WORDS:
        if any(word in text for word in words):
            return category
    return Category.OTHER
