"""Categories from the policy's keyword table (issue 12, point 11).

The default table (domain/categories.py) against sentences as duty staff write them, one or more per
area, and against the short words that would misfire; a table written in the TOML replaces the
default (pure and through a conversation on SQLite and PostgreSQL); the config check of the table.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot.clock import ManualClock
from domain.categories import DEFAULT_CATEGORIES
from domain.config import ConfigError, PolicySection, load_config, parse_config
from handlers.intake import guess_category
from tests.conftest import EXAMPLE_CONFIG, Bot, start_bot

DEFAULTS = PolicySection().categories
# 000 §二: the kinds that must be answered; the rules refer to 突发事件 and 自然灾害 by name.
REGULATION_NAMES = {"突发事件", "自然灾害", "谣言", "政策误读", "道德底线", "切身利益", "上级要求"}


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # Rumours first: a denied rumour of pollution is a rumour, not an environmental matter.
        ("网传城关镇自来水被污染，经核实系谣言", "谣言"),
        ("有人在抖音造谣称西岸街道发生命案", "谣言"),
        ("受台风影响，西岸街道多处农田被淹", "自然灾害"),
        ("暴雨导致滨河路积水", "自然灾害"),
        ("清河上游山体滑坡，阻断乡道", "自然灾害"),
        # Accidents.
        ("城关镇人民路一工地围墙坍塌，两人被压", "突发事件"),
        ("滨河路一居民楼电动车起火，浓烟弥漫", "突发事件"),
        ("工业园一化工厂发生爆炸", "突发事件"),
        ("老街一餐馆燃气泄漏，周边居民紧急疏散", "突发事件"),
        ("国道清河段发生交通事故致一人死亡", "突发事件"),
        ("东风小区电梯故障，有人员被困", "突发事件"),
        # Food poisoning is an emergency before it is a school or a food matter.
        ("城关二小多名学生在食堂就餐后疑似食物中毒", "突发事件"),
        ("市政府督办：城关镇垃圾清运不及时问题", "上级要求"),
        ("网曝某幼儿园老师虐童", "道德底线"),
        ("网友曲解医保新政，称今后看病不能报销", "政策误读"),
        ("有人误读新规，称要收费", "政策误读"),
        ("网友反映学校食堂饭菜变质", "食品安全"),
        ("网友称在城关超市买到过期食品", "食品安全"),
        ("有顾客称外卖里吃出虫子", "食品安全"),
        ("滨河路烧烤店门口有人打架斗殴", "社会治安"),
        ("多名老人遭遇电信诈骗", "社会治安"),
        ("工业园企业夜间偷排废水，河水发黑", "生态环境"),
        ("工地夜间施工噪音扰民", "生态环境"),
        ("农民工在城关镇某工地讨薪无果", "劳动薪酬"),
        ("网友称工业园拖欠工资", "劳动薪酬"),
        ("东风小区业主反映开发商延期交房", "住房物业"),
        ("滨河花园物业乱收费", "住房物业"),
        ("家长反映城关一中违规补课", "教育"),
        ("患者家属称卫生院延误救治", "医疗卫生"),
        ("西岸滨河路路灯不亮", "城市管理"),
        ("城关镇老街商户反映占道经营整治", "城市管理"),
        ("网友在微博反映城关镇东风小区停水三天", "切身利益"),
        ("征地补偿款迟迟未发放", "切身利益"),
        ("今天天气不错", "其他"),
        ("", "其他"),
    ],
)
def test_categories_from_keyword_table_issue12_p11(text: str, category: str) -> None:
    assert guess_category(text, DEFAULTS) == category


@pytest.mark.parametrize(
    ("text", "not_category"),
    [
        ("居民反映死亡证明办理难", "突发事件"),  # "死亡" alone would say emergency
        ("群众反映过期证件换领排长队", "食品安全"),  # "过期" alone would say food
        ("外卖骑手反映平台克扣工资", "食品安全"),  # "外卖" is not food safety
        ("产业聚集区道路破损", "突发事件"),  # "聚集" alone would say a mass incident
        ("居民长期被困扰于广场舞噪音", "突发事件"),  # "被困" alone
        ("企业反映新政策不实行补贴", "谣言"),  # "不实" alone
        ("网友反映医疗事故处理不公", "突发事件"),  # "事故" alone
        ("网友反映12345交办件无人答复", "上级要求"),  # every 12345 work order is 交办
    ],
)
def test_short_words_do_not_misfire_issue12_p11(text: str, not_category: str) -> None:
    assert guess_category(text, DEFAULTS) != not_category


def test_default_table_keeps_the_regulation_names_issue12_p11() -> None:
    names = [name for name, _ in DEFAULT_CATEGORIES]
    assert len(names) == len(set(names)) and REGULATION_NAMES <= set(names)
    assert set(PolicySection().emergency_categories) <= set(names)
    for name, words in DEFAULT_CATEGORIES:
        assert all(len(word) >= 2 for word in words), name
        assert len(words) == len(set(words)), name
    # The example config uses the defaults and passes the check.
    _, problems = parse_config(tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8")))
    assert [p for p in problems if p.path.startswith("policy.")] == []


CUSTOM = """
[[policy.categories]]
name = "突发事件"
keywords = ["起火", "冒烟"]

