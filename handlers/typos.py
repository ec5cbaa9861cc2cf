"""Did you mean: a command verb typed one character off (上保 → 上报, 签手 → 签收, 查寻 → 查询,
hlep → help), and the corrected text to send instead.

Pure string rules; the Dispatcher hands in, for each verb, which command it belongs to and
whether that command's parser accepts a text. A suggestion is made only for a close match that
cannot be ordinary chat (see `suggest`): a wrong guess costs the duty officer more than none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from handlers.intake import reads_like_report
from handlers.parsing import strip_separators, take_item_ref

# A typed verb is a word: Chinese characters or Latin letters, nothing else.
_WORD = re.compile(r"[\u3400-\u9fffA-Za-z]+")
# What may follow a verb: the end, a space, a separator, an item number or an @-mention.
_AFTER_VERB = frozenset(" :：,，、;；。#@0123456789\n")


@dataclass(frozen=True)
class Verb:
    """What `suggest` needs to know of a verb: its command (verbs of one command share the
    number), and whether the command's parser takes a text after the verb."""

    command: int
    accepts: Callable[[str], bool]


# Real words one character from a verb, sent alone in a duty group as ordinary chat: never
# "corrected" when they come without anything after them (请示 is not a mistyped 请假).
ORDINARY_WORDS = frozenset({
    "请示", "请问", "请客", "回复", "回答", "回来", "回到", "回头", "上传", "上班", "下班", "加班", "退出", "签字",
    "签名", "查看", "查找", "查收", "查查", "值守", "值日", "代办", "代表", "收到", "好的", "上午", "下午", "上级",
    "报告", "汇报", "呈报", "转发", "转告", "转交", "交接", "办理", "办公", "办完", "办好", "进行", "进来", "合作",
    "合同", "移动", "移除", "排查", "排队", "排名", "待定", "待命", "帮忙", "帮我", "定好", "定了", "涉及", "结束",
})


@dataclass(frozen=True)
class Suggestion:
    """A did-you-mean: the corrected text to send; `bare` when only the verb was typed (its
    arguments are missing, so the answer shows the command's usage instead of a text to copy)."""

    text: str
    bare: bool = False
    usage: str = ""  # the command's usage hint, for a bare verb (filled in by the Dispatcher)


@dataclass(frozen=True)
class NearMiss:
    verb: str  # the verb the typed word is one edit away from
    typed: str  # the word as typed
    rest: str  # what follows it, leading separators stripped


def one_edit_apart(a: str, b: str) -> bool:
    """Exactly one substitution, insertion, deletion, or swap of two neighbours (optimal string
    alignment distance 1): 签手/签收, 上报报/上报, 不予回/不予回应, 收签/签收."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) == 1:
            return True
        first, *others = diffs
        return others == [first + 1] and a[first] == b[first + 1] and a[first + 1] == b[first]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def after_verb_ok(text: str, end: int) -> bool:
    """Whether a verb ending at `end` stands apart from what follows ("签收 #5", "签收#5", "待办"),
    rather than being the start of a longer word ("签收情况", "上报人")."""
    return end >= len(text) or text[end] in _AFTER_VERB


def near_misses(text: str, verbs: Mapping[str, object]) -> list[NearMiss]:
    """Every verb (two characters or more) that the first word of `text` misses by one edit,
    where that word stands apart from what follows."""
    found = []
    for verb in verbs:
        if len(verb) < 2:  # "?" is one edit from any character
            continue
        for size in (len(verb) - 1, len(verb), len(verb) + 1):
            if size < 2 or size > len(text):
                continue
            typed = text[:size]
            if not _WORD.fullmatch(typed) or not after_verb_ok(text, size):
                continue
            if one_edit_apart(typed.casefold(), verb.casefold()):
                found.append(NearMiss(verb, typed, strip_separators(text[size:])))
    return found


def suggest(text: str, verbs: Mapping[str, Verb]) -> Suggestion | None:
    """The corrected text, when the first word of `text` is one edit from a verb and:

    - only one command is that close ("上班" is as close to 值班 as to 换班, 代班, 排班: no guess);
    - and what follows makes it a command: nothing, for a command complete on its own (带办 →
      待办, 帮主 → 帮助); an item number the command accepts (签手 #5, 查寻5号, 回复 #3 网上发布);
      or, for a command that needs a text (上报), a text that reads like a report (上保 网友在
      微博反映…). "上午 开会" or "回复 好的" is chat, not a command;
    - or the word alone, for a command that needs more (上保, 查寻): the verb, `bare`, unless the
      word is an ordinary one (ORDINARY_WORDS: 请示, 回复 …).
    """
    misses = near_misses(text, verbs)
    if len({verbs[miss.verb].command for miss in misses}) != 1:
        return None
    for miss in misses:
        if _makes_a_command(verbs[miss.verb], miss.rest):
            return Suggestion(f"{miss.verb} {miss.rest}" if miss.rest else miss.verb)
    alone = [miss for miss in misses if not miss.rest and miss.typed == text.strip()]
    if alone and alone[0].typed.casefold() not in ORDINARY_WORDS:
        return Suggestion(alone[0].verb, bare=True)
    return None


def _makes_a_command(verb: Verb, rest: str) -> bool:
    if not rest:
        return verb.accepts("")
    if not verb.accepts(rest):
        return False
    if take_item_ref(rest) is not None:
        return True
    return not verb.accepts("") and reads_like_report(rest)
