"""The evaluation sets' shape and independence, and the floors on the held-out set, by kind.

The floors are asserted on the held-out files only (tests/data/heldout.toml and *_heldout.toml);
the abstention, not-stated and ranking models and every retrieval choice were fitted or measured
on the dev files (scripts/evaluate.py --fit / --compare). A failing floor prints the held-out
figures, never its questions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import load_script

if TYPE_CHECKING:
    import numpy as np

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
    for lang in languages:  # stratified: every language has held-out questions of every kind
        for kind in evaluate.KINDS:
            assert any(q.lang == lang and q.kind == kind for q in heldout), (lang, kind)


def test_not_stated_and_hard_out_of_scope_sets(knowledge: Knowledge) -> None:
    """Enough questions of the two new kinds, across many categories, each file its own split."""
    for split, files, at_least in (
        ("dev", evaluate.DEV_FILES, 60),
        ("heldout", evaluate.HELDOUT_FILES, 30),
    ):
        by_file = {path.name: evaluate.load_devset((path,)) for path in files}
        for name, questions in by_file.items():
            assert all(q.split == split for q in questions), name
        gaps = by_file[f"not_stated_{split}.toml"]
        assert len(gaps) >= at_least and all(q.kind == "not_stated" for q in gaps)
        assert len({q.category for q in gaps}) >= (30 if split == "dev" else 20)
        assert {q.lang for q in gaps} == {"zh-Hans", "zh-Hant", "en"}
        hard = by_file[f"hard_oos_{split}.toml"]
        assert len(hard) >= at_least and all(q.kind == "out_of_scope" for q in hard)
    for q in QUESTIONS:
        if q.kind == "not_stated":
            assert knowledge.coverage.get(q.category) is not None, q.text
            assert q.near and all(knowledge.get(i) is not None for i in q.near), q.text
            assert not q.gold


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


def exact_vectors(retriever: Retriever, texts: list[str]) -> np.ndarray:
    """``texts`` embedded as the index was (the exact model, not the int8 approximation a
    checked encoder answers with first): near-copy checks compare texts, not backends."""
    return retriever.encode(texts, getattr(retriever.model, "exact", None))


def test_coverage_examples_hold_no_evaluation_question(retriever: Retriever) -> None:
    """knowledge/coverage.toml's examples are what "not stated" is recognised by: a near-copy
    of an evaluation question there would make the not-stated figures a lookup. (For a held-out
    question only the example is named, so that fixing it shows nothing of the held-out set.)"""
    import numpy as np

    examples = [text for _, text in retriever.knowledge.coverage.examples()]
    assert len(examples) == len(retriever.index.coverage)
    texts = [q.text for q in QUESTIONS]
    same = set(map(_normalized, examples)) & set(map(_normalized, texts))
    assert not same, f"evaluation questions in knowledge/coverage.toml: {same}"
    cosine = retriever.index.coverage @ exact_vectors(retriever, texts).T
    close = [
        (examples[i], QUESTIONS[j].text if QUESTIONS[j].split == "dev" else "a held-out question")
        for i, j in np.argwhere(cosine >= 0.95)
    ]
    assert not close, f"near-copies of evaluation questions in knowledge/coverage.toml: {close}"


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
    cosine = retriever.index.off_topics @ exact_vectors(retriever, texts).T
    close = np.argwhere(cosine >= 0.95)
    pairs = [
        (off_topics[i], texts[j] if QUESTIONS[j].split == "dev" else "a held-out question")
        for i, j in close
    ]
    assert not pairs, f"near-copies of evaluation questions in bot/search/off_topics.toml: {pairs}"


@pytest.fixture(scope="module")
def heldout_outcomes(retriever: Retriever) -> list[object]:
    heldout = [q for q in QUESTIONS if q.split == "heldout"]
    return evaluate.run(retriever, heldout)


#: The held-out floors of issue #12: (figure, at least / at most, floor).
FLOORS: dict[str, tuple[Callable[[Any], float], str, float]] = {
    "in-scope top-1": (lambda m: m.top1, ">=", 0.95),
    "in-scope top-3": (lambda m: m.top3, ">=", 0.99),
    # answerable questions flagged not_stated or out_of_scope
    "in-scope flagged": (lambda m: m.in_flagged, "<=", 0.03),
    "not-stated flagged": (lambda m: m.ns_flagged, ">=", 0.85),
    "out-of-scope abstained": (lambda m: m.oos_abstained, ">=", 0.90),
}

#: Floors not met yet, with the held-out figure when last looked at (README "What the agreement
#: does not say"). Strict: a floor that starts to hold fails its test until it leaves this list.
UNMET: dict[str, str] = {
    "in-scope flagged": "0.066 on 2026-12-03, look 10 (dev 0.028, eight writers, 2026-12-05)",
    "not-stated flagged": "0.837 on 2026-12-03, look 10 (dev 0.872, eight writers, 2026-12-05)",
}


def floor_holds(metrics: Any, name: str) -> bool:
    figure, direction, floor = FLOORS[name]
    value = figure(metrics)
    return value >= floor if direction == ">=" else value <= floor


def test_heldout_sizes(heldout_outcomes: list[object]) -> None:
    m = evaluate.kind_metrics(heldout_outcomes)
    assert m.n_in >= 100 and m.n_ns >= 30 and m.n_oos >= 60, evaluate.kind_report(heldout_outcomes)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=pytest.mark.xfail(strict=True, reason=f"not met: held-out {UNMET[name]}"),
        )
        if name in UNMET
        else name
        for name in FLOORS
    ],
)
def test_heldout_floor(heldout_outcomes: list[object], name: str) -> None:
    m = evaluate.kind_metrics(heldout_outcomes)
    # A failure prints the figures only: never the held-out misses.
    assert floor_holds(m, name), evaluate.kind_report(heldout_outcomes)


def test_heldout_confidence_is_honest(heldout_outcomes: list[object]) -> None:
    n, right = evaluate.high_confidence_precision(heldout_outcomes, at=0.9)
    assert n >= 30 and right >= 0.97, evaluate.kind_report(heldout_outcomes)


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


def test_kind_metrics_on_hand_made_outcomes(knowledge: Knowledge) -> None:
    from bot.types import Answer, Citation, Hit, Retrieval

    def outcome(q: object, coverage: str, cited: list[str], hits: list[str]) -> object:
        a = Answer(
            "q",
            "zh-Hans",
            coverage == "out_of_scope",
            0.95,
            "question",
            citations=tuple(Citation(i, "clause", 0.9) for i in cited),
            coverage=coverage,
            category="subcontracting" if coverage == "not_stated" else "",
        )
        return evaluate.Outcome(q, Retrieval("q", tuple(Hit(i, 1.0) for i in hits), 0.9, False), a)

    q_in = evaluate.DevQuestion("a", ("3.2",), "zh-Hans", "dev")
    q_ns = evaluate.DevQuestion(
        "b", (), "en", "dev", kind="not_stated", category="subcontracting", near=("1.3",)
    )
    q_out = evaluate.DevQuestion("c", (), "en", "dev")
    m = evaluate.kind_metrics(
        [
            outcome(q_in, "answered", ["3.2"], ["3.2"]),
            outcome(q_in, "not_stated", ["3.2"], ["3.1", "3.2"]),  # flagged, rank 2
            outcome(q_ns, "not_stated", ["1.1", "1.3"], ["1.1"]),  # flagged, near quoted
            outcome(q_ns, "not_stated", ["5.1"], ["5.1"]),  # flagged, nothing relevant quoted
            outcome(q_ns, "answered", ["1.3"], ["1.3"]),  # missed
            outcome(q_out, "out_of_scope", [], ["1.1"]),
        ]
    )
    assert (m.n_in, m.n_ns, m.n_oos) == (2, 3, 1)
    assert m.top1 == 0.5 and m.top3 == 1.0 and m.in_flagged == 0.5
    assert m.ns_flagged == pytest.approx(2 / 3) and m.ns_near == pytest.approx(1 / 3)
    assert m.oos_abstained == 1.0
    assert evaluate.high_confidence_precision(
        [outcome(q_in, "answered", ["3.2"], ["3.2"]), outcome(q_in, "answered", ["1.1"], ["1.1"])]
    ) == (2, 0.5)


def test_threshold_prefers_answering_over_refusing() -> None:
    # One in-scope question scores below an out-of-scope one: refusing it costs
    # FALSE_ABSTAIN_COST (2), letting the out-of-scope one through costs 1, so the threshold
    # goes below it.
    assert evaluate.FALSE_ABSTAIN_COST > 1
    threshold = evaluate.choose_threshold([0.2, 0.8, 0.9], [0.05, 0.3])
    assert 0.05 < threshold < 0.2
    assert 0.35 < evaluate.choose_threshold([0.6, 0.8], [0.1, 0.3, 0.35]) < 0.6


def test_threshold_on_shares_does_not_follow_the_class_sizes() -> None:
    # Many answerable questions and few out-of-scope ones: by counts, the one answerable
    # question scoring lowest outweighs both out-of-scope ones above it; by shares, refusing
    # 1 of 10 answerable questions (x cost) costs less than answering 2 of 2 out-of-scope ones.
    p_in = [0.3, *([0.9] * 9)]
    p_oos = [0.35, 0.4]
    assert evaluate.choose_threshold(p_in, p_oos, 3.0) < 0.3
    assert 0.4 < evaluate.choose_threshold(p_in, p_oos, 3.0, rates=True) < 0.9
