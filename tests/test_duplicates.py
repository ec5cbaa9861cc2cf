"""The same link twice is one item (issue 12, point 9).

The pure part: `normalize_link` folds every shape of one link into one form and never two posts
into one (examples and properties). The conversations, on SQLite and PostgreSQL: a link reported
again within policy.duplicate_days is recorded on the earlier item as a supplement; "新线索" makes
it a new item anyway; a 涉密 item or report leaks nothing through the supplement.
"""

from __future__ import annotations

import random
from datetime import timedelta
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from handlers.items import CLASSIFIED_DETAIL
from handlers.links import link_key, normalize_link
from handlers.report import split_new_lead
from store.models import Item, ItemEvent, PendingQuestion
from tests.conftest import Bot

REPORT = "上报 网友在微博反映城关镇东风小区停水三天 https://weibo.com/123/abc"
AGAIN = "上报 又有网友转发东风小区停水 http://www.weibo.com/123/abc/?from=timeline&utm_source=wechat#comment"
DUPLICATE = "与 #{n} 重复，已作为补充信息记入 #{n}（{state}）。如确为新线索，请发送“上报 … 新线索”。"


# -- the normal form ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("http://weibo.com/123/abc", "https://weibo.com/123/abc"),
        ("https://WWW.Weibo.COM/123/abc", "https://weibo.com/123/abc"),
        ("https://weibo.com/123/abc/", "https://weibo.com/123/abc"),
        ("https://weibo.com:443/123/abc#comment", "https://weibo.com/123/abc"),
        ("http://weibo.com:80/123/abc", "https://weibo.com/123/abc"),
        ("https://weibo.com/123/abc?from=timeline&isappinstalled=0", "https://weibo.com/123/abc"),
        ("https://m.weibo.cn/detail/49?sourceType=weixin&wm=9006_2001&featurecode=newtitle",
         "https://m.weibo.cn/detail/49"),
        ("https://www.qinghe.gov.cn/a.html?id=7&utm_source=x&utm_medium=y&spm=a.b.c", "https://qinghe.gov.cn/a.html?id=7"),
        ("https://qinghe.gov.cn/list?page=2&cat=5", "https://qinghe.gov.cn/list?cat=5&page=2"),
        (  # a WeChat article as shared: the session and share marks go, __biz/mid/idx/sn stay
            "https://mp.weixin.qq.com/s?__biz=MzA5&mid=2650&idx=1&sn=9f3c&chksm=8b1e&scene=21&sharer_shareid=77"
            "&clicktime=1700000000&enterid=1700000001&ascene=1&devicetype=iOS17&version=18&lang=zh_CN"
            "&pass_ticket=Zx&wx_header=1#wechat_redirect",
            "https://mp.weixin.qq.com/s?__biz=MzA5&mid=2650&idx=1&sn=9f3c",
        ),
        ("https://m.bilibili.com/video/BV1xx/?spm_id_from=333.1&vd_source=ab12&share_source=copy_web&p=2",
         "https://www.bilibili.com/video/BV1xx?p=2"),
        ("https://www.xiaohongshu.com/explore/65ab?xsec_token=AB&xsec_source=pc_share&xhsshare=WeixinSession",
         "https://xiaohongshu.com/explore/65ab"),
        ("https://www.douyin.com/video/73?previous_page=app_code_link&u_code=x1&did=9&iid=8&shareId=5",
         "https://douyin.com/video/73"),
        ("https://m.douyin.com/share/video/73", "https://douyin.com/share/video/73"),
        ("https://baijiahao.baidu.com/s?id=17&wfr=spider&for=pc", "https://baijiahao.baidu.com/s?id=17"),
        ("https://s.weibo.com/weibo?q=停水", "https://s.weibo.com/weibo?q=%e5%81%9c%e6%b0%b4"),
        ("https://qinghe.gov.cn/%7Euser/a", "https://qinghe.gov.cn/~user/a"),
        ("https://user:secret@qinghe.gov.cn/a", "https://qinghe.gov.cn/a"),
        ("https://" + "政务.cn".encode("idna").decode() + "/a", "https://政务.cn/a"),
    ],
)
def test_one_post_in_its_usual_shapes_has_one_key_issue12_p9(one: str, other: str) -> None:
    assert normalize_link(one) == normalize_link(other)
    assert link_key(one) == link_key(other) and len(link_key(one)) == 64


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://weibo.com/123/abc", "https://m.weibo.cn/123/abc"),  # another site, other paths
        ("https://m.weibo.cn/detail/49", "https://weibo.cn/detail/49"),  # m. is kept where not listed
        ("https://weibo.com/123/abc", "https://weibo.com/123/ABC"),  # paths are case-sensitive
        ("https://qinghe.gov.cn/a.html?id=7", "https://qinghe.gov.cn/a.html?id=8"),
        ("https://qinghe.gov.cn/a.html?id=7", "https://qinghe.gov.cn/a.html"),
        ("https://mp.weixin.qq.com/s?__biz=MzA5&mid=2650&idx=1&sn=9f3c",
         "https://mp.weixin.qq.com/s?__biz=MzA5&mid=2650&idx=2&sn=9f3c"),
        ("https://space.bilibili.com/?mid=1", "https://space.bilibili.com/?mid=2"),
        ("https://www.douyin.com/user/x?sec_uid=A", "https://www.douyin.com/user/x?sec_uid=B"),
        ("https://app.qinghe.gov.cn/#/news/1", "https://app.qinghe.gov.cn/#/news/2"),  # a hash route is content
        ("https://qinghe.gov.cn:8080/a", "https://qinghe.gov.cn/a"),
        ("https://qinghe.gov.cn/a%2Fb", "https://qinghe.gov.cn/a/b"),  # an escaped "/" is not a "/"
        ("https://qinghe.gov.cn/s?q=a%26b", "https://qinghe.gov.cn/s?q=a&b"),
    ],
)
def test_different_posts_keep_different_keys_issue12_p9(one: str, other: str) -> None:
    assert link_key(one) != link_key(other)


