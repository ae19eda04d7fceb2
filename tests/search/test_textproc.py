"""Normalization and BM25 tokens on hand-made inputs."""

from __future__ import annotations

import pytest

from bot.search import textproc
from bot.search.textproc import (
    Speller,
    cjk_bigrams,
    deletions,
    edit_distance,
    from_cantonese,
    general_idf,
    normalize,
    stem,
    tokens,
    typo_budget,
    words,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("乙方違約了怎麼辦？", "乙方违约了怎么办?"),  # traditional -> simplified, full-width ?
        ("ＣＬＡＵＳＥ　５．１", "clause 5.1"),  # full-width letters, digits, ideographic space
        ("  What   does\tClause 5.1  SAY ", "what does clause 5.1 say"),
        ("網際網路產品的軟體", "互联网产品的软件"),  # Taiwan word forms -> the agreement's words
        ("匯款帳號", "汇款账号"),
        ("违约金", "违约金"),  # already simplified: unchanged
        ("", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_is_idempotent() -> None:
    for text in ("乙方違約了怎麼辦？", "ＣＬＡＵＳＥ　５．１", "網際網路產品"):
        assert normalize(normalize(text)) == normalize(text)


def test_tokens_have_words_and_bigrams_without_stopwords() -> None:
    result = tokens("甲方什么时候支付服务费用？")
    assert "甲方" in result and "支付" in result
    assert "~服务" in result and "~支付" in result  # character bigrams, marked
    assert "什么" not in result and "~什么" not in result  # question words carry no topic
    assert not any(t in ("的", "吗", "？", "?") for t in result)


def test_bigrams_skip_particles_and_function_character_pairs() -> None:
    result = tokens("乙方违约了吗")
    assert "~约了" not in result and "~了吗" not in result
    assert "~是谁" not in tokens("你是谁")  # two function characters are no topic
    assert tokens("你是谁") == []


def test_traditional_and_simplified_give_the_same_tokens() -> None:
    assert tokens("甲方遲延付款算違約嗎") == tokens("甲方迟延付款算违约吗")


def test_english_words_are_stemmed_and_stopwords_dropped() -> None:
    result = tokens("What are the Services and Parties' obligations?")
    assert "service" in result and "party" in result and "obligation" in result
    assert "what" not in result and "the" not in result and "are" not in result


def test_clause_numbers_stay_whole() -> None:
    assert "3.2" in tokens("第3.2条")
    assert "5.1" in tokens("clause 5.1")


def test_mixed_and_empty_input() -> None:
    assert tokens("") == []
    assert tokens("？！。") == []
    mixed = tokens("iPhone 售后 warranty")
    assert "iphone" in mixed and "warranty" in mixed and "售后" in mixed


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("services", "service"),
        ("parties", "party"),
        ("processes", "process"),
        ("running", "run"),
        ("signed", "sign"),
        ("class", "class"),
        ("fee", "fee"),
        ("5.1", "5.1"),
    ],
)
def test_stem(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_cjk_bigrams() -> None:
    assert cjk_bigrams("违约金") == ["违约", "约金"]
    assert cjk_bigrams("钱") == ["钱"]


def test_words_are_content_words_only() -> None:
    assert words(normalize("请问违约金怎么算")) == ["违约金"]


def test_pieces_are_the_words_inside_a_compound() -> None:
    assert textproc.pieces("联系电话") == ["联系", "电话"]
    assert "服务" in textproc.pieces("售后支持服务")
    assert textproc.pieces("电话") == [] and textproc.pieces("payment") == []


def test_general_idf_ranks_rare_words_above_common_ones() -> None:
    assert general_idf("社保") > general_idf("公司")
    assert general_idf("违约金") > general_idf("规定")
    assert general_idf("xqzvbw") == textproc.UNKNOWN_IDF
    # English by wordfreq on a comparable scale: function words are common, topics rarer.
    assert general_idf("the") < general_idf("payment") < general_idf("landlord")
    assert general_idf("paymnet") == textproc.UNKNOWN_IDF  # a typo is no known word


def test_deletions_match_a_transposition_typo() -> None:
    assert deletions("paymnet") & deletions("payment")
    assert "payent" in deletions("payment")


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("payment", "payment", 0),
        ("paymnet", "payment", 1),  # swapped neighbours count once
        ("damges", "damages", 1),
        ("liquidaded", "liquidated", 1),
        ("confidentialty", "confidentiality", 1),
        ("recieve", "receive", 1),
        ("servce", "service", 1),
        ("abc", "xyz", 3),
        ("payment", "pa", 3),  # beyond the limit: limit + 1
    ],
)
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b, limit=2) == distance


SPELLER = Speller.from_texts(
    [
        "Liquidated damages are payable on breach.",
        "The confidentiality of payment terms; renewal at least 30 days before expiry.",
    ]
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What are liquidaded damges?", "What are liquidated damages?"),
        ("confidentialty", "confidentiality"),
        ("Paymnet terms", "Payment terms"),
        ("renewl 违约金", "renewal 违约金"),  # Chinese left as it is
        # Real English words stay: another topic is not a typo of this agreement's words.
        ("renew my lease with the landlord", "renew my lease with the landlord"),
        ("pay the fee", "pay the fee"),  # short words are never guessed at
        ("xylophone", "xylophone"),  # nothing near in the vocabulary
    ],
)
def test_speller_corrects_typos_against_the_vocabulary(text: str, expected: str) -> None:
    assert SPELLER.correct(text) == expected


def test_typo_budget_grows_with_length() -> None:
    assert [typo_budget(w) for w in ("fee", "renew", "payment", "liquidated")] == [0, 1, 1, 2]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7", 7),
        (" 42 ", 42),
        ("３", 3),  # full-width
        ("²", 2),  # superscript (NFKC)
        ("①", 1),  # circled (NFKC)
        ("007", 7),
        ("፩", None),  # Ethiopic: isdigit() but int() raises
        ("𐩀", None),  # Kharoshthi: the same
        ("٣", None),  # Arabic-Indic: int() reads it, but users mean no number by it here
        ("१", None),
        ("-1", None),
        ("1.5", None),
        ("", None),
        ("9" * 10, None),  # more digits than a user means (int() refuses thousands)
    ],
)
def test_parse_number_reads_ascii_digits_only(text: str, value: int | None) -> None:
    assert textproc.parse_number(text) == value


def test_parse_number_never_raises_on_any_digit_character() -> None:
    import sys

    digits = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isdigit()]
    assert len(digits) > 500
    for digit in digits:
        value = textproc.parse_number(digit)
        assert value is None or 0 <= value <= 9


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("佢哋一直唔理又點", "他们一直不理又怎样"),
        ("服務費係咪每個月俾？", "服务费是不是每个月给?"),
        ("如果兩邊傾唔掂點算", "如果两边谈不拢怎么办"),
        ("佢係乙方嘅人", "他是乙方的人"),  # 系 is 是 ...
        ("佢哋嘅系統有冇問題", "他们的系统有没有问题"),  # ... but not in 系统
    ],
)
def test_cantonese_questions_are_read_as_mandarin(raw: str, expected: str) -> None:
    assert from_cantonese(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "甲方與乙方的關係是什麼？",  # traditional Mandarin: left as written (係 in 關係)
        "兩邊都要簽名嗎",  # 边 (side) alone is no Cantonese word
        "What does clause 5.1 say?",
        "",
    ],
)
def test_text_that_is_not_cantonese_is_left_as_it_is(text: str) -> None:
    assert from_cantonese(text) == text
