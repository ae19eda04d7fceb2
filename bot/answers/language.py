"""Which language a question is in, and the script conversion for replies.

Detection is a cheap count, no model: traditional-only characters (those OpenCC's ``t2s``
changes) against simplified-only ones (those ``s2t`` changes) decide between zh-Hant and
zh-Hans; Latin letters against Han characters decide between English and Chinese.

Replies in zh-Hant are the zh-Hans text converted with OpenCC ``s2tw``: a character-level
conversion (Taiwan-standard glyphs such as 為, not OpenCC's 爲) that keeps the agreement's own
words. ``s2twp`` also swaps vocabulary (用户→使用者, 软件→軟體, 信息→資訊), which would rewrite
a quoted legal clause instead of transliterating it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from bot.types import Language

if TYPE_CHECKING:
    import opencc

#: One Han character carries roughly as much as two Latin letters; used to weigh mixed text.
_HAN_WEIGHT = 2

#: OpenCC configuration for zh-Hant replies (see the module docstring for why not s2twp).
_TO_TRADITIONAL = "s2tw"

LANGUAGES: tuple[Language, ...] = ("zh-Hans", "zh-Hant", "en")


@cache
def _converter(config: str) -> opencc.OpenCC:
    import opencc

    return opencc.OpenCC(config)


def is_han(char: str) -> bool:
    """True for CJK unified ideographs (the basic block and extension A, compatibility forms)."""
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


def _is_latin(char: str) -> bool:
    return ("a" <= char <= "z") or ("A" <= char <= "Z")


def detect_language(text: str) -> Language:
    """Guess the language and script of ``text``.

    English when Latin letters outweigh Han characters (a tie goes to whichever script comes
    first); otherwise zh-Hant when more characters are traditional-only than simplified-only,
    else zh-Hans. Empty or script-less text is zh-Hans, the agreement's own language.
    """
    han = [c for c in text if is_han(c)]
    letters = sum(1 for c in text if _is_latin(c))
    weighted_han = _HAN_WEIGHT * len(han)
    if letters > weighted_han:
        return "en"
    if letters and letters == weighted_han:
        first = next(c for c in text if is_han(c) or _is_latin(c))
        if _is_latin(first):
            return "en"
    if not han:
        return "zh-Hans"
    joined = "".join(han)
    to_simplified = _converter("t2s").convert(joined)
    to_traditional = _converter("s2t").convert(joined)
    traditional_only = sum(1 for a, b in zip(joined, to_simplified, strict=False) if a != b)
    simplified_only = sum(1 for a, b in zip(joined, to_traditional, strict=False) if a != b)
    return "zh-Hant" if traditional_only > simplified_only else "zh-Hans"


def to_script(text: str, language: Language) -> str:
    """Convert zh-Hans ``text`` to the script of ``language`` (only zh-Hant changes anything)."""
    if language != "zh-Hant" or not text:
        return text
    return str(_converter(_TO_TRADITIONAL).convert(text))


def convert(text: str, language: Language) -> str:
    """Alias of :func:`to_script` (the name the module contract uses)."""
    return to_script(text, language)


def to_simplified(text: str) -> str:
    """Traditional → simplified characters (for matching user words against the knowledge)."""
    return str(_converter("t2s").convert(text)) if text else text


def parse_language(value: str | None) -> Language | None:
    """Map a user or Telegram language tag to a reply language, or None when it says nothing.

    ``zh-hant``/``zh-tw``/``zh-hk``/``zh-mo`` → zh-Hant; other ``zh*`` → zh-Hans; ``en*`` → en.
    """
    if not value:
        return None
    tag = value.strip().lower().replace("_", "-")
    for language in LANGUAGES:
        if tag == language.lower():
            return language
    if tag.startswith("zh"):
        if any(mark in tag for mark in ("hant", "tw", "hk", "mo")):
            return "zh-Hant"
        return "zh-Hans"
    if tag.startswith("en"):
        return "en"
    return None
