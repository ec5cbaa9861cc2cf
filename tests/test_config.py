"""Config validation: every problem in one pass, in Chinese, entries named by id, cross-references checked."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from domain.config import parse_config
from tests.conftest import EXAMPLE_CONFIG


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))


def problems_of(data: dict[str, Any]) -> list[str]:
    _, problems = parse_config(data)
    return [str(p) for p in problems if not p.warning]


def test_example_config_is_valid_and_realistic() -> None:
    config, problems = parse_config(example())
    assert config is not None and [p for p in problems if not p.warning] == []
    kinds = {u.kind.value for u in config.units}
    assert len(config.units) >= 6 and {"镇街", "部门"} <= kinds
    assert len(config.people) >= 14
    assert {c.platform.value for c in config.chats} >= {"wecom", "dingtalk"}
    assert any(c.coordinators for c in config.chats)
    assert config.timezone == "Asia/Shanghai"


def test_every_problem_is_named_by_id_and_reported_in_one_pass() -> None:
    data = example()
    data["people"][3]["mobile"] = "12345"
    data["people"][4]["roles"] = [{"role": "分管领导", "unit": "nowhere"}]
    data["people"][5]["roles"] = [{"role": "值班员", "unit": "health"}]
    data["people"][6]["roles"] = [{"role": "联络员"}]
    data["people"][7]["roles"] = [{"role": "厨师"}]
    data["chats"][0]["unit"] = "atlantis"
    data["chats"][1]["duty_officers"] = ["ghost"]
    data["units"][1]["parent"] = "nowhere"
    data["units"][2]["id"] = data["units"][0]["id"]
    found = problems_of(data)
    # Type errors and cross-references together: nothing waits for a second run.
    assert found == [
        "people[chen_gang].mobile：“12345”不是大陆手机号（应为 11 位数字，以 1 开头）",
        "people[zheng_qiang].roles[第1项].role：只能是 主要负责人、分管领导、联络员、值班员、带班领导、协调、管理员"
        "（当前为文本“厨师”）",
        "units[第3项].id：编号“gov_office”与前面的单位重复",
        "units[propaganda].parent：未知的单位“nowhere”",
        "people[zhou_tao].roles[第1项].unit：未知的单位“nowhere”",
        "people[sun_li].roles[第1项].unit：角色“值班员”是全局角色，不属于某个单位，请删除 unit",
        "people[wu_fang].roles[第1项].unit：角色“联络员”须写所属单位（unit）",
        "people[feng_xue].roles[第1项].unit：未知的单位“health”",  # units[第3项] was health
        "chats[wecom_duty].unit：未知的单位“atlantis”",
        "chats[dingtalk_duty].duty_officers[第1项]：未知的人员“ghost”",
    ]


def test_a_type_error_and_a_bad_reference_are_reported_together() -> None:
    data = example()
    data["people"][1]["mobile"] = 13800000002  # a number where the file needs text
    data["units"][4]["parent"] = "xxx"
    config, problems = parse_config(data)
    assert config is None
    assert [str(p) for p in problems if not p.warning] == [
        "people[li_hua].mobile：必须是文本（当前为数字 13800000002）",
        "units[chengguan].parent：未知的单位“xxx”",
    ]


def test_pydantic_errors_speak_chinese_for_each_kind() -> None:
    data = example()
    data["units"][5]["kind"] = "乡镇"
    data["people"][2]["name"] = ""
    del data["people"][3]["name"]
    data["chats"][0]["coordinators"] = "是"
    data["delivery"]["rate_limit"] = "二十"
    data["delivery"]["tick_seconds"] = 0
    data["server"]["port"] = 70000
    data["channels"][0]["token_env"] = "wecom-token"
    data["channels"][1]["platform"] = "feishu"
    data["policy"]["quiet_hours"] = {"start": "9点"}
    data["roster"] = {"remind_time": "25:00", "day_types": {"2027-01-01": "节日"}}
    data["units"][0]["aliases"] = "县政府办"
    assert problems_of(data) == [
        "server.port：不能大于 65535（当前为数字 70000）",
        "delivery.rate_limit：必须是整数（当前为文本“二十”）",
        "delivery.tick_seconds：必须大于 0（当前为数字 0）",
        "units[gov_office].aliases：必须是列表（用方括号 [ ] 括起）",
        "units[dongfeng].kind：只能是 镇街、部门、垂直管理（当前为文本“乡镇”）",
        "people[zhao_min].name：不能为空",
        "people[chen_gang].name：缺少必填项",
        "chats[wecom_duty].coordinators：必须是 true 或 false（当前为文本“是”）",
        "channels[wecom].token_env：环境变量名只能用大写英文字母、数字和下划线，并以字母开头（当前为文本“wecom-token”）",
        "channels[dingtalk]：platform 只能是 wecom、dingtalk（当前为“feishu”）",
        "policy.quiet_hours.start：时刻应写成 HH:MM（24 小时制），例如 22:00（当前为文本“9点”）",
        "roster.day_types.2027-01-01：只能是 工作日、休息日、法定节假日（当前为文本“节日”）",
        "roster.remind_time：时刻应写成 HH:MM，例如 16:00（当前为文本“25:00”）",
    ]


def test_an_entry_without_a_usable_id_is_named_by_its_position() -> None:
    data = example()
    del data["people"][0]["id"]
    data["people"][1]["deputy"] = "wang_jun"  # the id is gone: an unknown person now
    assert problems_of(data) == [
        "people[第1项].id：缺少必填项",
        "people[li_hua].deputy：未知的人员“wang_jun”",
    ]


def test_unknown_keys_and_bad_values_are_errors() -> None:
    data = example()
    data["policy"]["major"]["pass_on_minutez"] = 30
    data["timezone"] = "Mars/Olympus"
    data["database"] = {"url": "mysql://x"}
    found = problems_of(data)
    assert "policy.major.pass_on_minutez：未知的配置项（请对照 config.example.toml 检查拼写）" in found
    assert "timezone：未知的时区“Mars/Olympus”（请用 IANA 时区名，例如 Asia/Shanghai）" in found
    assert any(p.startswith("database.url：数据库 URL 应为") for p in found)


def test_unit_cycle_is_reported() -> None:
    data = example()
    data["units"][0]["parent"] = "propaganda"
    data["units"][1]["parent"] = "gov_office"
    assert "units[gov_office].parent：单位上下级关系成环（gov_office → propaganda → gov_office）" in problems_of(data)


def test_unreachable_person_is_a_warning(tmp_path: Path) -> None:
    data = example()
    for key in ("mobile", "wecom_userid", "dingtalk_userid"):
        data["people"][0].pop(key)
    config, problems = parse_config(data)
    assert config is not None
    warnings = [str(p) for p in problems if p.warning]
    assert "警告：people[wang_jun]：没有手机号，也没有平台账号：无法联系" in warnings


def test_a_lease_shorter_than_two_post_timeouts_is_refused() -> None:
    data = example()
    data["delivery"].update(timeout_seconds=30, lease_seconds=45)
    [problem] = problems_of(data)
    assert problem.startswith("delivery：") and "lease_seconds（45）" in problem and "两倍" in problem
    data["delivery"].update(lease_seconds=60)
    assert problems_of(data) == []


def test_chat_secret_env_is_for_dingtalk_only_and_env_names_are_checked() -> None:
    data = example()
    index = next(i for i, chat in enumerate(data["chats"]) if chat["platform"] == "wecom")
    data["chats"][index]["secret_env"] = "DUTYBOT_SOME_SECRET"
    [problem] = problems_of(data)
    chat_id = data["chats"][index]["id"]
    assert problem.startswith(f"chats[{chat_id}]：") and "仅适用于钉钉群" in problem
    data = example()
    data["chats"][index]["webhook_env"] = "my-webhook"
    [problem] = problems_of(data)
    assert problem == (f"chats[{chat_id}].webhook_env：环境变量名只能用大写英文字母、数字和下划线，并以字母开头"
                       "（当前为文本“my-webhook”）")
