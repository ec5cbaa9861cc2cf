"""Several commands in one message: where one ends and the next begins.

Duty officers send "签收 #10 办结 #10 已处理" or one command a line. The rule (pure text; the
Dispatcher adds the parser's view, see `Dispatcher.run`):

1. A line starts a new command when it begins with a verb that stands apart from what follows
   (`after_verb_ok`: "待办", "值班 明天", "签收#10" — but not "签收情况：…" or "上报人：…"), with
   a verb one character off followed by an item number ("签手 #5", answered with "您是不是要发
   送…"), or with the grade shorthand "#12 重大". Any other line continues the command above: a
   上报, 进展, 回应 or 办结 text may run over several lines.
2. Within a line that begins with verb + item number, a new command begins before a verb that
   follows a space or punctuation (or directly an item number: "签收#10办结#10") and is itself
   followed by an item number. Nothing else in a line splits it: a 上报 text saying "网友称已
   签收" stays whole, and a 上报 line is never split at all (its Weibo topics look like "#123").
3. A command that begins with verb + item number (a "certain" start) is a command wherever it
   stands. Any other later start is a command only if its parser accepts it; if not ("上报 …" then
   a line "回应 暂无"), the line may as well be part of the text above: the commands before it
   are done, and it and everything after are sent back, not done (`PARTIAL`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from handlers.parsing import grade_like, parse_grade, split_verb, take_item_ref
from handlers.typos import after_verb_ok, near_misses

# More commands than this in one message are not run: a pasted document is not a batch of orders.
MAX_COMMANDS = 10
PARTIAL = "只办理了{done}指令；其余内容未执行，如需办理请分条发送：\n{rest}"
_DONE = {1: "第一条", 2: "前两条", 3: "前三条", 4: "前四条", 5: "前五条", 6: "前六条", 7: "前七条",
         8: "前八条", 9: "前九条", 10: "前十条"}

# Before a command inside a line: a space or punctuation, or the item number of the one before.
_BEFORE = frozenset(" ，,；;。、")
_ENDS_WITH_REF = re.compile(r"(?:#\s*\d+|\d+\s*号)$")
# "#12 重大" / "12号 较大": grading by shorthand needs an explicit number mark (handlers/grading.py).
_NUMBER_MARK = re.compile(r"^(?:#|第?\d+\s*号)")


@dataclass(frozen=True)
class Segment:
    text: str
    certain: bool  # began with verb + item number: a command wherever it stands


def partial_notice(done: int, rest: list[Segment]) -> str:
    return PARTIAL.format(done=_DONE.get(done, f"前{done}条"), rest="\n".join(s.text for s in rest))


def split_commands(text: str, verbs: Mapping[str, object]) -> list[Segment]:
    """The message as commands, in order (one segment when it holds one command or none)."""
    segments: list[Segment] = []
    for line in text.split("\n"):
        start = _line_start(line, verbs)
        if segments and start is None:
            last = segments[-1]
            segments[-1] = Segment(f"{last.text}\n{line}", last.certain)
            continue
        pieces = _split_line(line, verbs) if start == "item" else [line]
        segments += [Segment(piece, start == "item" or index > 0) for index, piece in enumerate(pieces)]
    return segments


def _line_start(line: str, verbs: Mapping[str, object]) -> str | None:
    """"item" for verb + item number, "verb" for a verb standing apart, else None."""
    matched = split_verb(line, list(verbs))
    if matched is not None:
        verb = matched[0]
        if not after_verb_ok(line, len(verb)):
            return None
        return "item" if take_item_ref(matched[1]) is not None else "verb"
    if any(take_item_ref(miss.rest) is not None for miss in near_misses(line, verbs)):
        return "item"
    return "item" if _grade_shorthand(line) else None


def _grade_shorthand(line: str) -> bool:
    ref = take_item_ref(line) if _NUMBER_MARK.match(line) else None
    if ref is None or not ref[1]:
        return False
    word = ref[1].split(" ", 1)[0]
    return parse_grade(word) is not None or grade_like(word, loose=True)


def _split_line(line: str, verbs: Mapping[str, object]) -> list[str]:
    """Split a command line before each later verb + item number (rule 2)."""
    cuts = [0]
    index = 1
    while index < len(line):
        if _command_may_begin(line, index):
            matched = split_verb(line[index:], list(verbs))
            if (matched is not None and after_verb_ok(line, index + len(matched[0]))
                    and take_item_ref(matched[1]) is not None):
                cuts.append(index)
                index += len(matched[0])
                continue
        index += 1
    pieces = [line[start:end].strip() for start, end in zip(cuts, [*cuts[1:], len(line)], strict=True)]
    # The comma between two commands belongs to neither; the last command's text is kept as typed.
    return [piece.rstrip(" ，,；;。、") for piece in pieces[:-1]] + pieces[-1:]


def _command_may_begin(line: str, index: int) -> bool:
    before = line[index - 1]
    if before in _BEFORE:
        return True
    return (before.isdigit() or before == "号") and _ENDS_WITH_REF.search(line, max(0, index - 12), index) is not None
