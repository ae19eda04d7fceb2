"""Formatting an Answer: plain text, Telegram HTML (escaped), the JSON object of `ask --json`."""

from __future__ import annotations

import json
import re

from bot.answers.render import to_html, to_json, to_text
from bot.types import Answer, Citation, Part

HOSTILE = '<script>alert("x")</script> & <b>'


def _answer(**kw: object) -> Answer:
    base: dict[str, object] = {
        "question": HOSTILE,
        "language": "zh-Hans",
        "abstained": False,
        "confidence": 0.87654,
        "intent": "question",
        "citations": (Citation("3.2", "clause", 0.81234), Citation("breach-1", "breach", 0.7)),
        "parts": (
            Part("section", "所在章节：三、服务费用", "3.2"),
            Part("quote", f"甲方应按时付款 {HOSTILE}", "3.2", "第3.2条"),
            Part("heading", "何为违约"),
            Part("explain", "甲方未按约定支付服务费用 <i>", "breach-1", "违约行为 第1项"),
            Part("note", "注意 & <tag>"),
            Part("heading", "您可能还想了解："),
            Part("related", "付款方式 <&>", "3.3", "第3.3条"),
        ),
        "related": ("3.3",),
    }
    base.update(kw)
    return Answer(**base)  # type: ignore[arg-type]


def test_text_cites_each_quote() -> None:
    text = to_text(_answer())
    assert "【第3.2条】甲方应按时付款" in text
    assert "【违约行为 第1项】甲方未按约定支付服务费用" in text
    assert "• 第3.3条：付款方式" in text
    # Headings start a new paragraph.
    assert "\n\n何为违约\n" in text


def test_html_escapes_every_dynamic_string() -> None:
    out = to_html(_answer())
    assert "<script>" not in out
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;" in out
    assert "注意 &amp; &lt;tag&gt;" in out
    assert "付款方式 &lt;&amp;&gt;" in out
    # Only the tags the formatter itself writes remain, and they are balanced.
    tags = re.findall(r"</?([a-z]+)>", out)
    assert set(tags) <= {"b", "i", "blockquote"}
    for tag in ("b", "i", "blockquote"):
        assert out.count(f"<{tag}>") == out.count(f"</{tag}>")
    assert "<blockquote>甲方应按时付款" in out


def test_html_can_leave_the_follow_ups_to_buttons() -> None:
    with_list = to_html(_answer())
    without = to_html(_answer(), related=False)
    assert "付款方式" in with_list
    assert "付款方式" not in without
    assert "您可能还想了解" not in without
    assert "何为违约" in without  # other headings stay


def test_json_has_exactly_the_issue_keys() -> None:
    obj = to_json(_answer())
    assert list(obj) == [
        "question",
        "language",
        "abstained",
        "coverage",
        "confidence",
        "citations",
        "answer",
    ]
    assert obj["question"] == HOSTILE
    assert obj["coverage"] == "answered"
    assert obj["language"] == "zh-Hans"
    assert obj["abstained"] is False
    assert obj["confidence"] == 0.877
    assert obj["citations"] == [
        {"id": "3.2", "kind": "clause", "score": 0.812},
        {"id": "breach-1", "kind": "breach", "score": 0.7},
    ]
    assert obj["answer"] == to_text(_answer())
    json.dumps(obj, ensure_ascii=False)  # serializable as is


def test_json_of_an_abstention_has_no_citations() -> None:
    answer = _answer(
        abstained=True,
        intent="abstain",
        parts=(Part("abstain", "这个问题不在本协议范围内"),),
    )
    obj = to_json(answer)
    assert obj["abstained"] is True
    assert obj["citations"] == []
    assert "不在本协议范围内" in obj["answer"]


def test_english_translation_is_marked_unofficial() -> None:
    answer = _answer(
        language="en",
        parts=(
            Part("quote", "甲方应按时付款", "3.2", "Clause 3.2"),
            Part("translation", "Party A shall pay on time", "3.2", "Clause 3.2"),
        ),
    )
    text = to_text(answer)
    assert "[Clause 3.2] 甲方应按时付款" in text
    assert "Unofficial translation: Party A shall pay on time" in text
    assert "<i>Unofficial translation: Party A shall pay on time</i>" in to_html(answer)


def test_every_fixed_string_exists_in_both_languages() -> None:
    from bot.answers import texts

    assert set(texts.ZH_HANS) == set(texts.EN)
    # zh-Hant is derived: a converted string has no simplified-only characters left.
    hant = texts.t("blank", "zh-Hant", label="有效期（年）")
    assert hant == "本模板此處留空：有效期（年）"


def _not_stated() -> Answer:
    return _answer(
        intent="not_stated",
        coverage="not_stated",
        category="subcontracting",
        parts=(
            Part("not_stated", "本协议没有约定乙方能否转包 <x>。"),
            Part("heading", "与此最相关的条款："),
            Part("quote", "乙方应对甲方提供的产品及技术资料保密。", "1.3", "第1.3条"),
            Part("heading", "法律的一般规定（非本协议内容，仅供参考）："),
            Part("law", "《中华人民共和国民法典》第五百五十五条：经对方同意可以转让"),
        ),
    )


def test_not_stated_renders_statement_first_then_clauses_then_the_law_apart() -> None:
    text = to_text(_not_stated())
    lines = [line for line in text.splitlines() if line]
    assert lines[0] == "本协议没有约定乙方能否转包 <x>。"
    assert lines[1:3] == ["与此最相关的条款：", "【第1.3条】乙方应对甲方提供的产品及技术资料保密。"]
    assert lines[-2:] == [
        "法律的一般规定（非本协议内容，仅供参考）：",
        "• 《中华人民共和国民法典》第五百五十五条：经对方同意可以转让",
    ]
    html = to_html(_not_stated())
    assert html.startswith("<b>本协议没有约定乙方能否转包 &lt;x&gt;。</b>")
    assert "<i>• 《中华人民共和国民法典》第五百五十五条" in html
    assert to_json(_not_stated())["coverage"] == "not_stated"
