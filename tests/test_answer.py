"""Answer composition.

Unit tests use a toy agreement and a fake retriever (a few lines, so the composition rules are
visible); the acceptance tests at the bottom use the real knowledge, model and index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.answer import answer
from bot.knowledge import Knowledge
from bot.language import to_script, to_simplified
from bot.render import to_text
from bot.types import Answer, Hit, Item, Link, Parameter, Retrieval

# --- a toy agreement ---------------------------------------------------------------------------


def _item(item_id: str, kind: str, text: str, **kw: object) -> Item:
    fields: dict[str, object] = {
        "id": item_id,
        "kind": kind,
        "section": "一、测试" if kind == "clause" else "二、附录",
        "section_en": "1. Test" if kind == "clause" else "2. Appendix",
        "title": f"标题{item_id}",
        "title_en": f"Title {item_id}",
        "text": text,
        "text_en": f"EN {item_id}: {text}",
        "parties": ("乙方",),
        "questions": (),
    }
    fields.update(kw)
    return Item(**fields)  # type: ignore[arg-type]


TOY = Knowledge(
    items=(
        _item(
            "1.1",
            "clause",
            "乙方应对资料保密。",
            links=(
                Link("breach", "breach-1"),
                Link("remedy", "1.2"),
                Link("related", "1.3"),
            ),
        ),
        _item(
            "1.2",
            "clause",
            "违约方应支付违约金。",
            parties=("甲方", "乙方"),
            links=(Link("definition", "term-1"),),
        ),
        _item(
            "1.3",
            "clause",
            "本协议有效期为_____年，费用为____元。",
            parties=("甲方", "乙方"),
            blanks=("years", "fee"),
        ),
        _item(
            "breach-1",
            "breach",
            "乙方泄露资料。",
            links=(Link("obligation", "1.1"), Link("procedure", "problem-1")),
        ),
        _item("problem-1", "problem", "甲方应要求乙方停止泄露。"),
        _item(
            "term-1",
            "term",
            "违约金：指违约方支付的金钱。",
            title="违约金",
            title_en="Penalty",
            aliases=("penalty",),
        ),
    ),
    parameters={
        "years": Parameter("years", "有效期（年）", "term (years)", ""),
        "fee": Parameter("fee", "费用", "fee", ""),
    },
)


@dataclass
class FakeRetriever:
    """Returns fixed hits; records the questions it was asked."""

    knowledge: Knowledge
    hits: tuple[str, ...] = ()
    abstain: bool = False
    asked: list[str] = field(default_factory=list)

    def search(self, question: str, k: int = 5) -> Retrieval:
        self.asked.append(question)
        hits = tuple(Hit(item_id, 0.8 - 0.1 * n) for n, item_id in enumerate(self.hits))
        return Retrieval(question, hits, 0.2 if self.abstain else 0.75, self.abstain)


def _texts(a: Answer, role: str | None = None) -> list[str]:
    return [p.text for p in a.parts if role is None or p.role == role]


def _cited(a: Answer) -> list[str]:
    return [c.id for c in a.citations]


# --- unit tests ------------------------------------------------------------------------------


def test_free_question_quotes_the_top_hit_and_follows_its_links() -> None:
    retriever = FakeRetriever(TOY, hits=("1.1", "1.3"))
    a = answer("资料能外泄吗", retriever)
    assert retriever.asked == ["资料能外泄吗"]
    assert a.intent == "question" and not a.abstained
    assert a.confidence == 0.75
    quote = next(p for p in a.parts if p.role == "quote")
    assert (quote.text, quote.cite, quote.label) == ("乙方应对资料保密。", "1.1", "第1.1条")
    assert "义务方：乙方" in _texts(a)
    # breach → its text; remedy → 1.2; procedure reached through the breach item.
    explained = {p.cite: p.text for p in a.parts if p.role == "explain" and p.cite}
    assert explained["breach-1"] == "乙方泄露资料。"
    assert explained["1.2"] == "违约方应支付违约金。"
    assert explained["problem-1"] == "甲方应要求乙方停止泄露。"
    assert {"何为违约", "违约后果", "怎么办"} <= set(_texts(a, "heading"))
    # The main item first, then what the explanation quotes, scores never increasing.
    assert _cited(a)[0] == "1.1"
    assert set(_cited(a)) == {"1.1", "breach-1", "1.2", "problem-1"}
    scores = [c.score for c in a.citations]
    assert scores == sorted(scores, reverse=True)
    # Follow-ups lead somewhere new first: 1.3 is linked but not quoted.
    assert a.related[0] == "1.3"
    assert 2 <= len(a.related) <= 3 and "1.1" not in a.related


def test_every_quoted_sentence_is_agreement_text() -> None:
    a = answer("资料能外泄吗", FakeRetriever(TOY, hits=("1.1",)))
    texts = {item.text for item in TOY.items}
    for part in a.parts:
        if part.role in ("quote", "explain") and part.label:
            assert part.text in texts


def test_blank_left_blank_is_said_plainly_never_invented() -> None:
    a = answer("有效期多久", FakeRetriever(TOY, hits=("1.3",)))
    quote = next(p for p in a.parts if p.role == "quote")
    assert quote.text == "本协议有效期为_____年，费用为____元。"
    notes = [p.text for p in a.parts if p.role == "note"]
    assert any("本模板此处留空" in n and "有效期（年）" in n and "费用" in n for n in notes)


def test_blank_filled_from_a_parameter_value() -> None:
    a = answer("有效期多久", FakeRetriever(TOY, hits=("1.3",)), parameters={"years": "3"})
    quote = next(p for p in a.parts if p.role == "quote")
    assert quote.text == "本协议有效期为3年，费用为____元。"
    notes = " ".join(p.text for p in a.parts if p.role == "note")
    assert "有效期（年）：3" in notes
    assert "本模板此处留空：费用" in notes  # the other blank is still said to be blank


def test_english_quotes_chinese_and_the_unofficial_translation() -> None:
    a = answer("Can Party B leak our materials?", FakeRetriever(TOY, hits=("1.1",)))
    assert a.language == "en"
    assert next(p for p in a.parts if p.role == "quote").text == "乙方应对资料保密。"
    assert next(p for p in a.parts if p.role == "translation").text == "EN 1.1: 乙方应对资料保密。"
    assert next(p for p in a.parts if p.role == "quote").label == "Clause 1.1"
    assert "Unofficial translation; the Chinese text governs." in to_text(a)
    assert "Obliged party: Party B (乙方)" in to_text(a)


def test_traditional_question_gets_a_traditional_reply() -> None:
    a = answer("資料能外洩嗎", FakeRetriever(TOY, hits=("1.1",)))
    assert a.language == "zh-Hant"
    text = to_text(a)
    assert "乙方應對資料保密。" in text and "【第1.1條】" in text
    assert text == to_script(text, "zh-Hant")  # nothing left to convert


def test_language_override_wins_over_detection() -> None:
    a = answer("资料能外泄吗", FakeRetriever(TOY, hits=("1.1",)), language="en")
    assert a.language == "en"
    assert any(p.role == "translation" for p in a.parts)


def test_abstention_offers_nearest_topics_without_citations() -> None:
    a = answer(
        "今天天气怎么样", FakeRetriever(TOY, hits=("1.2", "1.1", "1.3", "term-1"), abstain=True)
    )
    assert a.abstained and a.intent == "abstain"
    assert a.citations == ()
    assert a.related == ("1.2", "1.1", "1.3")
    topics = _texts(a, "topic")
    assert len(topics) == 3 and "标题1.2" in topics[0] and "1.2" in topics[0]
    assert not any(p.role == "quote" for p in a.parts)
    assert "不在本协议范围内" in to_text(a)


def test_clause_number_is_looked_up_without_searching() -> None:
    retriever = FakeRetriever(TOY)
    a = answer("第1.2条", retriever)
    assert retriever.asked == []
    assert a.intent == "clause" and a.confidence == 1.0
    assert _cited(a)[0] == "1.2"
    assert next(p for p in a.parts if p.role == "quote").text == "违约方应支付违约金。"


def test_section_number_lists_its_clauses() -> None:
    a = answer("第一条", FakeRetriever(TOY))
    assert [p.cite for p in a.parts if p.role == "quote"] == ["1.1", "1.2", "1.3"]


def test_unknown_clause_number_says_so() -> None:
    retriever = FakeRetriever(TOY)
    a = answer("第9.9条", retriever)
    assert a.abstained and a.citations == ()
    assert "9.9" in to_text(a)
    assert retriever.asked == []


def test_glossary_term() -> None:
    for question in ("什么是违约金", "what does penalty mean"):
        a = answer(question, FakeRetriever(TOY))
        assert a.intent == "term"
        assert _cited(a) == ["term-1"]


def test_blank_question_gets_help() -> None:
    retriever = FakeRetriever(TOY)
    a = answer("  \n ", retriever)
    assert a.intent == "empty" and not a.abstained and a.citations == ()
    assert "目录" in to_text(a)
    assert retriever.asked == []


@pytest.mark.parametrize("question", ["目录", "有哪些条款？", "table of contents", "list clauses"])
def test_table_of_contents(question: str) -> None:
    a = answer(question, FakeRetriever(TOY))
    assert a.intent == "toc"
    listed = [p.cite for p in a.parts if p.role == "toc"]
    assert listed[:3] == ["1.1", "1.2", "1.3"]
    assert "breach-1" in listed and "term-1" in listed


def test_simplified_check_helper_is_sound() -> None:
    # The acceptance tests below rely on this: converting zh-Hant text changes nothing.
    assert to_script("本協議", "zh-Hant") == "本協議"
    assert to_simplified("本協議") == "本协议"
