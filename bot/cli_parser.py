"""argparse in Chinese: help, usage and usage errors speak the operator's language throughout.

argparse's own words come from its gettext catalogue, which has no Chinese; rather than patch
the module, the parser names its sections and help option itself and translates each usage
error it would print (the messages are argparse's stable, documented ones).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

USAGE = "用法："
HELP = "显示本帮助并退出"
ERROR = "错误：{message}\n（用 `{prog} --help` 查看说明）\n"
# Placeholders shown for option values in help and usage (argparse would shout the dest in English).
METAVARS = {
    "config": "文件", "database": "URL", "host": "地址", "port": "端口", "speed": "倍数", "since": "日期",
    "start": "日期", "days": "天数", "chat": "群聊编号", "person": "人员", "output": "文件", "file": "文件",
    "log_level": "级别",
}
TYPE_NAMES = {"int": "整数", "float": "数字"}


def _width(text: str) -> int:
    """Columns on a terminal: Chinese characters take two (argparse counts one)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# Wrapping units: an ASCII word stays whole (an env var name is never cut), any other character alone.
_TOKENS = re.compile(r"[!-~]+|\s+|.")


class HelpFormatter(argparse.HelpFormatter):
    """Help columns and line wrapping measured in terminal columns, section titles in Chinese style."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        lines: list[str] = []
        line = ""
        for token in _TOKENS.findall(" ".join(text.split())):
            if line and _width(line + token.rstrip()) > width:
                lines.append(line.rstrip())
                line = ""
            if line or not token.isspace():
                line += token
        return [*lines, line.rstrip()] if line.strip() else lines

    def _format_action(self, action: argparse.Action) -> str:
        # argparse pads the option column by characters; take back one space per wide character,
        # or move the help to the next line when the option no longer fits its column.
        text = super()._format_action(action)
        invocation = self._format_action_invocation(action)
        extra = _width(invocation) - len(invocation)
        head, newline, tail = text.partition("\n")
        body = head.lstrip()
        indent = head[: len(head) - len(body)]
        after = body[len(invocation):]
        help_text = after.lstrip(" ")
        if not extra or not body.startswith(invocation) or not help_text:
            return text
        spaces = len(after) - len(help_text)
        if spaces - extra >= 2:
            return indent + invocation + " " * (spaces - extra) + help_text + newline + tail
        column = len(indent) + len(invocation) + spaces
        return f"{indent}{invocation}\n{' ' * column}{help_text}{newline}{tail}"

    def format_help(self) -> str:
        return re.sub(r"^(\S[^\n]*?):$", r"\1：", super().format_help(), flags=re.M)

    def add_usage(self, usage: str | None, actions: Iterable[argparse.Action],
                  groups: Iterable[argparse._MutuallyExclusiveGroup], prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, USAGE if prefix is None else prefix)

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        return METAVARS.get(action.dest, "值")

    def _get_default_metavar_for_positional(self, action: argparse.Action) -> str:
        return METAVARS.get(action.dest, action.dest)


class ArgumentParser(argparse.ArgumentParser):
    """A parser whose help and errors are Chinese; subcommand parsers are of the same class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        add_help = kwargs.pop("add_help", True)
        kwargs["add_help"] = False  # argparse's own -h says "show this help message and exit"
        super().__init__(*args, **kwargs)
        self._positionals.title = "位置参数"
        self._optionals.title = "选项"
        if add_help:
            self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS, help=HELP)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, ERROR.format(message=translate(message), prog=self.prog))


def _quoted(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)


def _names(text: str) -> str:
    return "、".join(part.strip() for part in text.split(","))


def _invalid_choice(match: re.Match[str]) -> str:
    name, value, choices = match["name"], match["value"], _quoted(match["choices"])
    close = difflib.get_close_matches(value, choices, n=1)
    hint = f"您是否要输入 {close[0]}？" if close else ""
    what = f"{name}“{value}”" if name in ("命令", "操作") else f"参数 {name} 的取值“{value}”"
    return f"未知的{what}。{hint}可选：{'、'.join(choices)}"


def _invalid_type(match: re.Match[str]) -> str:
    kind = TYPE_NAMES.get(match["type"], "有效的值")
    return f"参数 {match['name']} 应为{kind}（收到“{match['value']}”）"


_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^the following arguments are required: (?P<names>.+)$"),
     lambda m: f"缺少必填参数：{_names(m['names'])}"),
    (re.compile(r"^argument (?P<name>\S+): invalid choice: '(?P<value>.*)' \(choose from (?P<choices>.*)\)$"),
     _invalid_choice),
    (re.compile(r"^argument (?P<name>\S+): invalid (?P<type>\S+) value: '(?P<value>.*)'$"), _invalid_type),
    (re.compile(r"^argument (?P<name>\S+): expected one argument$"), lambda m: f"参数 {m['name']} 后面需要一个值"),
    (re.compile(r"^argument (?P<name>\S+): expected at most one argument$"),
     lambda m: f"参数 {m['name']} 后面最多一个值"),
    (re.compile(r"^argument (?P<name>\S+): expected at least one argument$"),
     lambda m: f"参数 {m['name']} 后面至少需要一个值"),
    (re.compile(r"^argument (?P<name>\S+): not allowed with argument (?P<other>.+)$"),
     lambda m: f"参数 {m['name']} 不能与 {m['other']} 同时使用"),
    (re.compile(r"^argument (?P<name>\S+): ignored explicit argument '(?P<value>.*)'$"),
     lambda m: f"参数 {m['name']} 不接受值（收到“{m['value']}”）"),
    (re.compile(r"^argument (?P<name>\S+): (?P<rest>.*)$", re.S), lambda m: f"参数 {m['name']}：{m['rest']}"),
    (re.compile(r"^unrecognized arguments: (?P<args>.*)$"), lambda m: f"无法识别的参数：{m['args']}"),
    (re.compile(r"^ambiguous option: (?P<option>\S+) could match (?P<matches>.*)$"),
     lambda m: f"选项 {m['option']} 不明确，可能是：{_names(m['matches'])}"),
    (re.compile(r"^one of the arguments (?P<names>.+) is required$"),
     lambda m: f"以下参数须提供其中一个：{m['names']}"),
    (re.compile(r"^expected (?P<count>\S+) arguments?$"), lambda m: f"需要 {m['count']} 个值"),
]


def translate(message: str) -> str:
    """An argparse usage error in Chinese; one argparse does not document is passed on as it is."""
    for pattern, render in _RULES:
        match = pattern.match(message)
        if match:
            return render(match)
    return message
