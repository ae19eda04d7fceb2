"""BM25 on hand-made token lists."""

from __future__ import annotations

from bot.search.lexical import BM25


def test_bm25_ranks_rare_matches_first_and_ignores_unknown_tokens() -> None:
    bm25 = BM25(("a", "b", "c", "empty"), [["违约金", "支付"], ["支付", "服务费"], ["支付"], []])
    scores = bm25.scores(["违约金", "支付", "从未出现"])
    assert scores.argmax() == 0  # the only document with the rare word
    assert scores[3] == 0.0 and len(scores) == 4  # an empty document keeps its row
    assert (bm25.scores(["从未出现"]) == 0).all()
    # A word in every document says little: it scores below the rare one.
    assert bm25.scores(["违约金"])[0] > bm25.scores(["支付"])[0]
    assert bm25.known("服务费") and not bm25.known("从未出现")
    assert (
        BM25.from_json(bm25.to_json()).scores(["服务费"]).tolist()
        == bm25.scores(["服务费"]).tolist()
    )
