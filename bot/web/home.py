"""The page at GET /: what this service is and where its pages are.

It is answered to whoever reaches the port, so it says nothing about the configuration (no units,
people, channels, database or secrets). The pages it links are a list of `Link`s: a later page
(the web console) is one more entry in `links`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

FAVICON = Path(__file__).resolve().parent / "favicon.svg"
FAVICON_TYPE = "image/svg+xml"

TITLE = "舆情值班助手"
INTRO = (
    "政务舆情值班群的聊天机器人：在企业微信、钉钉值班群中登记网上舆情线索，"
    "按等级计算签收与回应时限并提醒相关负责人员，跟踪转办至办结的全过程，全程留痕备查。"
)
IN_CHAT = "值班人员在值班群中发送“帮助”，即可查看全部指令。"
PAGES = "本服务提供的页面"


@dataclass(frozen=True)
class Link:
    """One entry of the home page's list of pages."""

    href: str
    label: str
    note: str


SIMULATOR = Link("/sim", "值班群模拟", "在浏览器中模拟值班群对话，仅供本机演示与培训。")
HEALTH = Link("/healthz", "健康检查", "数据库、定时任务与发送队列的运行状态（JSON）。")
METRICS = Link("/metrics", "运行指标", "Prometheus 格式的监控指标。")

# The page is static text and the favicon: no script, no form, nothing fetched from elsewhere.
HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

STYLE = """
  * { box-sizing: border-box; }
  body {
    margin: 0; font: 15px/1.6 -apple-system, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif;
    color: #1f2329; background: #eef0f3;
  }
  header { background: #2b3a55; color: #fff; padding: 14px 0; }
  header h1 { max-width: 720px; margin: 0 auto; padding: 0 20px; font-size: 18px; font-weight: 600; }
  main { max-width: 720px; margin: 0 auto; padding: 20px; }
  p { margin: 0 0 12px; }
  h2 { font-size: 13px; color: #8a919c; font-weight: normal; margin: 24px 0 8px; }
  ul { list-style: none; margin: 0; padding: 0; }
  li { background: #fff; border: 1px solid #e3e5e8; border-radius: 8px; margin-bottom: 8px; }
  li a { display: block; padding: 12px 14px; color: inherit; text-decoration: none; }
  li a:hover, li a:focus-visible { background: #f3f6fb; border-radius: 8px; }
  li b { color: #1664d9; font-weight: 600; }
  li code { color: #8a919c; font-size: 13px; margin-left: 6px; }
  li span { display: block; color: #5c6470; font-size: 13px; }
"""


def links(*, simulator: bool) -> list[Link]:
    """The pages this visitor may open: the simulator only when it is on and would serve them."""
    return [*([SIMULATOR] if simulator else []), HEALTH, METRICS]


def render(pages: Sequence[Link]) -> str:
    items = "\n".join(_item(link) for link in pages)
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(TITLE)}</title>
<link rel="icon" href="/favicon.svg" type="{FAVICON_TYPE}">
<style>{STYLE}</style>
</head>
<body>
<header><h1>{escape(TITLE)}</h1></header>
<main>
<p>{escape(INTRO)}</p>
<p>{escape(IN_CHAT)}</p>
<h2>{escape(PAGES)}</h2>
<ul id="pages">
{items}
</ul>
</main>
</body>
</html>
"""


def _item(link: Link) -> str:
    href = escape(link.href)
    return (f'<li><a href="{href}"><b>{escape(link.label)}</b><code>{href}</code>'
            f"<span>{escape(link.note)}</span></a></li>")
