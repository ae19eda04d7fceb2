"""Fusion of dense and lexical scores, on hand-made score vectors."""

from __future__ import annotations

import numpy as np
import pytest

from bot.search.fusion import PROCEDURE_INTENT, fuse_rrf, fuse_weighted


def test_rrf_ranks_by_both_rankings() -> None:
    dense = np.array([0.90, 0.80, 0.85, 0.10])  # ranks 1, 3, 2, 4
    lexical = np.array([7.0, 9.0, 0.0, 0.0])  # ranks 2, 1, 3, 4 (ties keep order)
    fused = fuse_rrf(dense, lexical, k=5)
    assert fused[0] == pytest.approx(1 / 6 + 1 / 7)
    assert fused[1] == pytest.approx(1 / 8 + 1 / 6)
    assert fused[2] == pytest.approx(1 / 7 + 1 / 8)
    assert fused[3] == pytest.approx(2 / 9)  # last in both
    assert list(np.argsort(-fused, kind="stable")) == [0, 1, 2, 3]


def test_rrf_ignores_score_scale() -> None:
    dense = np.array([0.3, 0.2, 0.1])
    lexical = np.array([300.0, 200.0, 100.0])
    assert np.allclose(fuse_rrf(dense, lexical, k=60), fuse_rrf(dense * 10, lexical / 100, k=60))


def test_rrf_ties_keep_document_order() -> None:
    fused = fuse_rrf(np.zeros(3), np.zeros(3), k=5)
    assert list(np.argsort(-fused, kind="stable")) == [0, 1, 2]


def test_weighted_fusion_adds_scaled_bm25() -> None:
    fused = fuse_weighted(np.array([0.8, 0.9]), np.array([10.0, 0.0]), weight=0.02)
    assert fused == pytest.approx([1.0, 0.9])


@pytest.mark.parametrize(
    ("question", "asks_procedure"),
    [
        ("甲方拖欠服务费怎么办", True),
        ("what should we do if the vendor leaks our documents?", True),
        # "What if" first asks what follows, as 怎么办 does.
        ("and if complaints pile up unresolved?", True),
        ("what if party a pays late?", True),
        ("but if they still don't fix it", True),
        ("what should we pay?", False),
        ("is it a breach if party a pays late, and what if it happens twice?", False),
        ("服务费什么时候付", False),
    ],
)
def test_procedure_intent(question: str, asks_procedure: bool) -> None:
    assert bool(PROCEDURE_INTENT.search(question)) is asks_procedure
