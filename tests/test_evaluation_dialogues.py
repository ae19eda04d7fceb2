"""The dialogue sets' shape and independence, and the follow-up floors on the held-out set.

Every follow-up choice was made on the dev dialogues (scripts/evaluate.py --dialogues
[--compare]); the held-out dialogues are only played here, and a failure shows their aggregate
figures, never the dialogues that missed. The wrong-merge floor holds; the follow-up top-1 floor
does not yet (0.692 against 0.85) and is a strict xfail, so it cannot be forgotten.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pytest

from tests import test_evaluation
from tests.conftest import load_script

if TYPE_CHECKING:
    from bot.knowledge.loader import Knowledge
    from bot.search.retrieval import Retriever

evaluate = load_script("evaluate")
DEV_SETS = {
    name: evaluate.load_dialogues(path) for name, path in evaluate.DIALOGUES_DEV_SETS.items()
}
ALL_DEV = [d for dialogues in DEV_SETS.values() for d in dialogues]
HELDOUT = evaluate.load_dialogues(evaluate.DIALOGUES_HELDOUT)

#: The issue's floors on the held-out dialogues.
FOLLOW_UP_TOP1 = 0.85
WRONG_MERGES = 0.05
#: Dev sets with first turns worded like an alternate question ("Who is Party B?"), and how
#: many; every other dev set has none.
FIRST_TURNS_LIKE_ALTERNATES = {"dev": 3, "dev5": 1}


def _normalized(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


@pytest.mark.parametrize(
    ("dialogues", "at_least"),
    [*((dialogues, 60) for dialogues in DEV_SETS.values()), (HELDOUT, 30)],
    ids=[*DEV_SETS, "heldout"],
)
def test_dialogue_sets_shape(dialogues: list, at_least: int, knowledge: Knowledge) -> None:
    assert len(dialogues) >= at_least
    assert len({d.id for d in dialogues}) == len(dialogues)
    assert Counter(d.lang for d in dialogues).keys() == {"zh-Hans", "zh-Hant", "en"}
    for d in dialogues:
        assert 2 <= len(d.turns) <= 3, d.id
        assert not d.turns[0].follow_up, f"{d.id}: a first turn follows nothing"
        for turn in d.turns:
            assert turn.gold, f"{d.id}: {turn.text!r} has no gold item"
            for gold in turn.gold:
                assert knowledge.get(gold) is not None, f"{d.id}: unknown gold id {gold!r}"
    later = [t for d in dialogues for t in d.turns[1:]]
    follow_ups = sum(t.follow_up for t in later)
    controls = len(later) - follow_ups
    assert follow_ups >= len(dialogues) // 2 and controls >= 5  # stand-alone controls mixed in


def test_dialogues_are_not_knowledge_or_other_evaluation_questions(knowledge: Knowledge) -> None:
    """The figures only mean something if no measured question is one the index holds (an
    alternate question or an off-topic example) and held-out shares none with either dev set.

    Three first turns of the dev dialogues and one of dev5's happen to be worded like alternate
    questions ("Who is Party B?"): the writers saw only the agreement, and dev is only tuned on.
    Every held-out turn, and every later turn of a dev set, must be new.
    """
    from bot.search.index import load_off_topics

    held = {_normalized(q) for item in knowledge.items for q in item.questions}
    held |= {_normalized(q) for q in load_off_topics()}
    later = [t for d in ALL_DEV for t in d.turns[1:]]
    copied = [t.text for t in later if _normalized(t.text) in held]
    assert not copied, f"dev dialogue questions in knowledge/ or off_topics.toml: {copied}"
    # Held-out texts are counted, never shown: a failure must not put them on screen.
    n_copied = sum(_normalized(t.text) in held for d in HELDOUT for t in d.turns)
    assert not n_copied, f"{n_copied} held-out dialogue questions in knowledge/ or off_topics"
    for name, dialogues in DEV_SETS.items():
        at_most = FIRST_TURNS_LIKE_ALTERNATES.get(name, 0)
        first = [d.turns[0].text for d in dialogues if _normalized(d.turns[0].text) in held]
        assert len(first) <= at_most, first
    dev = {_normalized(t.text) for d in ALL_DEV for t in d.turns}
    shared = sum(_normalized(t.text) in dev for d in HELDOUT for t in d.turns)
    assert not shared, f"{shared} held-out dialogue questions also in the dev dialogues"


def test_off_topic_examples_hold_no_dialogue_question(retriever: Retriever) -> None:
    """Abstention compares questions with bot/search/off_topics.toml: no near-copy there of a
    measured dialogue question (the off-topic veto of follow-ups reads the same signals)."""
    import numpy as np

    from bot.search.index import load_off_topics

    off_topics = load_off_topics()
    texts = [t.text for d in ALL_DEV for t in d.turns]
    heldout = [t.text for d in HELDOUT for t in d.turns]
    cosine = (
        retriever.index.off_topics @ test_evaluation.exact_vectors(retriever, texts + heldout).T
    )
    pairs = [(off_topics[i], texts[j]) for i, j in np.argwhere(cosine >= 0.95) if j < len(texts)]
    assert not pairs, (
        f"near-copies of dev dialogue questions in bot/search/off_topics.toml: {pairs}"
    )
    # Held-out texts are counted, never shown.
    n_heldout = int((cosine[:, len(texts) :] >= 0.95).any(axis=0).sum())
    assert not n_heldout, f"{n_heldout} held-out dialogue questions near-copied in off_topics"


@pytest.fixture(scope="module")
def heldout_results(retriever: Retriever) -> list[object]:
    return list(evaluate.run_dialogues(retriever, HELDOUT))


def test_heldout_wrong_merges_floor(heldout_results: list[object]) -> None:
    m = evaluate.dialogue_metrics(heldout_results)
    figures = evaluate.dialogue_report(heldout_results, show_misses=False)  # aggregates only
    assert m.wrong_merges <= WRONG_MERGES, figures


@pytest.mark.xfail(
    strict=True,
    reason=(
        "not met at the last look (10): held-out follow-up top-1 0.692 (dev now 0.910, dev2 "
        "0.885, dev3 0.890, dev4 0.788, dev5 0.851, dev6 0.909, dev7 0.744, dev8 0.868, "
        "dev9 0.800; 2026-12-05); see README 'Follow-up evaluation'. Strict: once the floor "
        "holds, this fails and the mark must go."
    ),
)
def test_heldout_follow_up_top1_floor(heldout_results: list[object]) -> None:
    m = evaluate.dialogue_metrics(heldout_results)
    figures = evaluate.dialogue_report(heldout_results, show_misses=False)  # aggregates only
    assert m.follow_top1 >= FOLLOW_UP_TOP1, figures


def test_dialogue_metrics_on_hand_made_results() -> None:
    d = evaluate.Dialogue(
        "d",
        "zh-Hans",
        "dev",
        (
            evaluate.Turn("q1", ("3.2",), False),
            evaluate.Turn("q2", ("3.3",), True),
            evaluate.Turn("q3", ("7.1",), False),
        ),
    )
    d2 = evaluate.Dialogue("e", "en", "dev", (d.turns[0], d.turns[1]))
    results = [
        evaluate.TurnResult(d, 0, "", "3.2", "q1"),
        evaluate.TurnResult(d, 1, "refers", "3.3", "q1 q2"),  # a follow-up, right
        evaluate.TurnResult(d, 2, "short", "7.1", "q2 q3"),  # a stand-alone one merged
        evaluate.TurnResult(d2, 0, "", "3.1", "q1"),  # a first turn, wrong
        evaluate.TurnResult(d2, 1, "", None, "q2"),  # a follow-up missed and abstained
    ]
    m = evaluate.dialogue_metrics(results)
    assert (m.n_follow, m.follow_top1, m.missed) == (2, 0.5, 0.5)
    assert (m.n_control, m.wrong_merges, m.control_top1) == (1, 1.0, 1.0)
    assert m.first_top1 == 0.5
    report = evaluate.dialogue_report(results)
    assert "[WRONG-MERGE] d 2: q3" in report and "[FOLLOW-UP] e 1: q2" in report
    assert "WRONG-MERGE" not in evaluate.dialogue_report(results, show_misses=False)