_CHARS = "abcXYZ019-_.~%/:?#&=+ 停水"


@given(st.text())
def test_normal_form_of_any_text_is_idempotent_issue12_p9(text: str) -> None:
    once = normalize_link(text)
    assert normalize_link(once) == once


@given(
    st.sampled_from(["http://", "https://", "HTTPS://", ""]),
    st.sampled_from(["", "www.", "m.", "WWW."]),
    st.sampled_from(["weibo.com", "m.weibo.cn", "douyin.com", "mp.weixin.qq.com", "bilibili.com", "qinghe.gov.cn"]),
    st.sampled_from(["", ":80", ":443", ":8443"]),
    st.text(alphabet=_CHARS, max_size=40),
)
def test_normal_form_of_a_link_is_idempotent_issue12_p9(scheme: str, prefix: str, host: str, port: str,
                                                        rest: str) -> None:
    once = normalize_link(f"{scheme}{prefix}{host}{port}/{rest}")
    assert normalize_link(once) == once


TRACKING = [
    ("utm_source", "wechat"), ("utm_medium", "social"), ("utm_campaign", "client_share"), ("spm", "a2h0c.8166"),
    ("from", "timeline"), ("share_source", "copy_web"), ("share_token", "Xy"), ("shareId", "12"),
    ("share_id", "13"), ("isappinstalled", "0"), ("scene", "1"), ("clicktime", "1700000000"),
    ("enterid", "1700000001"), ("sharer_sharetime", "1700000002"), ("timestamp", "1700000003"),
    ("wfr", "spider"), ("vd_source", "ab12"), ("xsec_source", "pc_share"), ("xsec_token", "AB=="),
]
_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
    lambda name: normalize_link(f"https://x.cn/?{name}=1") != "https://x.cn"  # not itself a tracking name
)
_VALUES = st.text(alphabet="abcXYZ0129-_.~停", max_size=8)


@given(
    st.sampled_from(["weibo.com/123/abc", "qinghe.gov.cn/a.html", "mp.weixin.qq.com/s", "x.cn"]),
    st.dictionaries(_NAMES, _VALUES, max_size=4),
    st.lists(st.sampled_from(TRACKING), max_size=6),
    st.randoms(use_true_random=False),
)
def test_tracking_parameters_and_their_order_are_ignored_issue12_p9(
    base: str, content: dict[str, str], tracking: list[tuple[str, str]], shuffle: random.Random
) -> None:
    plain = f"https://{base}?" + "&".join(f"{k}={quote(v)}" for k, v in content.items())
    pairs = [*content.items(), *tracking]
    shuffle.shuffle(pairs)
    shared = f"http://www.{base}?" + "&".join(f"{k}={quote(v)}" for k, v in pairs) + "#share"
    assert link_key(shared) == link_key(plain)


