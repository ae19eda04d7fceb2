"""Which language a question is in, and the script conversion for replies.

Detection is a cheap count, no model: any Han character makes text Chinese (unless it is an
English sentence quoting one short Chinese term); traditional-only characters (those OpenCC's
``t2s`` changes) against simplified-only ones (those ``s2t`` changes) decide between zh-Hant and
zh-Hans. ``resolve_language`` is the one function that decides a reply's language.

Replies in zh-Hant are the zh-Hans text converted with OpenCC ``s2tw``: a character-level
conversion (Taiwan-standard glyphs such as 為, not OpenCC's 爲) that keeps the agreement's own
words. ``s2twp`` also swaps vocabulary (用户→使用者, 软件→軟體, 信息→資訊), which would rewrite
a quoted legal clause instead of transliterating it.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from bot.types import Language

if TYPE_CHECKING:
    import opencc

#: A Chinese term or title quoted in an English sentence is at most this many characters long
#: ("互联网产品售后支持协议" is 10).
_TERM_CHARS = 12
_HAN_RUN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_WORD = re.compile(r"[A-Za-z]+")

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


def _quotes_a_term(text: str) -> bool:
    """An English sentence that only quotes a Chinese term ("what does 争议解决 mean"): one run
    of at most ``_TERM_CHARS`` Han characters, at least three English words around it, and
    English first."""
    runs = _HAN_RUN.findall(text)
    if len(runs) != 1 or len(runs[0]) > _TERM_CHARS:
        return False
    first = next(c for c in text if is_han(c) or _is_latin(c))
    return _is_latin(first) and len(_LATIN_WORD.findall(text)) >= 3


def detect_language(text: str) -> Language:
    """Guess the language and script of ``text``.

    Mixed text counts as Chinese ("乙方breach了怎么办", "那如果late payment呢"): any Han character
    makes it Chinese unless the text is an English sentence quoting one short Chinese term
    ("what does 争议解决 mean"). Chinese is zh-Hant when more characters are traditional-only
    than simplified-only, else zh-Hans. Empty or script-less text is zh-Hans, the agreement's
    own language.
    """
    han = [c for c in text if is_han(c)]
    if not han:
        return "en" if any(_is_latin(c) for c in text) else "zh-Hans"
    if _quotes_a_term(text):
        return "en"
    return chinese_script(text) or "zh-Hans"


def chinese_script(text: str) -> Language | None:
    """zh-Hant or zh-Hans when ``text`` has more characters of one script than of the other;
    None when it says nothing about the script ("合同有效期多久" is written the same in both)."""
    joined = "".join(c for c in text if is_han(c))
    if not joined:
        return None
    to_simplified = _converter("t2s").convert(joined)
    to_traditional = _converter("s2t").convert(joined)
    traditional_only = sum(1 for a, b in zip(joined, to_simplified, strict=False) if a != b)
    simplified_only = sum(1 for a, b in zip(joined, to_traditional, strict=False) if a != b)
    if traditional_only == simplified_only:
        return None
    return "zh-Hant" if traditional_only > simplified_only else "zh-Hans"


def has_language(text: str) -> bool:
    """Whether ``text`` is written in some language at all (Han characters or Latin letters);
    "3.2", "?" or an emoji are not, and leave the choice to other signals."""
    return any(is_han(c) or _is_latin(c) for c in text)


#: A leading bot command ("/clause", "/term@contract_bot"): a command word, not English.
_COMMAND = re.compile(r"^/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?\s*")


def resolve_language(
    chosen: Language | None,
    language_code: str | None,
    text: str = "",
    previous: Language | None = None,
) -> Language:
    """The reply language: the one function that decides it, for every front end.

    1. The user's explicit choice (``/lang``, ``--lang``) always wins.
    2. Otherwise a question in some language is answered in its own language and script
       (mixed text counts as Chinese, see :func:`detect_language`). Chinese that says nothing
       about its script ("合同有效期多久") keeps the script of the conversation (``previous``,
       the language of the question it follows up), else the script of a Chinese
       ``language_code`` (zh-hk → traditional), else simplified.
    3. A message without a question of its own (``/start``, ``/help``, a button, "3.2",
       "/clause 3.2": a leading command word is no language) follows Telegram's
       ``language_code``, else zh-Hans, the agreement's own language.

    Most Chinese users run Telegram in English (there is no official Chinese interface), so
    ``language_code`` never decides the language of an actual question.
    """
    if chosen is not None:
        return chosen
    from_code = parse_language(language_code)
    text = _COMMAND.sub("", text)
    if has_language(text):
        detected = detect_language(text)
        if detected == "en":
            return "en"
        script = chinese_script(text)
        if script is not None:
            return script
        for hint in (previous, from_code):
            if hint is not None and hint != "en":
                return hint
        return "zh-Hans"
    return from_code or "zh-Hans"


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
