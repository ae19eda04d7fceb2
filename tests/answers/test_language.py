"""Language detection and script conversion (OpenCC), as a user of the bot would notice them."""

from __future__ import annotations

import pytest

from bot.answers.language import (
    detect_language,
    parse_language,
    resolve_language,
    to_script,
    to_simplified,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("合同有效期多久？", "zh-Hans"),
        ("怎么投诉", "zh-Hans"),
        ("第3.2条", "zh-Hans"),
        ("违约金是什么", "zh-Hans"),
        ("違約金是什麼", "zh-Hant"),
        ("怎麼投訴", "zh-Hant"),
        ("投訴", "zh-Hant"),
        ("乙方洩露資料怎麼辦？", "zh-Hant"),
        ("How do I complain?", "en"),
        ("what does 争议解决 mean", "en"),  # an English sentence quoting a Chinese term
        ("APP投诉怎么处理", "zh-Hans"),  # a Latin word inside a Chinese question
        ("乙方breach了怎么办", "zh-Hans"),  # mixed text counts as Chinese
        ("那如果late payment呢？", "zh-Hans"),  # even with more letters than characters
        ("甲方有沒有義務準時pay服務費？", "zh-Hant"),
        ("If 甲方 pays late, what does it owe?", "en"),
        ("What does the 互联网产品售后支持协议 say about fees?", "en"),
        ("Party B 违约了怎么办", "zh-Hans"),  # two English words are no English sentence
        ("", "zh-Hans"),
        ("   ", "zh-Hans"),
        ("3.2", "zh-Hans"),  # no script at all: the agreement's own language
    ],
)
def test_detect_language(text: str, expected: str) -> None:
    assert detect_language(text) == expected


def test_common_characters_alone_are_simplified() -> None:
    # Characters shared by both scripts (的, 合同, 甲方) say nothing: default to zh-Hans.
    assert detect_language("甲方和乙方的合同") == "zh-Hans"


def test_to_script_converts_only_for_traditional() -> None:
    clause = "本协议的有效期为__________年，自双方签字之日起生效。"
    assert to_script(clause, "zh-Hans") == clause
    assert to_script(clause, "en") == clause
    converted = to_script(clause, "zh-Hant")
    assert converted == "本協議的有效期為__________年，自雙方簽字之日起生效。"
    assert detect_language(converted) == "zh-Hant"


def test_to_script_keeps_the_agreements_words() -> None:
    # Character conversion only: no Taiwan vocabulary swaps (用户 → 使用者, 软件 → 軟體).
    assert to_script("用户使用的软件", "zh-Hant") == "用戶使用的軟件"


def test_round_trip_to_simplified() -> None:
    text = "乙方应对甲方提供的产品及技术资料保密，不得泄露给第三方。"
    assert to_simplified(to_script(text, "zh-Hant")) == text


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("zh-hant", "zh-Hant"),
        ("zh-TW", "zh-Hant"),
        ("zh_HK", "zh-Hant"),
        ("zh-hans", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("en", "en"),
        ("en-GB", "en"),
        ("ru", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_language(tag: str | None, expected: str | None) -> None:
    assert parse_language(tag) == expected


#: (the user's /lang choice, Telegram's language_code, the message's text, the language of the
#: question it follows up) -> the reply language.
REPLY_LANGUAGE_CASES = [
    # The two: Chinese users mostly run Telegram in English (no official Chinese UI),
    # and a zh-hans UI says nothing about the script a user writes in.
    (None, "en", "合同有效期多久？", None, "zh-Hans"),
    (None, "zh-hans", "服務費每季度什麼時候支付", None, "zh-Hant"),
    # An explicit choice always wins.
    ("en", "zh-hans", "合同有效期多久", None, "en"),
    ("zh-Hant", "en", "How long is the agreement valid?", None, "zh-Hant"),
    ("zh-Hans", "zh-hk", "服務費每季度什麼時候支付", "zh-Hant", "zh-Hans"),
    # Otherwise the question's own language and script.
    (None, "en-US", "合同有效期多久", None, "zh-Hans"),
    (None, "zh-hant", "服务费每季度什么时候支付", None, "zh-Hans"),
    (None, "zh-hans", "What happens if Party A pays late?", None, "en"),
    (None, "de", "How long is it valid?", None, "en"),
    (None, None, "合約有效期多久？違約怎麼辦", None, "zh-Hant"),
    (None, "zh", "合約有效期多久？違約怎麼辦", None, "zh-Hant"),
    # Mixed text counts as Chinese; an English sentence quoting a term stays English.
    (None, "en", "乙方breach了怎么办", None, "zh-Hans"),
    (None, "en", "那如果late payment呢？", "zh-Hant", "zh-Hant"),
    (None, "zh-hans", "what does 争议解决 mean", None, "en"),
    # Chinese that says nothing about its script: the conversation's, else a Chinese UI's.
    (None, "zh-hans", "那乙方呢？", "zh-Hant", "zh-Hant"),
    (None, "en", "那乙方呢？", "en", "zh-Hans"),
    (None, "zh-hk", "合同有效期多久", None, "zh-Hant"),
    (None, "zh-hant", "合同", None, "zh-Hant"),
    (None, "en", "合同", None, "zh-Hans"),
    # No question of its own (/start, /help, buttons, "3.2"): Telegram's language_code.
    (None, "en", "", None, "en"),
    (None, "zh-TW", "", None, "zh-Hant"),
    (None, "zh-hans", "", None, "zh-Hans"),
    (None, "en", "3.2", None, "en"),
    (None, "zh-hant", "3.2", "zh-Hans", "zh-Hant"),
    (None, "zh-hans", "/clause ３.２", None, "zh-Hans"),  # a command word is not English
    (None, "en", "/clause@contract_bot 3.2", None, "en"),
    (None, "en", "/term 违约金", None, "zh-Hans"),
    (None, "zh-hans", "/term liquidated damages", None, "en"),
    (None, "de", "", None, "zh-Hans"),
    (None, None, "", None, "zh-Hans"),
]


@pytest.mark.parametrize(("chosen", "code", "text", "previous", "expected"), REPLY_LANGUAGE_CASES)
def test_reply_language(
    chosen: str | None, code: str | None, text: str, previous: str | None, expected: str
) -> None:
    assert resolve_language(chosen, code, text, previous) == expected  # type: ignore[arg-type]
