"""Answer composition.

Unit tests use a toy agreement and a fake retriever (a few lines, so the composition rules are
visible); the acceptance tests at the bottom use the real knowledge, model and index.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from bot.answers.compose import answer, item_answer
from bot.answers.language import to_script, to_simplified
from bot.answers.render import to_text
from bot.knowledge.coverage import Category, Coverage, LawPointer
from bot.knowledge.loader import Knowledge
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
    confidence: float = 0.75
    asked: list[str] = field(default_factory=list)

    def search(self, question: str, k: int = 5) -> Retrieval:
        self.asked.append(question)
        hits = tuple(Hit(item_id, 0.8 - 0.1 * n) for n, item_id in enumerate(self.hits))
        return Retrieval(question, hits, 0.2 if self.abstain else self.confidence, self.abstain)


def _texts(a: Answer, role: str | None = None) -> list[str]:
    return [p.text for p in a.parts if role is None or p.role == role]


def _cited(a: Answer) -> list[str]:
    return [c.id for c in a.citations]


def _explained(a: Answer) -> set[str]:
    return {p.cite for p in a.parts if p.role == "explain" and p.cite}


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


def test_a_weak_match_says_so() -> None:
    weak = answer("资料能外泄吗", FakeRetriever(TOY, hits=("1.1",), confidence=0.4))
    strong = answer("资料能外泄吗", FakeRetriever(TOY, hits=("1.1",), confidence=0.95))
    assert "匹配把握不高" in to_text(weak)
    assert "匹配把握不高" not in to_text(strong)
    assert weak.confidence == 0.4 and not weak.abstained


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


@pytest.mark.parametrize("question", ["第一条", "1", "section 1"])
def test_section_number_lists_its_clauses(question: str) -> None:
    a = answer(question, FakeRetriever(TOY))
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


def test_an_item_id_is_answered_about_that_item() -> None:
    # What a follow-up button sends; an id carries no language, so it is not "English".
    retriever = FakeRetriever(TOY)
    a = answer("breach-1", retriever)
    assert retriever.asked == []
    assert (a.intent, a.language) == ("clause", "zh-Hans")
    assert a.citations[0].id == "breach-1"
    assert "1.1" in _explained(a)  # the obligation it breaches


def test_item_answer_quotes_one_item_with_its_blanks() -> None:
    a = item_answer(TOY.by_id["1.3"], TOY, "en", parameters={"fee": "100"})
    assert [c.id for c in a.citations] == ["1.3"]
    assert (
        next(p for p in a.parts if p.role == "quote").text == "本协议有效期为_____年，费用为100元。"
    )
    text = to_text(a)
    assert "This template leaves the term (years) blank" in text
    assert "fee: 100" in text
    assert "Unofficial translation; the Chinese text governs." in text


@pytest.mark.parametrize("question", ["目录", "有哪些条款？", "table of contents", "list clauses"])
def test_table_of_contents(question: str) -> None:
    a = answer(question, FakeRetriever(TOY))
    assert a.intent == "toc"
    listed = [p.cite for p in a.parts if p.role == "toc"]
    assert listed[:3] == ["1.1", "1.2", "1.3"]
    assert "breach-1" in listed and "term-1" in listed


# --- not stated, gaps, complaint gating (toy agreement) -----------------------------------------

TOY_MAP = Coverage(
    (
        Category(
            id="subcontracting",
            name="转包和分包",
            name_en="Subcontracting",
            covered="no",
            not_stated="本协议没有约定乙方能否转包。",
            not_stated_en="The agreement does not say whether Party B may subcontract.",
            nearest=("1.1", "1.2"),
            law=(
                LawPointer(
                    "第五百五十五条", "经对方同意可以转让权利义务", "with consent, transfer"
                ),
            ),
            examples=("a", "b", "c", "d", "e"),
        ),
        Category(
            id="penalty_amount",
            name="违约金数额",
            name_en="Amount of the penalty",
            covered="partly",
            clauses=("1.2",),
            not_stated="本协议没有约定违约金的数额。",
            not_stated_en="The agreement states no amount of the penalty.",
            nearest=("1.2",),
            examples=("a", "b", "c", "d", "e"),
        ),
        Category(id="term", name="期限", name_en="Term", covered="yes", clauses=("1.3",)),
    )
)
TOY_WITH_MAP = replace(TOY, coverage=TOY_MAP)


@dataclass
class GapRetriever:
    """Says "not stated" for every question."""

    knowledge: Knowledge
    category: str = "subcontracting"
    aspect: str = ""
    nearest: tuple[str, ...] = ("1.2", "1.1")

    def search(self, question: str, k: int = 5) -> Retrieval:
        hits = (Hit("1.1", 0.9), Hit("1.3", 0.8))
        return Retrieval(
            question, hits, 0.8, False, "not_stated", self.category, self.aspect, self.nearest
        )


def test_not_stated_begins_with_the_statement_then_the_nearest_clauses() -> None:
    a = answer("乙方能不能转包", GapRetriever(TOY_WITH_MAP))
    assert (a.coverage, a.intent, a.category, a.abstained) == (
        "not_stated",
        "not_stated",
        "subcontracting",
        False,
    )
    assert a.parts[0].role == "not_stated"
    assert a.parts[0].text == "本协议没有约定乙方能否转包。"
    headings = _texts(a, "heading")
    assert headings[0] == "与此最相关的条款："
    assert [p.cite for p in a.parts if p.role == "quote"] == ["1.2", "1.1"]  # retrieval's order
    assert _cited(a)[:2] == ["1.2", "1.1"]  # the nearest clause is the one a button shows
    law_heading = headings.index("法律的一般规定（非本协议内容，仅供参考）：")
    assert law_heading > 0
    laws = _texts(a, "law")
    assert laws == ["《中华人民共和国民法典》第五百五十五条：经对方同意可以转让权利义务"]
    # Nothing of the law is quoted as the agreement's text.
    assert all(p.cite is None for p in a.parts if p.role == "law")


def test_not_stated_in_english_and_traditional() -> None:
    en = answer("Can Party B subcontract?", GapRetriever(TOY_WITH_MAP))
    assert en.parts[0].text == "The agreement does not say whether Party B may subcontract."
    assert "PRC Civil Code (《中华人民共和国民法典》), Article 555 (第五百五十五条)" in to_text(en)
    assert "Unofficial translation; the Chinese text governs." in to_text(en)
    hant = answer("乙方能不能轉包", GapRetriever(TOY_WITH_MAP))
    assert hant.parts[0].text == "本協議沒有約定乙方能否轉包。"
    assert "法律的一般規定（非本協議內容，僅供參考）" in to_text(hant)


def test_an_aspect_without_a_category_says_what_value_is_missing() -> None:
    a = answer("违约金是多少", GapRetriever(TOY_WITH_MAP, category="", aspect="amount"))
    assert a.parts[0].text == "本协议没有约定具体的数额或计算方法。"
    assert a.coverage == "not_stated" and a.category == ""
    assert "法律的一般规定" not in to_text(a)


def test_gaps_list_what_is_not_covered_grouped_with_statements() -> None:
    for question in ("/gaps", "协议没有约定哪些事项", "What does this agreement not cover?"):
        a = answer(question, FakeRetriever(TOY_WITH_MAP))
        assert a.intent == "gaps" and a.coverage == "answered", question
    a = answer("协议没有约定哪些事项", FakeRetriever(TOY_WITH_MAP))
    sections = _texts(a, "section")
    assert sections == ["没有约定（1）", "只部分约定（1）"]
    gaps = _texts(a, "gap")
    assert gaps == [
        "转包和分包：本协议没有约定乙方能否转包。",
        "违约金数额：本协议没有约定违约金的数额。",
    ]
    assert "期限" not in to_text(a)  # covered categories are not listed


@pytest.mark.parametrize(
    "question",
    [
        "有些事情协议里没写，到时候怎么处理？",
        "协议没写到的事情怎么办",
        "What if something isn't covered?",
    ],
)
def test_asking_what_to_do_about_unwritten_matters_is_not_the_gap_list(question: str) -> None:
    assert answer(question, FakeRetriever(TOY_WITH_MAP, hits=("1.1",))).intent != "gaps"


def test_complaint_guide_only_for_this_agreement() -> None:
    bare = FakeRetriever(TOY, hits=("1.1",), abstain=True)
    assert answer("怎么投诉", bare).intent == "complaint"  # a bare request needs no search
    assert bare.asked == []
    elsewhere = FakeRetriever(TOY, hits=("1.1",), abstain=True)
    a = answer("淘宝买东西退款被拒怎么投诉", elsewhere)
    assert a.intent == "abstain" and a.coverage == "out_of_scope" and a.abstained
    ours = FakeRetriever(TOY, hits=("1.1",))
    assert answer("乙方售后太差，我要怎么投诉", ours).intent == "complaint"


def test_answer_coverage_and_abstained_agree() -> None:
    assert answer("资料能外泄吗", FakeRetriever(TOY, hits=("1.1",))).coverage == "answered"
    out = answer("天气", FakeRetriever(TOY, hits=("1.1",), abstain=True))
    assert out.abstained and out.coverage == "out_of_scope"
    with pytest.raises(ValueError):
        Answer("q", "zh-Hans", False, 0.5, "question", coverage="out_of_scope")


def test_simplified_check_helper_is_sound() -> None:
    # The acceptance tests below rely on this: converting zh-Hant text changes nothing.
    assert to_script("本協議", "zh-Hant") == "本協議"
    assert to_simplified("本協議") == "本协议"


# --- acceptance: the real knowledge, model and index -----------------------------------------
#
# Fixtures `knowledge` and `retriever` (session-scoped, tests/conftest.py) load them once.

CLAUSES = [
    f"{s}.{n}"
    for s, count in ((1, 3), (2, 2), (3, 3), (4, 3), (5, 2), (6, 1), (7, 2))
    for n in range(1, count + 1)
]


def _verbatim_texts(knowledge: Knowledge, language: str) -> set[str]:
    """Every form in which agreement text may appear in a reply of ``language``."""
    out: set[str] = set()
    for item in knowledge.items:
        forms = [
            item.text,
            item.text_en,
            item.text.replace("\n", " "),
            item.text_en.replace("\n", "; "),
            *item.text.splitlines(),  # one entry of a list (the complaint attachment)
            *item.text_en.splitlines(),
        ]
        out.update(to_script(f, language) for f in forms)  # type: ignore[arg-type]
    return out


def test_payment_question_quotes_3_2_and_explains_breach_remedy_procedure(
    retriever: object, knowledge: Knowledge
) -> None:
    a = answer("甲方什么时候付款？", retriever)  # type: ignore[arg-type]
    assert not a.abstained and a.intent == "question"
    assert a.citations[0].id == "3.2"
    assert knowledge.by_id["3.2"].text in to_text(a)
    assert {"breach-1", "5.1", "problem-1"} <= _explained(a)
    assert {"breach-1", "5.1", "problem-1"} <= {c.id for c in a.citations}
    assert "义务方：甲方" in to_text(a)
    assert 2 <= len(a.related) <= 3 and "3.2" not in a.related


def test_confidentiality_question_walks_to_breach_remedy_procedure(retriever: object) -> None:
    a = answer("乙方能把我们的技术资料透露给别的公司吗？", retriever)  # type: ignore[arg-type]
    assert a.citations[0].id in ("1.3", "breach-4")
    assert {"1.3", "breach-4", "5.1", "problem-4"} <= {c.id for c in a.citations}


def test_term_question_says_the_years_are_left_blank(
    retriever: object, knowledge: Knowledge
) -> None:
    a = answer("合同有效期多久？", retriever)  # type: ignore[arg-type]
    assert a.citations[0].id == "2.1"
    text = to_text(a)
    assert knowledge.by_id["2.1"].text in text  # the blank stays a blank
    assert "本模板此处留空：有效期（年）" in text
    assert not any(ch.isdigit() for ch in knowledge.by_id["2.1"].text)


def test_traditional_in_traditional_out(retriever: object, knowledge: Knowledge) -> None:
    a = answer("甲方什麼時候要付款？", retriever)  # type: ignore[arg-type]
    assert a.language == "zh-Hant"
    assert a.citations[0].id == "3.2"
    text = to_text(a)
    assert to_script(knowledge.by_id["3.2"].text, "zh-Hant") in text
    assert "【第3.2條】" in text
    assert text == to_script(text, "zh-Hant"), "simplified-only characters left in the reply"


def test_english_in_english_out_with_the_unofficial_note(
    retriever: object, knowledge: Knowledge
) -> None:
    a = answer("When does Party A have to pay the service fee?", retriever)  # type: ignore[arg-type]
    assert a.language == "en"
    assert a.citations[0].id == "3.2"
    text = to_text(a)
    item = knowledge.by_id["3.2"]
    assert item.text in text and item.text_en in text
    assert "[Clause 3.2]" in text
    assert "Unofficial translation; the Chinese text governs." in text
    assert "Obliged party: Party A" in text


@pytest.mark.parametrize(
    "question", ["今天天气怎么样？", "How do I bake sourdough bread?", "推荐一部好看的电影吧"]
)
def test_out_of_scope_abstains_without_citations(retriever: object, question: str) -> None:
    a = answer(question, retriever)  # type: ignore[arg-type]
    assert a.abstained and a.citations == ()
    assert not any(p.role in ("quote", "explain", "translation") for p in a.parts)
    topics = [p for p in a.parts if p.role == "topic"]
    assert 2 <= len(topics) <= 3 and all(p.cite and p.cite in p.text for p in topics)
    assert a.related == tuple(p.cite for p in topics)


def test_section_five_lists_5_1_and_5_2(retriever: object, knowledge: Knowledge) -> None:
    a = answer("第五条", retriever)  # type: ignore[arg-type]
    assert [c.id for c in a.citations] == ["5.1", "5.2"]
    text = to_text(a)
    assert knowledge.by_id["5.1"].text in text and knowledge.by_id["5.2"].text in text


@pytest.mark.parametrize(
    ("question", "language"),
    [("怎么投诉", "zh-Hans"), ("How do I complain?", "en"), ("投訴", "zh-Hant")],
)
def test_complaint_guide_steps_cite_their_items(
    retriever: object, question: str, language: str
) -> None:
    a = answer(question, retriever)  # type: ignore[arg-type]
    assert a.intent == "complaint" and a.language == language
    assert [p.cite for p in a.parts if p.role == "step"] == [
        "4.3",
        "attachments",
        "problem-3",
        "6.1",
    ]
    assert [c.id for c in a.citations] == ["4.3", "attachments", "problem-3", "6.1"]
    assert to_script("5.客户投诉处理流程", a.language) in to_text(a)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("question", "term", "language"),
    [("什么是违约金", "term-3", "zh-Hans"), ("what does 争议解决 mean", "term-4", "en")],
)
def test_glossary(retriever: object, question: str, term: str, language: str) -> None:
    a = answer(question, retriever)  # type: ignore[arg-type]
    assert (a.intent, a.language) == ("term", language)
    assert a.citations[0].id == term


def test_table_of_contents_lists_every_clause(retriever: object) -> None:
    a = answer("有哪些条款？", retriever)  # type: ignore[arg-type]
    assert [p.cite for p in a.parts if p.role == "toc"][: len(CLAUSES)] == CLAUSES


@pytest.mark.parametrize("language", ["zh-Hans", "zh-Hant", "en"])
def test_no_sentence_is_made_up(retriever: object, knowledge: Knowledge, language: str) -> None:
    """Every cited paragraph of a reply is agreement text or its translation, verbatim."""
    allowed = _verbatim_texts(knowledge, language)
    questions = [
        "甲方什么时候付款？",
        "乙方泄露资料怎么办",
        "违约了怎么办",
        "服务质量不达标怎么处理",
        "合同到期想续签要怎么做",
        "What happens if Party A pays late?",
        "3.3",
        "怎么投诉",
    ]
    for question in questions:
        a = answer(question, retriever, language=language)  # type: ignore[arg-type]
        assert a.language == language
        for part in a.parts:
            if part.role in ("quote", "explain", "translation") and part.label:
                assert part.text in allowed, (question, part)


# --- the three outcomes on the real agreement (the acceptance questions of issue #12) ---------


def test_subcontracting_is_not_stated_nearest_1_3(retriever: object) -> None:
    a = answer("售后能不能外包给第三方公司做？", retriever)  # type: ignore[arg-type]
    assert a.coverage == "not_stated" and not a.abstained
    assert a.parts[0].role == "not_stated" and "第三方" in a.parts[0].text
    assert a.citations[0].id == "1.3"


def test_penalty_amount_is_not_stated_nearest_5_1(retriever: object) -> None:
    for question in ("要赔的违约金有没有写明数额", "违约金具体是多少钱"):
        a = answer(question, retriever)  # type: ignore[arg-type]
        assert a.coverage == "not_stated", question
        assert "数额或计算方法" in a.parts[0].text
        assert "5.1" in [c.id for c in a.citations[:2]]
        assert "第五百八十五条" in to_text(a)
    a = answer("要赔的违约金有没有写明数额", retriever)  # type: ignore[arg-type]
    assert a.citations[0].id == "5.1"


def test_a_landlord_is_out_of_scope_and_renewal_notice_still_answers(retriever: object) -> None:
    a = answer("房东要涨房租，我能提前退租吗", retriever)  # type: ignore[arg-type]
    assert a.coverage == "out_of_scope" and a.abstained and not a.citations
    a = answer("续约要提前多久通知", retriever)  # type: ignore[arg-type]
    assert a.coverage == "answered" and a.citations[0].id == "2.2"


def test_a_template_blank_is_answered_not_stated_as_a_gap(retriever: object) -> None:
    a = answer("服务费是多少", retriever)  # type: ignore[arg-type]
    assert a.coverage == "answered" and a.citations[0].id == "3.1"
    assert "本模板此处留空" in to_text(a)


def test_another_shops_complaint_gets_no_complaint_guide(retriever: object) -> None:
    a = answer("淘宝买东西退款被拒怎么投诉", retriever)  # type: ignore[arg-type]
    assert a.coverage == "out_of_scope" and a.intent == "abstain"


def test_a_question_about_party_a_is_not_answered_with_party_b_items(
    retriever: object, knowledge: Knowledge
) -> None:
    a = answer("甲方哪些行为会被认定为违约", retriever)  # type: ignore[arg-type]
    assert knowledge.by_id[a.citations[0].id].parties != ("乙方",)
    hits = retriever.search("甲方哪些行为会被认定为违约").hits  # type: ignore[attr-defined]
    assert "breach-1" in [h.item_id for h in hits[:2]]
    assert {"breach-2", "breach-4"}.isdisjoint(h.item_id for h in hits[:2])


def test_the_gap_list_of_the_real_map(retriever: object, knowledge: Knowledge) -> None:
    a = answer("协议没有约定哪些事项", retriever)  # type: ignore[arg-type]
    assert a.intent == "gaps"
    assert len(_texts(a, "gap")) == len(knowledge.coverage.gaps)
    assert any("转包和分包" in text for text in _texts(a, "gap"))
