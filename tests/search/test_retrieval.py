"""Retrieval end to end with the real model and index.

The questions here are written for these tests: none is a dev-set question.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from bot.search.retrieval import Retriever


# -- references, ranking and abstention on real questions ----------------------------------------


@pytest.mark.parametrize(
    ("question", "ids"),
    [
        ("第5.2條", ["5.2"]),
        ("/clause 3.3", ["3.3"]),
        ("第五条", ["5.1", "5.2"]),
        ("section 6", ["6.1"]),
        ("違約金是什麼意思", ["term-3"]),
        ("what does 争议解决 mean", ["term-4"]),
        ("liquidated damages", ["term-3"]),
    ],
)
def test_references_resolve_directly(retriever: Retriever, question: str, ids: list[str]) -> None:
    result = retriever.search(question)
    assert [hit.item_id for hit in result.hits] == ids
    assert all(hit.via == "reference" for hit in result.hits)
    assert result.confidence == 1.0 and not result.abstain


def test_a_question_mentioning_a_term_is_searched_not_looked_up(retriever: Retriever) -> None:
    result = retriever.search("乙方违约以后甲方能要求什么")
    assert result.hits[0].via == "search"
    assert not result.abstain


# -- free questions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # traditional Chinese
        ("乙方可不可以把甲方的技術資料透露給其他廠商？", "1.3"),
        ("服務費要匯到哪個銀行帳戶", "3.3"),
        ("合約的期限從哪一天開始算", "2.1"),
        # simplified Chinese, colloquial
        ("甲方逾期未付服务费，乙方可以先暂停服务吗", "problem-1"),
        ("售后服务费按什么周期结算", "3.2"),
        # English
        ("How many months ahead must we give notice before renewing?", "2.2"),
        ("Who has to set up a mechanism for handling customer complaints?", "4.3"),
        ("If the provider fails to deliver support, may Party A cancel the contract?", "5.2"),
        ("Is training part of the support Party B provides?", "1.1"),
    ],
)
def test_questions_find_the_right_item(retriever: Retriever, question: str, expected: str) -> None:
    result = retriever.search(question)
    assert result.hits[0].item_id == expected, [h.item_id for h in result.hits]
    assert result.hits[0].via == "search"
    assert not result.abstain, result.confidence


@pytest.mark.parametrize(
    ("cantonese", "mandarin"),
    [
        ("甲方冇按時俾服務費，乙方可以點做？", "甲方没有按时给服务费，乙方可以怎么做？"),
        ("佢哋洩露咗我哋嘅技術資料點算", "他们泄露了我们的技术资料怎么办"),
    ],
)
def test_a_cantonese_question_is_answered_as_its_mandarin_wording(
    retriever: Retriever, cantonese: str, mandarin: str
) -> None:
    spoken, written = retriever.search(cantonese), retriever.search(mandarin)
    assert not spoken.abstain
    assert [h.item_id for h in spoken.hits[:3]] == [h.item_id for h in written.hits[:3]]


@pytest.mark.parametrize(
    "question",
    [
        "今天股市行情如何",
        "How do I bake sourdough bread?",
        "勞工退休金提撥比例是多少",
        "what's 2+2",
        "哈哈",
    ],
)
def test_out_of_scope_abstains_but_offers_nearest_topics(
    retriever: Retriever, question: str
) -> None:
    result = retriever.search(question, k=3)
    assert result.abstain
    assert result.confidence < retriever.abstention.threshold
    assert len(result.hits) == 3  # nearest topics, for "not covered; maybe you meant ..."


def test_hits_are_ranked_and_scored(retriever: Retriever) -> None:
    result = retriever.search("乙方需要建立什么样的质量体系", k=4)
    assert len(result.hits) == 4
    scores = [hit.score for hit in result.hits]
    assert scores == sorted(scores, reverse=True)
    assert len({hit.item_id for hit in result.hits}) == 4
    assert all(-1.0 <= hit.dense <= 1.0 and hit.lexical >= 0.0 for hit in result.hits)
    assert 0.0 <= result.confidence <= 1.0


def test_search_many_matches_search(retriever: Retriever) -> None:
    questions = ["第3.2条", "How is the fee paid?", "今天天气", "服務品質怎麼評估"]
    many = retriever.search_many(questions, k=3)
    for question, result in zip(questions, many, strict=True):
        single = retriever.search(question, k=3)
        assert [h.item_id for h in result.hits] == [h.item_id for h in single.hits]
        assert result.abstain == single.abstain
        assert result.confidence == pytest.approx(single.confidence, abs=1e-3)


class _Counting:
    """An encoder that counts the texts it embeds (to see what the retriever re-embeds)."""

    def __init__(self, encoder: object) -> None:
        self.encoder = encoder
        self.texts: list[str] = []

    def encode_query(self, texts: list[str], **options: object) -> object:
        self.texts.extend(texts)
        return self.encoder.encode_query(texts, **options)  # type: ignore[attr-defined]


class _Pair:
    def __init__(self, fast: object, exact: object) -> None:
        self.fast, self.exact = fast, exact

    def encode_query(self, texts: list[str], **options: object) -> object:
        return self.fast.encode_query(texts, **options)  # type: ignore[attr-defined]


def test_only_near_decisions_are_embedded_again(retriever: Retriever) -> None:
    """With a checking twin beside the fast model, exactly the questions whose decision is near
    its turning point are embedded a second time, and get the twin's scores."""
    import copy

    exact = getattr(retriever.model, "exact", retriever.model)
    questions = [
        "甲方不按时付款怎么办？",
        "How do I complain about the service?",
        "今天天气怎么样",
        "合同到期以后还要保密吗",
        "who pays for the spare parts",
        "服務費怎麼付",
        "乙方可以把工作外包给别人吗",
        "what if nobody fixes it",
    ]
    alone = copy.copy(retriever)
    alone.model = exact  # type: ignore[assignment]
    reference = alone.score_many(questions)
    close = [q for q, s in zip(questions, reference, strict=True) if retriever._close(s)]
    assert 0 < len(close) < len(questions), "the questions should include near and clear ones"

    checked = copy.copy(retriever)
    twin = _Counting(exact)
    checked.model = _Pair(fast=exact, exact=twin)  # type: ignore[assignment]
    scored = checked.score_many(questions)
    assert len(twin.texts) == len(close)
    for a, b in zip(reference, scored, strict=True):
        assert list(a.fused) == pytest.approx(list(b.fused), abs=1e-5)