[[policy.categories]]
name = "自然灾害"
keywords = ["暴雨"]

[[policy.categories]]
name = "河湖管理"
keywords = ["河道", "河长"]
"""


def custom_config(tmp_path: Path, extra: str = CUSTOM) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


def test_a_table_in_the_toml_replaces_the_default_issue12_p11(tmp_path: Path) -> None:
    rules = load_config(custom_config(tmp_path)).policy.categories
    assert [(r.name, r.keywords) for r in rules] == [
        ("突发事件", ["起火", "冒烟"]), ("自然灾害", ["暴雨"]), ("河湖管理", ["河道", "河长"])
    ]
    assert guess_category("滨河路河道内有人倾倒垃圾", rules) == "河湖管理"  # 生态环境 by default
    assert guess_category("城关镇人民路发生火灾", rules) == "其他"  # the default words are gone


async def test_custom_categories_reach_the_report_issue12_p11(
    tmp_path: Path, db_url: str, clock: ManualClock
) -> None:
    config = load_config(custom_config(tmp_path)).with_database(db_url)
    client = await start_bot(config, clock)
    try:
        bot = Bot(client, clock, config)
        reply = await bot.say("liu_yang", "上报 滨河路河道内有人倾倒建筑垃圾")
        assert "类别：河湖管理" in reply["text"]
        smoke = await bot.say("liu_yang", "上报 老街一商铺门口冒烟")
        assert "类别：突发事件" in smoke["text"]
        # The emergency rules follow the table: a 一般 grade of it asks for a second look.
        notice = await bot.say("zhao_min", "3")
        assert "该线索类别为“突发事件”" in notice["text"]
    finally:
        await client.close()


def _problems(data: dict[str, Any]) -> list[str]:
    _, problems = parse_config(data)
    return [str(p) for p in problems if not p.warning]


def test_category_table_is_checked_with_toml_paths_issue12_p11() -> None:
    data = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["policy"]["categories"] = [
        {"name": "突发事件", "keywords": ["起火"]},
        {"name": "谣言", "keywords": ["谣言", " "]},
        {"name": "突发事件", "keywords": ["爆炸"]},
    ]
    data["policy"]["emergency_categories"] = ["突发事件", "自然灾害"]
    assert _problems(data) == [
        "policy.categories[谣言].keywords[第2项]：关键词为空，会匹配所有线索",
        "policy.categories[第3项].name：类别“突发事件”重复",
        "policy.emergency_categories[第2项]：未知的类别“自然灾害”（policy.categories 中没有这个名称）",
    ]
    data["policy"]["categories"] = []
    assert any(p.startswith("policy.categories：") for p in _problems(data))


def test_a_custom_table_without_the_emergency_names_is_refused_issue12_p11(tmp_path: Path) -> None:
    path = custom_config(tmp_path, '\n[[policy.categories]]\nname = "河湖管理"\nkeywords = ["河道"]\n')
    with pytest.raises(ConfigError, match=r"policy\.emergency_categories\[第1项\]：未知的类别“突发事件”"):
        load_config(path)


def test_response_forms_are_checked_with_toml_paths_004_art8() -> None:
    data = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["policy"]["response_forms"] = [
        {"name": "新闻发布会", "aliases": ["发布会"]},
        {"name": "网上发布", "aliases": ["发布会", " "]},
    ]
    data["policy"]["press_conference_form"] = "记者会"
    _, problems = parse_config(data)
    errors = {p.path: p.message for p in problems if not p.warning}
    assert errors["policy.response_forms[网上发布].aliases[第1项]"] == "“发布会”已是回应形式“新闻发布会”的说法"
    assert errors["policy.response_forms[网上发布].aliases[第2项]"] == "说法为空"
    assert errors["policy.press_conference_form"].startswith("未知的回应形式“记者会”")
