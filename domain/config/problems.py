"""Problems in a configuration file, in the operator's words.

pydantic's errors are translated into Chinese by error type and field; the cross-references
(unknown units and people, duplicate ids, the unit tree, channels and chats, the category table)
are checked on the raw TOML document, so that both kinds are reported in one pass instead of the
second batch appearing only after the first is fixed. Every entry is named by its id
(`units[chengguan].parent`); an entry without a usable id, or a plain list item, by its position
counted from 1 (`roles[第1项]`), as a person counting [[units]] blocks in the file would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from domain.vocab import GLOBAL_ROLES, UNIT_ROLES

# Lists whose entries carry a natural key: entries are named by it when it is unique.
KEYED = {"units": "id", "people": "id", "chats": "id", "channels": "id", "categories": "name",
         "response_forms": "name", "webhooks": "id"}
PLATFORM_NAMES = {"wecom": "企业微信", "dingtalk": "钉钉", "local": "本地"}
PLATFORM_IDS = (("wecom", "wecom_userid", "企业微信账号"), ("dingtalk", "dingtalk_userid", "钉钉账号"))
# Compared by value: the raw document holds plain strings.
_UNIT_ROLES = frozenset(role.value for role in UNIT_ROLES)
_GLOBAL_ROLES = frozenset(role.value for role in GLOBAL_ROLES)


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{'警告：' if self.warning else ''}{self.path}：{self.message}"


# -- where ------------------------------------------------------------------------------------------


def _position(index: int) -> str:
    return f"[第{index + 1}项]"


def _entry_label(section: str, items: list[Any], index: int) -> str:
    key = KEYED.get(section)
    entry = items[index]
    ident = entry.get(key) if key and isinstance(entry, dict) else None
    if isinstance(ident, str) and ident.strip():
        same = sum(1 for other in items if isinstance(other, dict) and other.get(key) == ident)
        if same == 1:
            return f"[{ident}]"
    return _position(index)


def toml_path(data: Any, loc: tuple[int | str, ...]) -> str:
    """A pydantic location as the operator finds it in the file: entries by id, positions from 1."""
    path, node, section = "", data, ""
    for part in loc:
        if isinstance(part, int):
            items = node if isinstance(node, list) else []
            path += _entry_label(section, items, part) if part < len(items) else _position(part)
            node = items[part] if part < len(items) else None
            continue
        if part == "[key]" or (isinstance(node, dict) and part not in node and part == node.get("platform")):
            continue  # a dict key's own error, or the tag pydantic adds for the channel's platform
        path += f".{part}" if path else part
        node = node.get(part) if isinstance(node, dict) else None
        section = part
    return path or "（文件顶层）"


# -- what: pydantic's errors in Chinese ------------------------------------------------------------------


def describe(value: Any) -> str:
    """The value as the operator wrote it, with its TOML kind (numbers and text look alike in Chinese)."""
    if isinstance(value, bool):
        return f"布尔值 {'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"数字 {value:g}" if isinstance(value, float) else f"数字 {value}"
    if isinstance(value, str):
        return f"文本“{value if len(value) <= 40 else value[:40] + '…'}”"
    if isinstance(value, list):
        return "列表"
    if isinstance(value, dict):
        return "表"
    return "空值"


def _options(expected: object) -> str:
    words = re.findall(r"'([^']*)'", str(expected))
    return "、".join(words) if words else str(expected)


def _pattern_message(field: str, value: Any) -> str:
    now = f"（当前为{describe(value)}）"
    if field == "id":
        return "编号只能用英文字母、数字、下划线、点或短横线，最长 64 个字符" + now
    if field.endswith("_env"):
        return "环境变量名只能用大写英文字母、数字和下划线，并以字母开头" + now
    if field in ("start", "end"):
        return "时刻应写成 HH:MM（24 小时制），例如 22:00" + now
    return "格式不对" + now


_SIMPLE = {
    "missing": "缺少必填项",
    "extra_forbidden": "未知的配置项（请对照 config.example.toml 检查拼写）",
    "list_type": "必须是列表（用方括号 [ ] 括起）",
    "dict_type": "必须是表（[节] 或 { 键 = 值 }）",
    "model_type": "必须是表（[节] 或 { 键 = 值 }）",
    "model_attributes_type": "必须是表（[节] 或 { 键 = 值 }）",
    "union_tag_not_found": "缺少 platform（wecom 或 dingtalk）",
}
_WITH_VALUE = {
    "string_type": "必须是文本",
    "int_type": "必须是整数", "int_parsing": "必须是整数", "int_from_float": "必须是整数",
    "float_type": "必须是数字", "float_parsing": "必须是数字",
    "bool_type": "必须是 true 或 false", "bool_parsing": "必须是 true 或 false",
    "time_type": "时刻应写成 HH:MM，例如 16:00", "time_parsing": "时刻应写成 HH:MM，例如 16:00",
    "date_type": "日期应写成 YYYY-MM-DD，例如 2027-01-01", "date_parsing": "日期应写成 YYYY-MM-DD，例如 2027-01-01",
    "date_from_datetime_parsing": "日期应写成 YYYY-MM-DD，例如 2027-01-01",
    "date_from_datetime_inexact": "日期应写成 YYYY-MM-DD，例如 2027-01-01",
}
_BOUNDS = {"greater_than": ("gt", "必须大于"), "greater_than_equal": ("ge", "不能小于"),
           "less_than": ("lt", "必须小于"), "less_than_equal": ("le", "不能大于")}


def translate(error: ErrorDetails) -> str:
    """One pydantic error in field-aware Chinese."""
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    field = next((str(p) for p in reversed(error["loc"]) if isinstance(p, str) and p != "[key]"), "")
    now = f"（当前为{describe(value)}）"
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind in _WITH_VALUE:
        return _WITH_VALUE[kind] + now
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        bound = ctx.get(key)
        return f"{words} {bound:g}{now}" if isinstance(bound, float) else f"{words} {bound}{now}"
    if kind in ("literal_error", "enum"):
        return f"只能是 {_options(ctx.get('expected'))}{now}"
    if kind == "union_tag_invalid":
        return f"platform 只能是 {_options(ctx.get('expected_tags'))}（当前为“{ctx.get('tag')}”）"
    if kind == "string_pattern_mismatch":
        return _pattern_message(field, value)
    if kind == "string_too_short":
        return "不能为空" if ctx.get("min_length") == 1 else f"至少 {ctx.get('min_length')} 个字符{now}"
    if kind == "string_too_long":
        return f"最多 {ctx.get('max_length')} 个字符{now}"
    if kind == "too_short":
        return f"至少需要 {ctx.get('min_length')} 项"
    if kind == "too_long":
        return f"最多 {ctx.get('max_length')} 项"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    return f"取值无效{now}"


_TOML_WORDS = {
    "Invalid value": "取值无效（文本须加引号）",
    "Expected '=' after a key in a key/value pair": "键后面缺少“=”",
    "Invalid statement": "无法识别的语句",
    "Unclosed array": "方括号没有闭合",
    "Unterminated string": "引号没有闭合",
    "Cannot overwrite a value": "同一个键写了两次",
    "Cannot declare": "同一个表写了两次",
}


def toml_syntax_message(error: ValueError) -> str:
    """tomllib's message in Chinese, with the line and column it names."""
    text = str(error)
    where = re.search(r"\(at line (\d+), column (\d+)\)", text)
    detail = text[: where.start()].strip() if where else text
    words = next((zh for en, zh in _TOML_WORDS.items() if detail.startswith(en)), detail)
    place = f"第 {where.group(1)} 行第 {where.group(2)} 列" if where else "文件末尾"
    return f"TOML 语法错误：{place}，{words}"