@pytest.mark.parametrize("question", ["", "   ", "？？？"])
def test_empty_questions_abstain_without_hits(retriever: Retriever, question: str) -> None:
    result = retriever.search(question)
    assert result.abstain and result.hits == () and result.confidence == 0.0


def test_long_message_with_a_question_inside(retriever: Retriever) -> None:
    question = (
        "我们是一家做智能家居App的公司，去年和一家外包客服团队签了这份售后支持协议，合作到现在"
        "总体还算顺利，不过财务同事想确认一下：按照协议，甲方应该在什么时间把上一季度的服务费付给乙方？"
    )
    result = retriever.search(question)
    assert result.hits[0].item_id == "3.2" and not result.abstain


def test_overlong_message_is_cut_to_the_limit(retriever: Retriever) -> None:
    limit = retriever.settings.max_question_chars
    result = retriever.search("服务费什么时候付" + "。" * (limit * 3))
    assert result.hits and len(result.hits) == 5


@pytest.mark.parametrize(
    ("typo", "spelled"),
    [
        ("What are liquidaded damges?", "What are liquidated damages?"),
        (
            "How does the confidentialty obligation work?",
            "How does the confidentiality obligation work?",
        ),
        ("When is the paymnet due each quarter?", "When is the payment due each quarter?"),
    ],
)
def test_english_typos_find_what_the_right_spelling_finds(
    retriever: Retriever, typo: str, spelled: str
) -> None:
    got, want = retriever.search(typo), retriever.search(spelled)
    assert got.hits[0].item_id == want.hits[0].item_id
    assert not got.abstain
