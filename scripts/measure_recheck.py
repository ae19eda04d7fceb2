"""How wide the int8 model's recheck margins must be (``bot.search.retrieval.RECHECK``).

For every dev question (the held-out files are not read), the answer of the int8 model alone
(first item, out-of-scope, not-stated) is compared with that of sentence-transformers; for each
candidate set of margins the script prints how many differing answers the margins would leave
unchecked and what share of questions they would embed a second time in fp32. ``RECHECK`` is
chosen from this table; ``tests/test_fidelity.py`` then checks the result on every question.

    .venv/bin/python scripts/measure_recheck.py
"""

from __future__ import annotations

import copy
import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from evaluate import DEV_FILES, load_devset  # noqa: E402

from bot.model.loading import load_encoder, load_model  # noqa: E402
from bot.search.retrieval import RECHECK, Recheck, Retriever, Scored  # noqa: E402
from bot.settings import Settings  # noqa: E402

MARGINS = (0.002, 0.003, 0.005, 0.008, 0.01)
IN_SCOPE = (0.01, 0.02, 0.03, 0.05)
GAPS = (0.01, 0.02, 0.03, 0.05)


def decisions(retriever: Retriever, texts: list[str]) -> list[tuple[Scored, tuple[object, ...]]]:
    out: list[tuple[Scored, tuple[object, ...]]] = []
    for scored in retriever.score_many(texts):
        result = retriever._retrieval(scored, 5)
        top = result.hits[0].item_id if result.hits else None
        out.append((scored, (top, result.abstain, result.coverage)))
    return out


def main() -> int:
    settings = Settings()
    texts = [q.text for q in load_devset(DEV_FILES) if q.split == "dev"]
    reference = Retriever.load(settings, model=load_model(settings))
    fast = copy.copy(reference)
    fast.model = load_encoder(
        settings.model_copy(update={"embedding_backend": "onnx-int8", "int8_recheck": False})
    )
    want = [d for _, d in decisions(reference, texts)]
    got = decisions(fast, texts)
    near = [fast.distances(scored) for scored, _ in got]
    differ = [g != w for (_, g), w in zip(got, want, strict=True)]
    print(f"{len(texts)} dev questions; int8 alone answers {sum(differ)} differently from torch")
    print(f"{'margin':>7} {'in_scope':>8} {'gap':>6} {'unchecked':>9} {'checked':>8}")
    grid = [Recheck(*m) for m in itertools.product(MARGINS, IN_SCOPE, GAPS)]
    for recheck in sorted(set(grid) | {RECHECK}, key=lambda r: (r.fused_margin, r.in_scope, r.gap)):
        checked = [
            m < recheck.fused_margin or i < recheck.in_scope or g < recheck.gap for m, i, g in near
        ]
        unchecked = sum(d and not c for d, c in zip(differ, checked, strict=True))
        mark = "  <- RECHECK" if recheck == RECHECK else ""
        print(
            f"{recheck.fused_margin:>7} {recheck.in_scope:>8} {recheck.gap:>6} {unchecked:>9} "
            f"{sum(checked) / len(texts):>8.1%}{mark}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