@given(
    st.sampled_from(["id", "sn", "__biz", "mid", "idx", "p", "docid"]),
    st.text(alphabet="abcXYZ0129-_.~停=&/", min_size=1, max_size=12),
    st.text(alphabet="abcXYZ0129-_.~停=&/", min_size=1, max_size=12),
)
def test_two_content_ids_never_collide_issue12_p9(name: str, one: str, other: str) -> None:
    if one == other:
        return
    for base in ("https://mp.weixin.qq.com/s", "https://qinghe.gov.cn/a.html", "https://weibo.com/detail"):
        assert link_key(f"{base}?{name}={quote(one, safe='')}") != link_key(f"{base}?{name}={quote(other, safe='')}")
        assert link_key(f"{base}/{quote(one, safe='')}") != link_key(f"{base}/{quote(other, safe='')}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("城关镇停水 https://weibo.com/1 新线索", (True, "城关镇停水 https://weibo.com/1")),
        ("新线索 城关镇停水", (True, "城关镇停水")),
        ("新线索：城关镇停水", (True, "城关镇停水")),
        ("【新线索】城关镇停水", (True, "城关镇停水")),
        ("城关镇停水，新线索。", (True, "城关镇停水")),
        ("城关镇停水（新线索）", (True, "城关镇停水")),
        ("城关镇发现一条新线索", (False, "城关镇发现一条新线索")),  # the words as content
        ("新线索显示城关镇停水", (False, "新线索显示城关镇停水")),
    ],
)
def test_new_lead_words_at_either_end_issue12_p9(text: str, expected: tuple[bool, str]) -> None:
    assert split_new_lead(text) == expected


# -- conversations ------------------------------------------------------------------------------


async def count(bot: Bot, model: type) -> int:
    async with bot.runtime.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def stored(bot: Bot, number: int) -> Item:
    async with bot.runtime.db.read() as session:
        return (await session.execute(select(Item).where(Item.number == number))).scalar_one()


async def supplements(bot: Bot) -> list[ItemEvent]:
    async with bot.runtime.db.read() as session:
        result = await session.execute(
            select(ItemEvent).where(ItemEvent.action == "supplement").order_by(ItemEvent.id)
        )
        return list(result.scalars())


async def test_same_link_twice_is_one_item_issue12_p9(bot: Bot) -> None:
    await bot.say("liu_yang", REPORT)
    questions = await count(bot, PendingQuestion)
    bot.clock.advance(timedelta(days=6, hours=23))  # within the 7 days of policy.duplicate_days
    reply = await bot.say("sun_li", AGAIN, chat="dingtalk_duty")
    assert reply["text"] == DUPLICATE.format(n=1, state="待定级")
    assert reply["mentions"] == []
    assert await count(bot, Item) == 1
    assert await count(bot, PendingQuestion) == questions  # no grade question for a supplement
    [event] = await supplements(bot)
    first = await stored(bot, 1)
    assert event.item_id == first.id and event.actor == "sun_li" and event.chat_id == "dingtalk_duty"
    assert event.detail == AGAIN.removeprefix("上报 ")
    assert event.after["link"] == AGAIN.split()[-1] and event.after["classified"] is False
    timeline = await bot.say("zhao_min", "查询 #1")
    assert "孙丽 补充信息 又有网友转发东风小区停水" in timeline["text"]
    # The counter did not move: the next new report is #2.
    assert (await bot.say("liu_yang", "上报 西岸滨河路路灯不亮"))["text"].startswith("已受理舆情线索 #2")


async def test_same_link_after_the_window_is_a_new_item_issue12_p9(bot: Bot) -> None:
    await bot.say("liu_yang", REPORT)
    bot.clock.advance(timedelta(days=7, minutes=1))
    reply = await bot.say("liu_yang", AGAIN)
    assert reply["text"].startswith("已受理舆情线索 #2")
    assert await supplements(bot) == []
    assert (await stored(bot, 1)).link_key == (await stored(bot, 2)).link_key == link_key(AGAIN.split()[-1])
    # The newest item within the window is the one a third report joins.
    bot.clock.advance(timedelta(days=1))
    assert (await bot.say("liu_yang", REPORT))["text"].startswith("与 #2 重复")


