"""Pure helpers of the Telegram layer, on hand-made inputs; and the whole answer pipeline
fuzzed (random Unicode, long strings, markup) into what Telegram would take."""

from __future__ import annotations

import re

import pytest
from emulator import parse_html
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import MessageEntity, User

from bot.answers.compose import answer
from bot.telegram.format import (
    MAX_CALLBACK_DATA,
    RetrieverLike,
    addressed_text,
    cut_question,
    example_question,
    parse_callback,
    render_html,
    resolve_language,
    split_html,
)
from bot.types import Answer, Language

# --- split_html --------------------------------------------------------------------------


def _check_parts(parts: list[str], original: str, limit: int) -> None:
    assert parts, "nothing sent"
    for part in parts:
        assert 0 < len(part) <= limit
        parse_html(part)  # raises like Telegram on a broken tag
    visible = "".join(parse_html(p) for p in parts)
    assert re.sub(r"\s", "", visible) == re.sub(r"\s", "", parse_html(original))


def test_short_text_is_one_part() -> None:
    assert split_html("<b>第2.1条</b>\n<blockquote>本协议有效期</blockquote>") == [
        "<b>第2.1条</b>\n<blockquote>本协议有效期</blockquote>"
    ]
    assert split_html("   ") == []


def test_splits_at_paragraph_boundaries() -> None:
    paragraphs = [f"<b>第{i}段</b>\n{'甲方应当按时付款。' * 20}" for i in range(12)]
    html = "\n\n".join(paragraphs)
    parts = split_html(html, limit=1000)
    _check_parts(parts, html, 1000)
    assert len(parts) > 1
    for part in parts:  # every part starts at a paragraph start
        assert part.startswith("<b>第")


def test_long_blockquote_is_closed_and_reopened() -> None:
    html = (
        "<b>标题</b>\n<blockquote expandable>"
        + "乙方应保守甲方的技术秘密。" * 300
        + "</blockquote>\n结尾"
    )
    parts = split_html(html, limit=800)
    _check_parts(parts, html, 800)
    assert all(p.count("<blockquote expandable>") == p.count("</blockquote>") for p in parts)
    assert parts[1].startswith("<blockquote expandable>")


def test_no_sentence_ends_hard_cut_outside_entities() -> None:
    html = "<i>" + "a&amp;b " * 600 + "</i>"
    parts = split_html(html, limit=500)
    _check_parts(parts, html, 500)
    for part in parts:
        assert not re.search(r"&[a-z]*$", part.replace("</i>", ""))


@pytest.mark.parametrize("limit", [64, 200, 4096])
def test_mixed_answer_like_text(limit: int) -> None:
    block = (
        "<b>【第5.1条】</b>\n<blockquote>任何一方违反本协议约定，应承担违约责任。</blockquote>\n"
        "<blockquote><i>Either party that breaches shall bear liability.</i></blockquote>\n"
        "<i>Unofficial translation; the Chinese text governs.</i>"
    )
    html = "\n\n".join([block] * 40)
    _check_parts(split_html(html, limit=limit), html, limit)


# --- callback data -----------------------------------------------------------------------


def test_parse_callback() -> None:
    vote = parse_callback("v:+:AbC_12-x")
    assert vote is not None and (vote.kind, vote.arg, vote.vote) == ("vote", "AbC_12-x", 1)
    down = parse_callback("v:-:AbC_12-x")
    assert down is not None and down.vote == -1
    item = parse_callback("i:breach-2:zh-Hant")
    assert item is not None and (item.kind, item.arg, item.language) == (
        "item",
        "breach-2",
        "zh-Hant",
    )
    lang = parse_callback("l:en")
    assert lang is not None and lang.kind == "lang" and lang.language == "en"
    for junk in (None, "", "v:*:x", "i:3.2:fr", "x:1", "l:de", "f::en", "q:1"):
        assert parse_callback(junk) is None
    assert len(b"f:scenario-3:zh-Hant") < MAX_CALLBACK_DATA


# --- language, mentions, cutting ---------------------------------------------------------


def test_the_language_decision_is_the_answers_one() -> None:
    # The Telegram layer decides nothing of its own (the table is in tests/answers).
    from bot.answers import language

    assert resolve_language is language.resolve_language


def test_addressed_text() -> None:
    text = "@Contract_Test_Bot 违约金是多少？"
    mention = MessageEntity(MessageEntity.MENTION, 0, 18)
    assert addressed_text(text, [mention], "contract_test_bot", 1) == "违约金是多少？"
    assert (
        addressed_text(
            "@someone_else hi", [MessageEntity("mention", 0, 13)], "contract_test_bot", 1
        )
        is None
    )
    assert addressed_text("no mention", [], "contract_test_bot", 1) is None
    bot = User(1, "Bot", is_bot=True)
    emoji = "🙂 机器人，付款时间？"  # the emoji is two UTF-16 code units
    entity = MessageEntity(MessageEntity.TEXT_MENTION, 3, 3, user=bot)
    assert addressed_text(emoji, [entity], "contract_test_bot", 1) == "🙂 付款时间？"


def test_cut_question() -> None:
    assert cut_question("  短问题  ", 10) == ("短问题", False)
    assert cut_question("很" * 20, 10) == ("很" * 10, True)


@pytest.mark.parametrize(
    ("n", "expected"), [("0", True), ("3", True), ("4", False), ("²", True), ("፩", False)]
)
def test_example_question_numbers(n: str, expected: bool) -> None:
    assert (example_question(n, "en") is not None) is expected


# --- the whole pipeline, fuzzed --------------------------------------------------------------

_MARKUP = [
    "<b>",
    "</b>",
    "<i>x</i>",
    "<a href='javascript:x'>",
    "<script>",
    "</blockquote>",
    "&amp;",
    "&",
    "&#0;",
    "<",
    ">",
    '"',
    "\n",
    "\u202e",
    "\x00",
    "第3.2条",
    "违约金",
    "clause 5.1",
    "/clause",
    "目录",
    "怎么投诉",
    "甲方",
    "@bot",
    "፩",
    "２",
    "🙂",
]
_PIECES = st.one_of(st.text(max_size=40), st.sampled_from(_MARKUP))
_QUESTIONS = st.one_of(
    st.lists(_PIECES, max_size=12).map("".join),
    st.text(min_size=400, max_size=1500),  # long: a user pasting a document
    st.lists(st.sampled_from(_MARKUP), min_size=50, max_size=400).map("".join),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question=_QUESTIONS, language=st.sampled_from([None, "zh-Hans", "zh-Hant", "en"]))
def test_any_text_gets_an_answer_that_telegram_would_take(
    retriever: RetrieverLike, question: str, language: Language | None
) -> None:
    result = answer(question, retriever, language=language)
    assert isinstance(result, Answer)
    html = render_html(result, retriever.knowledge)
    parts = split_html(html)
    assert parts
    for part in parts:
        assert len(part) <= 4096
        assert parse_html(part).strip()  # valid Telegram HTML with something to read
