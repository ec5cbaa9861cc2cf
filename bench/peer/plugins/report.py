"""One command, 上报 <text>: parse it as dutybot's 上报 does (text, first URL, a source guessed from
its host, a category from keywords), number it, and answer in the group. No database: the peer
keeps only an in-process counter."""

import itertools
import re
from urllib.parse import urlsplit

from nonebot import on_command
from nonebot.adapters.onebot.v11 import GroupMessageEvent, Message
from nonebot.params import CommandArg

URL = re.compile(r"https?://[^\s<>\"'，。；！？、）】]+")
SOURCES = {"weibo.com": "微博", "weibo.cn": "微博", "douyin.com": "抖音", "mp.weixin.qq.com": "微信公众号"}
CATEGORIES = (("停水", "民生诉求"), ("火灾", "突发事件"), ("政策", "政策解读"))
USAGE = "请在“上报”后写明线索内容，可附链接。"
numbers = itertools.count(1)

report = on_command("上报", priority=5, block=True)


@report.handle()
async def handle(event: GroupMessageEvent, args: Message = CommandArg()) -> None:  # noqa: B008 (nonebot's idiom)
    text = args.extract_plain_text().strip()
    if not text:
        await report.finish(USAGE)
    urls = URL.findall(text)
    host = (urlsplit(urls[0]).hostname or "") if urls else ""
    source = next((name for suffix, name in SOURCES.items() if host == suffix or host.endswith("." + suffix)),
                  "网络" if urls else "其他")
    category = next((name for word, name in CATEGORIES if word in text), "其他")
    number = next(numbers)
    await report.finish(f"已受理舆情线索 #{number}\n来源：{source}｜类别：{category}\n"
                        f"上报人：{event.sender.nickname or event.user_id}\n请尽快定级：1 重大｜2 较大｜3 一般")