def pydantic_problems(error: ValidationError, data: Any) -> list[Problem]:
    return [Problem(toml_path(data, tuple(item["loc"])), translate(item)) for item in error.errors()]


# -- cross-references, on the raw document ------------------------------------------------------------


def _labelled(items: Any, prefix: str, section: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, entry) for each table in a list; entries of the wrong type are pydantic's to report."""
    if not isinstance(items, list):
        return
    for index, entry in enumerate(items):
        if isinstance(entry, dict):
            yield f"{prefix}{_entry_label(section, items, index)}", entry


def _strings(value: Any) -> Iterator[tuple[int, str]]:
    if isinstance(value, list):
        yield from ((i, v) for i, v in enumerate(value) if isinstance(v, str))


def _ids(data: Mapping[str, Any], section: str) -> set[str]:
    return {e["id"] for _, e in _labelled(data.get(section), section, section) if isinstance(e.get("id"), str)}


def _duplicates(data: Mapping[str, Any], section: str, noun: str) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for label, entry in _labelled(data.get(section), section, section):
        ident = entry.get("id")
        if isinstance(ident, str):
            if ident in seen:
                problems.append(Problem(f"{label}.id", f"编号“{ident}”与前面的{noun}重复"))
            seen.add(ident)
    return problems


def _check_units(data: Mapping[str, Any], unit_ids: set[str]) -> list[Problem]:
    problems = []
    units = list(_labelled(data.get("units"), "units", "units"))
    parents = {e["id"]: e.get("parent") for _, e in units if isinstance(e.get("id"), str)}
    for label, unit in units:
        parent = unit.get("parent")
        if isinstance(parent, str) and parent not in unit_ids:
            problems.append(Problem(f"{label}.parent", f"未知的单位“{parent}”"))
        if not isinstance(unit.get("id"), str):
            continue
        # Walk up the tree; a cycle would make "which unit is in charge" undefined.
        chain, current = [unit["id"]], parent
        while isinstance(current, str) and current in parents:
            if current in chain:
                problems.append(Problem(f"{label}.parent", f"单位上下级关系成环（{' → '.join([*chain, current])}）"))
                break
            chain.append(current)
            current = parents[current]
    return problems


