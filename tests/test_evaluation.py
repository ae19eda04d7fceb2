"""The evaluation sets' shape and independence, and the retrieval floors on the held-out set.

The floors are asserted on the held-out set only (tests/data/heldout.toml); the abstention model
and every retrieval choice were fitted or measured on the dev set (scripts/evaluate.py --fit /
--compare).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pytest

from tests.conftest import load_script

if TYPE_CHECKING:
    from bot.knowledge.loader import Knowledge
    from bot.search.retrieval import Retriever

evaluate = load_script("evaluate")
QUESTIONS = evaluate.load_devset()


def test_devset_shape(knowledge: Knowledge) -> None:
    assert len(QUESTIONS) >= 150
    assert len({q.text for q in QUESTIONS}) == len(QUESTIONS), "duplicate questions"
    out_of_scope = [q for q in QUESTIONS if not q.in_scope]
    assert len(out_of_scope) >= 25
    languages = Counter(q.lang for q in QUESTIONS)
    assert set(languages) == {"zh-Hans", "zh-Hant", "en"}
    assert min(languages.values()) >= 30
    for q in QUESTIONS:
        assert q.split in ("dev", "heldout"), q
        for gold in q.gold:
            assert knowledge.get(gold) is not None, f"{q.text!r}: unknown gold id {gold!r}"
    heldout = [q for q in QUESTIONS if q.split == "heldout"]
    assert len(heldout) >= 100 and sum(not q.in_scope for q in heldout) >= 25
    for lang in languages:  # stratified: every language has held-out in- and out-of-scope
        assert any(q.lang == lang and q.in_scope for q in heldout)
        assert any(q.lang == lang and not q.in_scope for q in heldout)


def _normalized(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def test_evaluation_questions_are_not_knowledge_questions(knowledge: Knowledge) -> None:
    """The figures only mean something if no evaluation question is one the index holds, and
    the held-out set shares no question with the dev set it was kept apart from."""
    alternate = {_normalized(q) for item in knowledge.items for q in item.questions}
    copied = [q.text for q in QUESTIONS if _normalized(q.text) in alternate]
    assert not copied, f"evaluation questions copied into knowledge/: {copied}"
    dev = {_normalized(q.text) for q in QUESTIONS if q.split == "dev"}
    shared = [q.text for q in QUESTIONS if q.split == "heldout" and _normalized(q.text) in dev]
    assert not shared, f"held-out questions also in the dev set: {shared}"


def test_off_topic_examples_hold_no_evaluation_question(retriever: Retriever) -> None:
    """bot/search/off_topics.toml is what abstention compares questions with: a near-copy of an
    evaluation question there would make the out-of-scope figures a lookup."""
    import numpy as np

    from bot.search.index import load_off_topics

    off_topics = load_off_topics()
    assert len(off_topics) == len(retriever.index.off_topics)
    texts = [q.text for q in QUESTIONS]
    same = set(map(_normalized, off_topics)) & set(map(_normalized, texts))
    assert not same, f"evaluation questions in bot/search/off_topics.toml: {same}"
    cosine = retriever.index.off_topics @ retriever.encode(texts).T
    close = np.argwhere(cosine >= 0.95)
    pairs = [(off_topics[i], texts[j]) for i, j in close]
    assert not pairs, f"near-copies of evaluation questions in bot/search/off_topics.toml: {pairs}"


@pytest.fixture(scope="module")
def heldout_pairs(retriever: Retriever) -> list[tuple[object, object]]:
    heldout = [q for q in QUESTIONS if q.split == "heldout"]
    return evaluate.evaluate(retriever, heldout)


def test_heldout_floors(heldout_pairs: list[tuple[object, object]]) -> None:
    m = evaluate.metrics(heldout_pairs)
    report = evaluate.report(heldout_pairs)
    assert m.top1 >= 0.90, report
    assert m.top3 >= 0.97, report
    assert m.false_abstain <= 0.03, report
    assert m.oos_abstain >= 0.90, report


def test_metrics_on_hand_made_results() -> None:
    from bot.types import Hit, Retrieval

    q_in = evaluate.DevQuestion("q1", ("3.2",), "zh-Hans", "dev")
    q_out = evaluate.DevQuestion("q2", (), "en", "dev")

    def result(ids: list[str], abstain: bool) -> Retrieval:
        return Retrieval("q", tuple(Hit(i, 1.0) for i in ids), 0.5, abstain)

    m = evaluate.metrics(
        [
            (q_in, result(["3.1", "3.2"], False)),  # rank 2
            (q_in, result(["3.2"], True)),  # rank 1, wrongly refused
            (q_out, result(["1.1"], True)),  # correctly refused
            (q_out, result(["1.1"], False)),  # wrongly answered
        ]
    )
    assert m.top1 == 0.5 and m.top3 == 1.0 and m.mrr == pytest.approx(0.75)
    assert m.oos_abstain == 0.5 and m.false_abstain == 0.5


def test_threshold_prefers_answering_over_refusing() -> None:
    # One in-scope question scores below an out-of-scope one: refusing it costs
    # FALSE_ABSTAIN_COST (2), letting the out-of-scope one through costs 1, so the threshold
    # goes below it.
    assert evaluate.FALSE_ABSTAIN_COST > 1
    threshold = evaluate.choose_threshold([0.2, 0.8, 0.9], [0.05, 0.3])
    assert 0.05 < threshold < 0.2
    assert 0.35 < evaluate.choose_threshold([0.6, 0.8], [0.1, 0.3, 0.35]) < 0.6
