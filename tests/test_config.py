"""Config validation: every problem reported with its TOML path, cross-references checked."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from bot.config import parse_config
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


def test_every_problem_has_its_toml_path() -> None:
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
    assert "people[3].mobile: not a mainland mobile number" in found
    assert any(p.startswith("people[7].roles[0].role:") for p in found)
    # Structural errors stop before cross-checks; fix them and the cross-references show up.
    data["people"][3]["mobile"] = "13800000099"
    data["people"][7]["roles"] = []
    found = problems_of(data)
    assert "people[4].roles[0].unit: unknown unit 'nowhere'" in found
    assert "people[5].roles[0].unit: role 值班员 is global; remove unit" in found
    assert "people[6].roles[0].unit: role 联络员 needs a unit" in found
    assert "chats[0].unit: unknown unit 'atlantis'" in found
    assert "chats[1].duty_officers[0]: unknown person 'ghost'" in found
    assert "units[1].parent: unknown unit 'nowhere'" in found
    assert "units[2].id: duplicate id 'gov_office'" in found


def test_unknown_keys_and_bad_values_are_errors() -> None:
    data = example()
    data["policy"]["major"]["pass_on_minutez"] = 30
    data["timezone"] = "Mars/Olympus"
    data["database"] = {"url": "mysql://x"}
    found = problems_of(data)
    assert any(p.startswith("policy.major.pass_on_minutez: unknown key") for p in found)
    assert any(p.startswith("timezone: unknown timezone") for p in found)
    assert any(p.startswith("database.url:") for p in found)


def test_unit_cycle_is_reported() -> None:
    data = example()
    data["units"][0]["parent"] = "propaganda"
    data["units"][1]["parent"] = "gov_office"
    assert "units[0].parent: the unit tree has a cycle" in problems_of(data)


def test_unreachable_person_is_a_warning(tmp_path: Path) -> None:
    data = example()
    for key in ("mobile", "wecom_userid", "dingtalk_userid"):
        data["people"][0].pop(key)
    config, problems = parse_config(data)
    assert config is not None
    warnings = [str(p) for p in problems if p.warning]
    assert "warning: people[0]: no mobile and no platform id: cannot be reached" in warnings


def test_a_lease_shorter_than_two_post_timeouts_is_refused() -> None:
    data = example()
    data["delivery"].update(timeout_seconds=30, lease_seconds=45)
    [problem] = problems_of(data)
    assert problem.startswith("delivery:") and "lease_seconds（45）" in problem and "两倍" in problem
    data["delivery"].update(lease_seconds=60)
    assert problems_of(data) == []


def test_chat_secret_env_is_for_dingtalk_only_and_env_names_are_checked() -> None:
    data = example()
    index = next(i for i, chat in enumerate(data["chats"]) if chat["platform"] == "wecom")
    data["chats"][index]["secret_env"] = "DUTYBOT_SOME_SECRET"
    [problem] = problems_of(data)
    assert problem.startswith(f"chats[{index}]:") and "仅适用于钉钉群" in problem
    data = example()
    data["chats"][index]["webhook_env"] = "my-webhook"
    [problem] = problems_of(data)
    assert problem.startswith(f"chats[{index}].webhook_env:")