def _check_people(data: Mapping[str, Any], unit_ids: set[str], person_ids: set[str]) -> list[Problem]:
    problems = []
    for label, person in _labelled(data.get("people"), "people", "people"):
        for path, assignment in _labelled(person.get("roles"), f"{label}.roles", "roles"):
            role, unit = assignment.get("role"), assignment.get("unit")
            if role in _UNIT_ROLES and unit is None:
                problems.append(Problem(f"{path}.unit", f"角色“{role}”须写所属单位（unit）"))
            elif role in _GLOBAL_ROLES and unit is not None:
                problems.append(Problem(f"{path}.unit", f"角色“{role}”是全局角色，不属于某个单位，请删除 unit"))
            elif isinstance(unit, str) and unit not in unit_ids:
                problems.append(Problem(f"{path}.unit", f"未知的单位“{unit}”"))
        deputy = person.get("deputy")
        if isinstance(deputy, str) and deputy not in person_ids:
            problems.append(Problem(f"{label}.deputy", f"未知的人员“{deputy}”"))
        elif deputy is not None and deputy == person.get("id"):
            problems.append(Problem(f"{label}.deputy", "不能指定本人为自己的 B 角"))
        if all(person.get(key) is None for key in ("mobile", "wecom_userid", "dingtalk_userid")):
            problems.append(Problem(label, "没有手机号，也没有平台账号：无法联系", warning=True))
    return problems


def _check_chats(data: Mapping[str, Any], unit_ids: set[str], person_ids: set[str]) -> list[Problem]:
    problems = []
    for label, chat in _labelled(data.get("chats"), "chats", "chats"):
        unit = chat.get("unit")
        if isinstance(unit, str) and unit not in unit_ids:
            problems.append(Problem(f"{label}.unit", f"未知的单位“{unit}”"))
        for field in ("duty_officers", "duty_leaders"):
            for index, person in _strings(chat.get(field)):
                if person not in person_ids:
                    problems.append(Problem(f"{label}.{field}{_position(index)}", f"未知的人员“{person}”"))
        if chat.get("platform") in ("wecom", "dingtalk") and chat.get("platform_chat_id") is None:
            problems.append(Problem(f"{label}.platform_chat_id", "未填写：无法识别来自平台的消息属于本群",
                                    warning=True))
    return problems


def _check_channels(data: Mapping[str, Any]) -> list[Problem]:
    problems = []
    chats = {e["id"]: e for _, e in _labelled(data.get("chats"), "chats", "chats") if isinstance(e.get("id"), str)}
    bound: dict[str, str] = {}
    for label, channel in _labelled(data.get("channels"), "channels", "channels"):
        platform = channel.get("platform")
        if platform not in ("wecom", "dingtalk"):  # pydantic names the platform; its chats are not unbound
            bound.update({chat_id: str(channel.get("id")) for _, chat_id in _strings(channel.get("chats"))})
            continue
        for index, chat_id in _strings(channel.get("chats")):
            path = f"{label}.chats{_position(index)}"
            chat = chats.get(chat_id)
            if chat is None:
                problems.append(Problem(path, f"未知的群聊“{chat_id}”"))
            elif chat.get("platform") != platform:
                where = PLATFORM_NAMES.get(str(chat.get("platform")), str(chat.get("platform")))
                problems.append(Problem(path, f"群聊“{chat_id}”是{where}群，不能由 {platform} 通道服务"))
            elif chat_id in bound:
                problems.append(Problem(path, f"群聊“{chat_id}”已由通道“{bound[chat_id]}”服务"))
            else:
                bound[chat_id] = str(channel.get("id"))
    if not isinstance(data.get("channels"), list) or not data["channels"]:
        return problems
    for label, chat in _labelled(data.get("chats"), "chats", "chats"):
        if chat.get("platform") in ("wecom", "dingtalk") and chat.get("id") not in bound:
            problems.append(Problem(label, f"{PLATFORM_NAMES[chat['platform']]}群“{chat.get('id')}”不在任何通道的 "
                                    "chats 中：通知只记录，不会发出", warning=True))
    return problems


