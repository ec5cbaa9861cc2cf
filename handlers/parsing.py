"""Pure text parsing shared by the command parsers: normalisation, item numbers, grades, lists.

Users type on phones in Chinese input methods: full-width ＃ and digits, full-width spaces and
colons, "12号" for item 12. Everything is folded to one form before matching.
"""

from __future__ import annotations

import re
import unicodedata

from bot.vocab import Grade

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
    """Match the longest verb at the start of normalized text; return (verb, rest)."""
    for verb in sorted(verbs, key=len, reverse=True):
        if text.startswith(verb):
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


def parse_grade(word: str) -> Grade | None:
    cleaned = word.strip().strip("级").strip().lower()
    cleaned = cleaned.removesuffix("舆情").removesuffix("级").strip()
    return _GRADE_WORDS.get(cleaned)


def split_list(text: str) -> list[str]:
    """Split "城关镇、卫健局,教育局 应急局" into names."""
    parts = re.split(r"[、,，;；/\s]+", text.strip())
    return [p for p in parts if p]


def find_urls(text: str) -> list[str]:
    return [m.group(0).rstrip(".,)") for m in _URL.finditer(text)]