async def test_same_link_with_other_tracking_params_is_a_duplicate_issue12_p9(bot: Bot) -> None:
    await bot.say("liu_yang", "上报 公众号文章称城关镇停水 https://mp.weixin.qq.com/s?__biz=MzA5&mid=26&idx=1&sn=9f"
                              "&chksm=aa&scene=21#wechat_redirect")
    await bot.say("zhao_min", "2")
    reply = await bot.say("liu_yang", "舆情：同一文章 http://mp.weixin.qq.com/s?sn=9f&idx=1&mid=26&__biz=MzA5"
                                      "&from=groupmessage&isappinstalled=0&clicktime=1700000000&enterid=17")
    assert reply["text"] == DUPLICATE.format(n=1, state="较大，已定级")
    other = await bot.say("liu_yang", "上报 另一篇 https://mp.weixin.qq.com/s?__biz=MzA5&mid=26&idx=2&sn=7c")
    assert other["text"].startswith("已受理舆情线索 #2")


async def test_new_lead_words_force_a_new_item_issue12_p9(bot: Bot) -> None:
    await bot.say("liu_yang", REPORT)
    at_end = await bot.say("liu_yang", "上报 东风小区停水后又出现管道爆裂 https://weibo.com/123/abc 新线索")
    assert at_end["text"].startswith("已受理舆情线索 #2")
    at_start = await bot.say("liu_yang", "上报 新线索：东风小区居民聚集 https://weibo.com/123/abc?from=timeline")
    assert at_start["text"].startswith("已受理舆情线索 #3")
    assert (await stored(bot, 2)).summary == "东风小区停水后又出现管道爆裂 https://weibo.com/123/abc"
    assert (await stored(bot, 3)).summary == "东风小区居民聚集 https://weibo.com/123/abc?from=timeline"
    async with bot.runtime.db.read() as session:
        reported = list((await session.execute(
            select(ItemEvent.after).where(ItemEvent.action == "reported").order_by(ItemEvent.id)
        )).scalars())
    assert [after.get("new_lead", False) for after in reported] == [False, True, True]
    assert await supplements(bot) == []
    # Without the words, the link joins the newest of its items.
    assert (await bot.say("liu_yang", REPORT))["text"].startswith("与 #3 重复")


async def test_duplicate_of_a_closed_item_says_it_is_closed_issue12_p9(bot: Bot) -> None:
    await bot.say("liu_yang", REPORT)
    await bot.say("zhao_min", "3")
    await bot.say("yang_fan", "回应 #1 公开答复 已答复居民")
    await bot.say("li_hua", "办结 #1 已恢复供水")
    reply = await bot.say("liu_yang", AGAIN)
    assert reply["text"] == DUPLICATE.format(n=1, state="一般，已办结")
    assert [e.detail for e in await supplements(bot)] == [AGAIN.removeprefix("上报 ")]
    assert await count(bot, Item) == 1


async def test_duplicate_of_a_classified_item_leaks_nothing_issue12_p9(bot: Bot) -> None:
    secrets = ("weibo.com/secret9", "甲乙丙", "寅卯补充", "午未补充")
    await bot.say("liu_yang", "上报 【涉密】城关镇某敏感事项甲乙丙 https://weibo.com/secret9")
    # The same link from another group, unmarked: joins the 涉密 item without showing anything.
    reply = await bot.say("sun_li", "上报 补充 https://weibo.com/secret9 寅卯补充", chat="dingtalk_duty")
    assert reply["text"] == DUPLICATE.format(n=1, state="待定级")
    # A 涉密 supplement of a public item: its text stays out of the public item's timeline.
    await bot.say("liu_yang", "上报 城关镇老街积水 https://weibo.com/public1")
    marked = await bot.say("liu_yang", "上报 https://weibo.com/public1 午未补充（涉密）")
    assert marked["text"] == DUPLICATE.format(n=2, state="待定级")
    for chat, person in (("wecom_duty", "zhao_min"), ("dingtalk_duty", "sun_li"), ("coordinators", "zhao_min")):
        await bot.say(person, "查询 #1", chat=chat)
        await bot.say(person, "查询 #2", chat=chat)
    posted = [m["text"] for chat in bot.config.chats for m in await bot.messages(chat.id) if m["from"] == "bot"]
    assert len(posted) >= 8
    assert [(s, t) for t in posted for s in secrets if s in t] == []
    assert sum(CLASSIFIED_DETAIL in t for t in posted) >= 3  # #2's timeline shows the entry, not its text
    # The record keeps what was said, outside any group.
    events = await supplements(bot)
    assert [e.detail for e in events] == [CLASSIFIED_DETAIL, CLASSIFIED_DETAIL]
    assert "寅卯补充" in events[0].after["summary"] and events[1].after["classified"] is True
