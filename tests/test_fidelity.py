"""The fidelity gate of the default ONNX backend: on every evaluation question (dev and
held-out), the same retriever with its encoder instead of sentence-transformers ranks the same
item first on at least 99 % of them, decides to abstain differently on at most 1 %, and keeps
every held-out floor of ``tests/test_evaluation.py``.

Both retrievers are copies of the session's one with only the encoder swapped, so whatever
signals, fusion or abstention model the retriever has, the gate compares exactly the backends.
The int8 model alone missed the first condition (972 of 992, README "Serving the model"), so
the default is the int8 model checked by the fp32 export where a decision is near its turning
point (``BOT_INT8_RECHECK``); a backend made the default must pass here.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import pytest

from bot.settings import Settings
from tests import test_evaluation
from tests.conftest import load_script

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from bot.model.loading import Encoder
    from bot.search.retrieval import Retriever
    from bot.types import Retrieval

evaluate = load_script("evaluate")
QUESTIONS = evaluate.load_devset()

TOP1_AGREEMENT = 0.99
ABSTENTION_DISAGREEMENT = 0.01


#: The backend a bot serves with unless BOT_EMBEDDING_BACKEND says otherwise.
DEFAULT_BACKEND = Settings.model_fields["embedding_backend"].default
DEFAULT_RECHECK = Settings.model_fields["int8_recheck"].default


@pytest.fixture(scope="module")
def candidate(settings: Settings, encoder: object) -> Encoder:
    from bot.model.loading import load_encoder

    assert DEFAULT_BACKEND != "torch", "the gate compares the default backend with torch"
    serving = settings.model_copy(
        update={"embedding_backend": DEFAULT_BACKEND, "int8_recheck": DEFAULT_RECHECK}
    )
    return load_encoder(serving)


def _results(retriever: Retriever, model: object) -> list[Retrieval]:
    twin = copy.copy(retriever)
    twin.model = model  # type: ignore[assignment]
    return [r for _, r in evaluate.evaluate(twin, QUESTIONS)]


@pytest.fixture(scope="module")
def both(
    retriever: Retriever, model: SentenceTransformer, candidate: Encoder
) -> tuple[list[Retrieval], list[Retrieval]]:
    return _results(retriever, model), _results(retriever, candidate)


def _top(result: Retrieval) -> str | None:
    return result.hits[0].item_id if result.hits else None


def test_onnx_ranks_first_what_torch_ranks_first(
    both: tuple[list[Retrieval], list[Retrieval]],
) -> None:
    reference, candidate = both
    differ = [
        f"{q.split}: {q.text} | torch {_top(a)} ({a.confidence}) | onnx {_top(b)} ({b.confidence})"
        for q, a, b in zip(QUESTIONS, reference, candidate, strict=True)
        if _top(a) != _top(b)
    ]
    agreement = 1 - len(differ) / len(QUESTIONS)
    assert agreement >= TOP1_AGREEMENT, "\n".join(differ)


def test_onnx_abstains_where_torch_does(both: tuple[list[Retrieval], list[Retrieval]]) -> None:
    reference, candidate = both
    differ = [
        f"{q.split}: {q.text} | torch {a.confidence} | onnx {b.confidence}"
        for q, a, b in zip(QUESTIONS, reference, candidate, strict=True)
        if a.abstain != b.abstain
    ]
    assert len(differ) / len(QUESTIONS) <= ABSTENTION_DISAGREEMENT, "\n".join(differ)


def test_onnx_keeps_the_evaluation_floors(retriever: Retriever, candidate: Encoder) -> None:
    """Every held-out floor the reference meets, the serving backend meets too (whole answers:
    not-stated and out-of-scope decisions included)."""
    twin = copy.copy(retriever)
    twin.model = candidate  # type: ignore[assignment]
    heldout = [q for q in QUESTIONS if q.split == "heldout"]
    m = evaluate.kind_metrics(evaluate.run(twin, heldout))
    missed = [
        name
        for name in test_evaluation.FLOORS
        if name not in test_evaluation.UNMET and not test_evaluation.floor_holds(m, name)
    ]
    assert not missed, (missed, m)


def test_the_gate_compares_different_encoders(
    retriever: Retriever, model: SentenceTransformer, candidate: Encoder
) -> None:
    """Not a gate passed by comparing a backend with itself."""
    import numpy as np

    texts = [q.text for q in QUESTIONS[:20]]
    a = copy.copy(retriever)
    a.model = model  # type: ignore[assignment]
    b = copy.copy(retriever)
    b.model = candidate
    assert type(a.model) is not type(b.model)
    va, vb = a.encode(texts), b.encode(texts)
    assert not np.array_equal(va, vb)
    assert float((va * vb).sum(axis=1).min()) > 0.98
