"""Evidence that a question asks about something the agreement does not say.

Signals from the coverage map (``knowledge/coverage.toml``) against the agreement's own texts,
each a pure function of arrays or token lists (``bot.search.retrieval`` computes them for every
question; the outcome model in ``gaps.json`` weighs them, fitted on the dev split by
``scripts/evaluate.py --fit``):

- ``classifier_features``: from the index's classifier (which item, which gap category, or
  off-topic, trained on the knowledge's texts only): the log-odds of "a gap category" against
  "an item" (``gap_logit``), of the most likely gap category against the most likely item
  (``gap_max``) and of "off-topic" against the rest (``off_logit``), and the most likely
  category.
- ``gap_neighbours``: the best cosine with a coverage example against the best with an
  alternate question or title (``gap_margin``).
- ``GapVocabulary``: how much more often the question's words occur in the coverage map's texts
  than in the knowledge's (``gap_words``, a smoothed log-ratio summed over the words).
- ``unexplained``: the summed rarity of the question's words that the best item's own text,
  title and aliases never use (``unexplained``): "服务费含税吗" is about 3.1 but asks for a word
  3.1 does not have.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from bot.knowledge.coverage import Coverage
    from bot.types import Item


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-probabilities of a matrix of logits."""
    import numpy as np

    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _logsumexp(values: np.ndarray) -> float:
    import numpy as np

    if not len(values):
        return -1e9
    top = float(values.max())
    return top + math.log(float(np.exp(values - top).sum()))


def classifier_features(
    log_p: np.ndarray, gap: np.ndarray, off: np.ndarray
) -> tuple[dict[str, float], int]:
    """``gap_logit``, ``gap_max``, ``off_logit`` from one question's class log-probabilities
    ``log_p``
    (``gap`` / ``off``: boolean masks of the gap-category and off-topic classes; the rest are
    items), and the index of the most likely gap class (-1 when there is none)."""
    import numpy as np

    items = ~gap & ~off
    features = {
        "gap_logit": _logsumexp(log_p[gap]) - _logsumexp(log_p[items]),
        "gap_max": float(log_p[gap].max() - log_p[items].max()) if gap.any() else -40.0,
        "off_logit": _logsumexp(log_p[off]) - _logsumexp(log_p[~off]),
    }
    best = int(np.flatnonzero(gap)[np.argmax(log_p[gap])]) if gap.any() else -1
    return features, best


def gap_neighbours(gap_sims: np.ndarray, question_top: float) -> dict[str, float]:
    """``gap_margin``: the question's best cosine with a coverage example minus its best with
    an item's alternate question or title (both query vectors)."""
    best = float(gap_sims.max()) if len(gap_sims) else -1.0
    return {"gap_margin": best - question_top}


@dataclass(frozen=True)
class GapVocabulary:
    """Document frequencies of tokens in the coverage map's texts and in the knowledge's."""

    gap: Counter[str]
    known: Counter[str]
    n_gap: int
    n_known: int

    @classmethod
    def build(
        cls, items: Iterable[Item], coverage: Coverage, tokens: Callable[[str], list[str]]
    ) -> GapVocabulary:
        """From every item's wording, titles and alternate questions, and every gap category's
        names, statements and examples; ``tokens`` is the lexical tokenizer."""
        known: Counter[str] = Counter()
        n_known = 0
        for item in items:
            for text in (item.title, item.title_en, item.text, item.text_en, *item.questions):
                known.update(set(tokens(text)))
                n_known += 1
        gap: Counter[str] = Counter()
        n_gap = 0
        for category in coverage.gaps:
            for text in (
                category.name,
                category.name_en,
                category.not_stated,
                category.not_stated_en,
                *category.examples,
            ):
                gap.update(set(tokens(text)))
                n_gap += 1
        return cls(gap=gap, known=known, n_gap=max(n_gap, 1), n_known=max(n_known, 1))

    def score(self, question_tokens: Iterable[str]) -> float:
        """Summed smoothed log-ratio of the tokens' frequency among gap texts to that among
        knowledge texts (positive: the words of what the agreement does not say)."""
        total = 0.0
        for token in set(question_tokens):
            if token.replace(".", "").isdigit():
                continue
            in_gap = (self.gap[token] + 0.5) / (self.n_gap + 1)
            in_known = (self.known[token] + 0.5) / (self.n_known + 1)
            total += math.log(in_gap / in_known)
        return total


def subject_matcher(words: Iterable[str]) -> re.Pattern[str]:
    """A pattern finding ``words`` (another contract or business: 房东, 贷款, landlord) in
    normalized text: Chinese words anywhere, English ones as whole words."""
    parts = sorted({w.strip().lower() for w in words if w.strip()}, key=len, reverse=True)
    alternatives = [
        re.escape(w) if any("\u4e00" <= c <= "\u9fff" for c in w) else rf"\b{re.escape(w)}s?\b"
        for w in parts
    ]
    return re.compile("|".join(alternatives) if alternatives else r"(?!)")


#: A speaker introducing themselves before the question ("我是甲方的产品经理，…",
#: "我们是做智能手表的，…", "I'm an account manager at the support vendor. …"), in normalized
#: text (simplified, lower case): the role's words say who asks, not what the agreement says.
_INTRODUCTION = re.compile(
    r"^(?:(?:你好|您好|请问|hi|hello)[，,、!！\s]*)*"
    r"(?:(?:我们|我哋|咱们|我)(?:是|系|係)[^，。？！,.?!；;\s]{1,20}[，。,.；;\s]"
    r"|(?:i'm|i am|we're|we are)\b(?:(?! and )[^,.;!?-]){1,60}(?:[,.;!?]| - ))"
)


def without_introduction(normalized: str) -> str:
    """``normalized`` without a self-introduction before the question, when a question of at
    least four characters follows it (else unchanged)."""
    match = _INTRODUCTION.match(normalized)
    if match is None:
        return normalized
    rest = normalized[match.end() :].strip()
    return rest if len(rest) >= 4 else normalized


def unexplained(
    words: Sequence[str], weights: Sequence[float], known: Callable[[str], bool]
) -> float:
    """The summed weight of ``words`` that ``known`` (the best item's own vocabulary) lacks."""
    return float(sum(w for word, w in zip(words, weights, strict=True) if not known(word)))