def _check_platform_ids(data: Mapping[str, Any]) -> list[Problem]:
    """People who cannot be @-mentioned natively on a platform the deployment uses."""
    platforms = {c.get("platform") for _, c in _labelled(data.get("channels"), "channels", "channels")}
    problems = []
    for label, person in _labelled(data.get("people"), "people", "people"):
        for platform, key, name in PLATFORM_IDS:
            if platform in platforms and not person.get(key) and not person.get("mobile"):
                problems.append(Problem(f"{label}.{key}", f"没有{name}，也没有手机号：通知中只写姓名，无法 @",
                                        warning=True))
    return problems


def _check_webhooks(data: Mapping[str, Any], unit_ids: set[str]) -> list[Problem]:
    """A subscriber's unit filter names known units (a misspelt one would silently send nothing)."""
    problems = []
    for label, hook in _labelled(data.get("webhooks"), "webhooks", "webhooks"):
        for index, unit in _strings(hook.get("units")):
            if unit not in unit_ids:
                problems.append(Problem(f"{label}.units{_position(index)}", f"未知的单位“{unit}”"))
    return problems


def _check_policy(policy: Mapping[str, Any]) -> list[Problem]:
    """The category table: each name once, no blank keyword (it would match every report), and
    every emergency category in it (a misspelt name would silently turn off the 突发事件 rules)."""
    problems = []
    names: set[str] = set()
    for label, rule in _labelled(policy.get("categories"), "policy.categories", "categories"):
        name = rule.get("name")
        if isinstance(name, str) and name in names:
            problems.append(Problem(f"{label}.name", f"类别“{name}”重复"))
        names.add(str(name))
        for index, word in _strings(rule.get("keywords")):
            if not word.strip():
                problems.append(Problem(f"{label}.keywords{_position(index)}", "关键词为空，会匹配所有线索"))
    for index, name in _strings(policy.get("emergency_categories")):
        if name not in names:
            problems.append(Problem(f"policy.emergency_categories{_position(index)}",
                                    f"未知的类别“{name}”（policy.categories 中没有这个名称）"))
    return problems + _check_response_forms(policy)


def _check_response_forms(policy: Mapping[str, Any]) -> list[Problem]:
    """Each phrasing names one form (else 回应 would have to guess), and the form a 重大 突发事件
    expects is one of them (a misspelt name would silently drop that reminder)."""
    problems = []
    owner: dict[str, str] = {}
    forms = list(_labelled(policy.get("response_forms"), "policy.response_forms", "response_forms"))
    for label, rule in forms:
        name = str(rule.get("name"))
        phrasings = [(f"{label}.name", rule.get("name"))]
        phrasings += [(f"{label}.aliases{_position(i)}", alias) for i, alias in _strings(rule.get("aliases"))]
        for path, phrase in phrasings:
            if not isinstance(phrase, str):
                continue
            if not phrase.strip():
                problems.append(Problem(path, "说法为空"))
            elif owner.get(phrase, name) != name:
                problems.append(Problem(path, f"“{phrase}”已是回应形式“{owner[phrase]}”的说法"))
            owner.setdefault(phrase, name)
    form = policy.get("press_conference_form")
    if isinstance(form, str) and form not in {rule.get("name") for _, rule in forms}:
        problems.append(Problem("policy.press_conference_form",
                                f"未知的回应形式“{form}”（policy.response_forms 中没有这个名称）"))
    return problems


def reference_problems(data: Mapping[str, Any], policy_defaults: Mapping[str, Any]) -> list[Problem]:
    """Problems that need the whole file: duplicate ids, references to unknown ids, the unit tree,
    channel bindings, the policy tables (`policy_defaults` stands in for what the file leaves out)."""
    unit_ids, person_ids = _ids(data, "units"), _ids(data, "people")
    problems = _duplicates(data, "units", "单位") + _duplicates(data, "people", "人员")
    problems += _duplicates(data, "chats", "群聊")
    problems += _check_units(data, unit_ids)
    problems += _check_people(data, unit_ids, person_ids)
    problems += _check_chats(data, unit_ids, person_ids)
    problems += _duplicates(data, "channels", "通道") + _check_channels(data)
    problems += _check_platform_ids(data)
    problems += _duplicates(data, "webhooks", "对外推送") + _check_webhooks(data, unit_ids)
    policy = data.get("policy")
    return problems + _check_policy({**policy_defaults, **(policy if isinstance(policy, dict) else {})})
