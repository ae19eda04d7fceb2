"""Language detection and script conversion (OpenCC), as a user of the bot would notice them."""

from __future__ import annotations

import pytest

from bot.answers.language import detect_language, parse_language, to_script, to_simplified


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
        ("what does 争议解决 mean", "en"),  # mixed: more letters than Han characters
        ("APP投诉怎么处理", "zh-Hans"),  # a Latin word inside a Chinese question
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
