"""When to say "not covered": signals of how far a question is from the agreement, and the
logistic model over them fitted on the dev set (``abstention.json``, refitted by
``scripts/evaluate.py --fit``). The same kind of model, over the coverage-map signals of
``bot.search.gaps``, decides when the agreement does not say (``gaps.json``), and a third, over
the ranking margins, says how likely the first hit is the right one (``ranking.json``): the
three make the confidence of an answer."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

ABSTENTION_FILE = Path(__file__).with_name("abstention.json")
GAPS_FILE = Path(__file__).with_name("gaps.json")
#: P(the first hit is right | answered), fitted without class weights so it is calibrated.
RANKING_FILE = Path(__file__).with_name("ranking.json")
#: How many nearest neighbours ``off_topic_share`` looks at.
NEIGHBOURS = 10

#: Signals computed for every question (``Scored.features``); the abstention model uses the
#: subset it was fitted on (``Abstention.features``).
#: dense_top: cosine of the best item; dense_margin: its lead over the second item;
#: dense_gap: its lead over the mean of all items; question_top: best cosine with any alternate
#: question; coverage: share of the question's content words found in the knowledge, each
#: weighted by how rare it is in general Chinese (so 社保 or iPhone count more than 公司 or 规定),
#: English typos corrected first (``textproc.Speller``); bigram_coverage: share of its Chinese
#: character bigrams found; lexical_top: log(1 + best BM25 score); foreign_max: the general rarity
#: of the rarest content word found nowhere in the knowledge (0 when there is none);
#: foreign_sum: log(1 + the summed rarity of all such words); off_topic_margin: the question's
#: best cosine with a text about something the agreement does not cover (bot/search/off_topics.toml,
#: embedded in the index) minus dense_top; off_topic_share: the share of such texts among the
#: question's NEIGHBOURS nearest vectors (the agreement's and the off-topic ones together).
#: The coverage-map signals (``bot.search.gaps``): gap_logit, gap_max, off_logit (the index
#: classifier's log-odds of a gap category against an item, of the likeliest gap category against
#: the likeliest item, of off-topic against the rest), gap_margin
#: (best cosine with a coverage example minus question_top), gap_words (the question's words'
#: log-ratio between the coverage map's texts and the knowledge's), unexplained (the summed
#: rarity of the question's words that the best item's own text never uses); foreign_subject:
#: how many words naming another contract or business the question has (0, 1, 2 or more; the
#: ``subjects`` of bot/search/off_topics.toml); names_agreement: 1 when the question speaks of a
#: contract, a clause or a party or role (``bot.search.parties.names_agreement``); fused_margin:
#: the fused score's lead of the first hit over the second (for the ranking model: is the first
#: hit the right one?).
FEATURES = (
    "dense_top",
    "dense_margin",
    "dense_gap",
    "question_top",
    "coverage",
    "bigram_coverage",
    "lexical_top",
    "foreign_max",
    "foreign_sum",
    "off_topic_margin",
    "off_topic_share",
    "gap_logit",
    "gap_max",
    "off_logit",
    "gap_margin",
    "gap_words",
    "unexplained",
    "foreign_subject",
    "names_agreement",
    "fused_margin",
)


def off_topic_features(
    off_sims: np.ndarray, row_sims: np.ndarray, dense_top: float, k: int = NEIGHBOURS
) -> dict[str, float]:
    """How close a question is to what the agreement does not cover, from its cosines with the
    off-topic texts (``off_sims``) and with the index rows (``row_sims``, any order)."""
    import numpy as np

    if not len(off_sims):
        return {"off_topic_margin": -1.0, "off_topic_share": 0.0}
    nearest_off = np.sort(off_sims)[::-1][:k]
    nearest_rows = np.sort(row_sims)[::-1][:k]
    pooled = np.concatenate([nearest_off, nearest_rows])
    is_off = np.arange(len(pooled)) < len(nearest_off)
    # Ties go to the agreement's texts: the stable sort on the reversed pool keeps rows first.
    order = np.argsort(-pooled[::-1], kind="stable")[:k]
    top = len(pooled) - 1 - order
    return {
        "off_topic_margin": float(nearest_off[0]) - dense_top,
        "off_topic_share": float(is_off[top].mean()),
    }


@dataclass(frozen=True)
class Abstention:
    """A logistic model P(in scope | features) and the threshold below which we abstain."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    features: tuple[str, ...] = FEATURES
    note: str = ""

    def confidence(self, values: Sequence[float]) -> float:
        z = self.bias
        for v, m, s, w in zip(values, self.mean, self.scale, self.weights, strict=True):
            z += w * (v - m) / s
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))

    @classmethod
    def load(cls, path: Path = ABSTENTION_FILE) -> Abstention:
        data = json.loads(path.read_text(encoding="utf-8"))
        unknown = set(data["features"]) - set(FEATURES)
        if unknown:
            raise ValueError(
                f"{path} was fitted on features this code does not compute ({sorted(unknown)}): "
                "refit with `.venv/bin/python scripts/evaluate.py --fit`"
            )
        return cls(
            mean=tuple(data["mean"]),
            scale=tuple(data["scale"]),
            weights=tuple(data["weights"]),
            bias=float(data["bias"]),
            threshold=float(data["threshold"]),
            features=tuple(data["features"]),
            note=str(data.get("note", "")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
            "threshold": self.threshold,
            "note": self.note,
        }
