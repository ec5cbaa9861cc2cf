"""Pure text parsing shared by the command parsers: normalisation, item numbers, grades, lists.

Users type on phones in Chinese input methods: full-width ＃ and digits, full-width spaces and
colons, "12号" for item 12. Everything is folded to one form before matching.
"""

from __future__ import annotations

import re
import unicodedata

from domain.vocab import Grade

MAX_TEXT = 4000

_SPACES = re.compile(r"\s+")
# "#12重大" and "12号重大" are unambiguous; only a bare "12" needs a boundary after it.
_ITEM_REF = re.compile(r"^(?:#\s*(\d{1,9})(?![0-9A-Za-z])|第?(\d{1,9})\s*号|(\d{1,9})(?=$|\s|[,，、:：;；。]))")
_LEADING_SEPARATORS = " :：,，、。.;；"
# A link ends at any Chinese punctuation normalize() keeps (see _KEEP): "见https://…！快看".
_URL = re.compile(r"https?://[^\s<>\"'，。：；！？（）【】、“”‘’《》「」]+", re.IGNORECASE)

_GRADE_WORDS = {
    "重大": Grade.MAJOR,
    "较大": Grade.SIGNIFICANT,
    "一般": Grade.GENERAL,
    "1": Grade.MAJOR,
    "2": Grade.SIGNIFICANT,
    "3": Grade.GENERAL,
    "一": Grade.MAJOR,
    "二": Grade.SIGNIFICANT,
    "三": Grade.GENERAL,
    "i": Grade.MAJOR,
    "ii": Grade.SIGNIFICANT,
    "iii": Grade.GENERAL,
}

# Unmistakably meant as a grade, but none of ours (DOMAIN: 重大 / 较大 / 一般): 特别重大 is the
# national level above 重大.
_NOT_GRADES = frozenset({"特别重大", "特重大", "特大", "特别严重", "较重大", "较严重"})
# Levels of other scales and everyday words of severity: a grade where one is expected, or when
# written as a level ("四级", "红色预警"); on their own they are as likely something else.
_OTHER_LEVELS = frozenset({
    "0", "4", "5", "6", "7", "8", "9", "零", "四", "五", "六", "七", "八", "九", "iv", "v", "vi",
    "大", "中", "小", "高", "低", "中等", "较高", "较低", "较小", "普通", "轻微", "一般性",
    "严重", "紧急", "特急", "加急", "重要", "红", "橙", "黄", "蓝", "红色", "橙色", "黄色", "蓝色",
})

# Chinese punctuation is part of what people write (a summary, a verdict): keep it as typed.
# Everything else full-width (＃, digits, letters, the ideographic space) is folded by NFKC.
_KEEP = frozenset("，。：；！？（）【】、“”‘’《》")


def _fold(char: str) -> str:
    return char if char in _KEEP else unicodedata.normalize("NFKC", char)


def normalize(text: str) -> str:
    """Fold full-width forms, unify spaces, trim; Chinese punctuation (，：、。…) is kept as typed."""
    folded = "".join(_fold(c) for c in text)
    folded = folded.replace("\u200b", "").replace("\ufeff", "")
    lines = [_SPACES.sub(" ", line).strip() for line in folded.splitlines()]
    return "\n".join(line for line in lines if line)


def strip_separators(text: str) -> str:
    return text.lstrip(_LEADING_SEPARATORS).strip()


def split_verb(text: str, verbs: list[str]) -> tuple[str, str] | None:
    """Match the longest verb at the start of normalized text, ignoring letter case ("HELP",
    "Help"); return (verb as registered, rest)."""
    for verb in sorted(verbs, key=len, reverse=True):
        if text[: len(verb)].casefold() == verb.casefold():
            # "上报xxx" without a space is accepted: phone users often omit it.
            return verb, strip_separators(text[len(verb) :])
    return None


def take_item_ref(text: str) -> tuple[int, str] | None:
    """Parse a leading item number: "#12", "＃12", "12号", "第12号" or "12"; return (n, rest)."""
    match = _ITEM_REF.match(text.strip())
    if match is None:
        return None
    number = int(next(g for g in match.groups() if g is not None))
    if number == 0:  # items are numbered from 1; "#0" is a typo, not an item
        return None
    return number, strip_separators(text.strip()[match.end() :])


def _grade_word(word: str) -> str:
    cleaned = word.strip().strip("级").strip().lower()
    return cleaned.removesuffix("舆情").removesuffix("级").strip()


def parse_grade(word: str) -> Grade | None:
    return _GRADE_WORDS.get(_grade_word(word))


def grade_like(word: str, *, loose: bool = False) -> bool:
    """Whether a word that is not one of the three grades was meant as a grade, so that it gets
    the list of grades instead of "unrecognised": the national scale's 特别重大, a level outside
    1–3 written as a level (四级, 4级, Ⅳ级), a warning colour (红色预警). `loose` adds what is a
    grade only where one is expected — answering the grade question, after "#12" or 定级: a
    bare 4, 五, 大, 严重, 红色."""
    if parse_grade(word) is not None:
        return False
    cleaned = word.strip().lower()
    for suffix in ("舆情", "事件", "响应"):
        cleaned = cleaned.removesuffix(suffix).strip()
    # Written as a level ("四级", "红色预警"), a word of severity is meant as a grade anywhere.
    marked = cleaned.endswith(("级", "预警"))
    cleaned = cleaned.removesuffix("预警").removesuffix("级").strip()
    if cleaned in _NOT_GRADES:
        return True
    return cleaned in _OTHER_LEVELS and (loose or marked)


def split_list(text: str) -> list[str]:
    """Split "城关镇、卫健局,教育局 应急局" into names."""
    parts = re.split(r"[、,，;；/\s]+", text.strip())
    return [p for p in parts if p]


def find_urls(text: str) -> list[str]:
    return [m.group(0).rstrip(".,)") for m in _URL.finditer(text)]
