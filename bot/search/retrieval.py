"""Hybrid retrieval over the agreement: dense + BM25, explicit references, calibrated abstention.

``Retriever.load(settings)`` loads the knowledge, the embedding model and the verified index once.
``Retriever.search(question)`` then:

1. resolves an explicit reference ("第3.2条", "clause 5.1", "第五条", "违约金") directly
   (``via="reference"``, confidence 1.0);
2. otherwise scores every item twice: dense (the cosine of the query with the item's best vector
   among its text, translation, titles and alternate questions) and lexical (BM25 over
   ``bot.search.textproc`` tokens), and fuses the two rankings (see ``FUSION``; measured on the
   dev set by ``scripts/evaluate.py --compare``);
3. computes a confidence that the question is about this agreement at all, from several signals
   (``features``) through a small logistic model fitted on the dev set (``abstention.json``,
   refitted by ``scripts/evaluate.py --fit``), and abstains below its threshold
   (``out_of_scope``). Abstaining still returns the nearest items as hits, so an answer can
   offer them as topics;
4. otherwise decides whether the agreement answers it or does not say (``not_stated``): when the
   question asks for a value the best item lacks (``bot.search.aspects``), or when the evidence
   that it is about a gap of the coverage map (``bot.search.gaps``) outweighs the evidence for
   an item, through a second logistic model fitted on the dev set (``gaps.json``). A
   ``not_stated`` retrieval names the category and the items to quote beneath its statement.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.search import textproc
from bot.search.abstention import GAPS_FILE, RANKING_FILE, Abstention, off_topic_features
from bot.search.aspects import missing_aspect
from bot.search.fusion import (
    BREACH_INTENT,
    DEFINITION_INTENT,
    FUSION,
    PROCEDURE_INTENT,
    Fusion,
    fuse_rrf,
    fuse_weighted,
)
from bot.search.gaps import (
    GapVocabulary,
    classifier_features,
    gap_neighbours,
    log_softmax,
    subject_matcher,
    unexplained,
    without_introduction,
)
from bot.search.index import (
    GAP_PREFIX,
    OFF_LABEL,
    IndexMismatchError,
    LoadedIndex,
    load_index,
    load_subjects,
)
from bot.search.parties import PARTIES, names_agreement, question_party
from bot.search.references import Reference, parse_reference
from bot.settings import Settings
from bot.types import Hit, Retrieval

if TYPE_CHECKING:
    import numpy as np

    from bot.knowledge.loader import Knowledge
    from bot.model.loading import Encoder


__all__ = ["RECHECK", "IndexMismatchError", "Recheck", "Retriever", "Scored"]


@dataclass(frozen=True)
class Recheck:
    """How near a decision must be to its turning point for a question embedded by the int8
    model to be embedded again by the fp32 export (``Retriever.score_many``)."""

    fused_margin: float  # the first item's fused score over the second's
    in_scope: float  # the out-of-scope model's confidence from its threshold
    gap: float  # the not-stated model's confidence from its threshold


#: Chosen on the dev split alone (``scripts/measure_recheck.py``): cheap margins that leave the
#: int8 model's answer different from the fp32 one on 4 of 1,055 dev questions while 18 % are
#: embedded twice (measured 2026-12-02, after the refit on three dev writers; with the earlier
#: 0.03 / 0.02, 7 were left).
RECHECK = Recheck(fused_margin=0.005, in_scope=0.05, gap=0.03)


@dataclass(frozen=True)
class Scored:
    """Everything computed for one question: per-item scores and the abstention features."""

    question: str
    dense: np.ndarray
    lexical: np.ndarray
    fused: np.ndarray
    features: dict[str, float] = field(default_factory=dict)
    reference: Reference | None = None
    category: str = ""  # the most likely gap category (the classifier's)
    aspect: str = ""  # the value the question asks for that the best item lacks


class Retriever:
    """Loads once, answers many: see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        knowledge: Knowledge,
        index: LoadedIndex,
        model: Encoder,
        abstention: Abstention | None = None,
        fusion: Fusion = FUSION,
        gaps: Abstention | None = None,
        ranking: Abstention | None = None,
    ) -> None:
        import numpy as np

        self.settings = settings
        self.knowledge = knowledge
        self.index = index
        self.model = model
        self.abstention = abstention if abstention is not None else Abstention.load()
        self.gaps = gaps if gaps is not None else Abstention.load(GAPS_FILE)
        self.ranking = ranking if ranking is not None else Abstention.load(RANKING_FILE)
        self.fusion = fusion
        # Stored as rows; transposed once here, as C-ordered copies (a product with a
        # transposed view took several times as long).
        self._off_topics_t = np.ascontiguousarray(index.off_topics.T)
        self._coverage_t = np.ascontiguousarray(index.coverage.T)
        fields = np.array([row.field for row in index.rows])
        self._row_ok = np.isin(fields, fusion.fields)
        self._row_question = fields == "question"
        procedures = {to for item in knowledge.items for to in item.linked("procedure")}
        kinds = [knowledge.by_id[i].kind if i in knowledge.by_id else "" for i in index.item_ids]
        self._intents = (
            (PROCEDURE_INTENT, np.array([i in procedures for i in index.item_ids], dtype=bool)),
            (DEFINITION_INTENT, np.array([k == "term" for k in kinds], dtype=bool)),
            (BREACH_INTENT, np.array([k == "breach" for k in kinds], dtype=bool)),
        )
        self._clause = np.array([k == "clause" for k in kinds], dtype=bool)
        # -1 per item that concerns only the other party, for a question about each party: a
        # question about 甲方's breach is not answered by 乙方's obligations (matching items are
        # not raised: procedures that concern both parties must not fall behind them).
        item_parties = [
            set(knowledge.by_id[i].parties) if i in knowledge.by_id else set()
            for i in index.item_ids
        ]
        self._party_sign = {
            party: np.array(
                [
                    fusion.party_match * (p == {party}) - float(p == set(PARTIES) - {party})
                    for p in item_parties
                ],
                dtype=np.float64,
            )
            for party in PARTIES
        }
        self._position = {item_id: j for j, item_id in enumerate(index.item_ids)}
        self._vocab_words = {t for doc in index.lexical.docs for t in doc if not t.startswith("~")}
        self._vocab_grams = {t for doc in index.lexical.docs for t in doc if t.startswith("~")}
        # The coverage map: the classifier's gap and off-topic classes, the gap vocabulary, and
        # each item's own words (its wording, titles, aliases: not its alternate questions).
        classes = index.classes
        self._gap_class = np.array([c.startswith(GAP_PREFIX) for c in classes], dtype=bool)
        self._off_class = np.array([c == OFF_LABEL for c in classes], dtype=bool)
        self.subjects = subject_matcher(load_subjects())
        self.gap_vocabulary = GapVocabulary.build(
            knowledge.items, knowledge.coverage, textproc.tokens
        )
        self._item_words = [
            frozenset(
                textproc.tokens(
                    " ".join((item.text, item.text_en, item.title, item.title_en, *item.aliases))
                )
            )
            if (item := knowledge.get(item_id)) is not None
            else frozenset()
            for item_id in index.item_ids
        ]
        # English misspellings are corrected against the knowledge's own words before both the
        # dense and the lexical scoring ("liquidaded damges" -> "liquidated damages").
        self.speller = textproc.Speller.from_texts(
            text
            for item in knowledge.items
            for text in (
                item.title_en,
                item.section_en,
                item.text_en,
                *item.questions,
                *item.aliases,
            )
        )

    @classmethod
    def load(
        cls,
        settings: Settings,
        *,
        knowledge: Knowledge | None = None,
        model: Encoder | None = None,
    ) -> Retriever:
        """Knowledge, model and index, verified against each other; ``IndexMismatchError``
        (with the command that fixes it) when the index does not match. The model is the
        encoder of ``BOT_EMBEDDING_BACKEND`` unless one is given."""
        from bot.knowledge.loader import load_knowledge
        from bot.model.loading import load_encoder

        if knowledge is None:
            knowledge = load_knowledge(settings.knowledge_dir, overrides=settings.parameters)
        index = load_index(settings, knowledge, settings.embedding_model)
        if model is None:
            model = load_encoder(settings)
        get_dimension = getattr(model, "get_embedding_dimension", None) or getattr(
            model, "get_sentence_embedding_dimension", None
        )
        dimension = get_dimension() if get_dimension is not None else None
        if dimension is not None and dimension != index.dimension:
            raise IndexMismatchError(
                f"the index has {index.dimension}-dimensional vectors but the model makes "
                f"{dimension}: run `make index` (or `contract-bot index build`)."
            )
        return cls(settings, knowledge, index, model)

    # -- encoding and scoring ------------------------------------------------------------------

    def encode(self, questions: Sequence[str], model: Encoder | None = None) -> np.ndarray:
        """Query vectors (normalized float32) for ``questions``, by the retriever's model unless
        another is given."""
        import numpy as np

        texts = [
            textproc.normalize(q) if self.fusion.normalize_dense else q.strip() or " "
            for q in questions
        ]
        vectors = (model or self.model).encode_query(
            texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    def score_many(self, questions: Sequence[str]) -> list[Scored]:
        """Scores and features for each question (no reference resolution, no abstention).

        With an encoder that has an ``exact`` twin (the int8 model checked against the fp32
        export, ``BOT_INT8_RECHECK``), the questions whose decision is close enough for the int8
        model's small error to change it (``RECHECK``) are embedded and scored again with the
        twin, so they get the answer the exact model gives.
        """
        questions = [q[: self.settings.max_question_chars] for q in questions]
        if not questions:
            return []
        corrected = [self.speller.correct(textproc.from_cantonese(q)) for q in questions]
        scored = self._score(questions, corrected, self.encode(corrected))
        exact = getattr(self.model, "exact", None)
        if exact is not None:
            close = [i for i, s in enumerate(scored) if self._close(s)]
            if close:
                again = self._score(
                    [questions[i] for i in close],
                    [corrected[i] for i in close],
                    self.encode([corrected[i] for i in close], exact),
                )
                for i, s in zip(close, again, strict=True):
                    scored[i] = s
        return scored

    def distances(self, scored: Scored) -> tuple[float, float, float]:
        """How far each decision is from turning: the first item's fused score over the
        second's, and the out-of-scope and not-stated models' confidences from their
        thresholds (what ``RECHECK`` bounds)."""
        f = scored.features
        in_scope = self.abstention.confidence([f[n] for n in self.abstention.features])
        gap = self.gaps.confidence([f[n] for n in self.gaps.features])
        return (
            f["fused_margin"],
            abs(in_scope - self.abstention.threshold),
            abs(gap - self.gaps.threshold),
        )

    def _close(self, scored: Scored) -> bool:
        """The int8 model's error could change this question's answer: the first item, the
        out-of-scope or the not-stated decision is within ``RECHECK`` of changing."""
        margin, in_scope, gap = self.distances(scored)
        return margin < RECHECK.fused_margin or in_scope < RECHECK.in_scope or gap < RECHECK.gap

    def _score(
        self, questions: Sequence[str], corrected: Sequence[str], vectors: np.ndarray
    ) -> list[Scored]:
        import numpy as np

        n_rows = self.index.faiss.ntotal
        n_items = len(self.index.item_ids)
        depth = min(n_rows, max(256, 32 * 8))
        if n_rows <= 4096:
            depth = n_rows
        sims, rows = self.index.faiss.search(vectors, depth)
        off_sims = vectors @ self._off_topics_t
        gap_sims = vectors @ self._coverage_t
        log_p = log_softmax(
            np.hstack([vectors, np.ones((len(vectors), 1), dtype=np.float32)])
            @ self.index.classifier
        )
        out = []
        for qi, question in enumerate(questions):
            valid = rows[qi] >= 0
            r, s = rows[qi][valid], sims[qi][valid]
            keep = self._row_ok[r]
            floor = float(s.min()) - 1e-3 if len(s) else 0.0
            dense = np.full(n_items, floor, dtype=np.float32)
            np.maximum.at(dense, self.index.row_item[r[keep]], s[keep])
            qmask = self._row_question[r]
            question_top = float(s[qmask].max()) if qmask.any() else floor
            normalized = textproc.normalize(corrected[qi])
            tokens = textproc.tokens(normalized, normalized=True)
            lexical = self.index.lexical.scores(tokens)
            fused = self._fuse(dense, lexical, normalized)
            features = self._features(dense, lexical, question_top, tokens)
            features.update(off_topic_features(off_sims[qi], s, features["dense_top"]))
            classified, best_gap = classifier_features(log_p[qi], self._gap_class, self._off_class)
            features.update(classified)
            features.update(gap_neighbours(gap_sims[qi], question_top))
            features["gap_words"] = self.gap_vocabulary.score(tokens)
            features["foreign_subject"] = float(min(2, len(self.subjects.findall(normalized))))
            features["names_agreement"] = float(names_agreement(normalized))
            top = int(np.argmax(fused))
            runner_up = float(np.partition(fused, -2)[-2]) if len(fused) > 1 else float(fused[top])
            features["fused_margin"] = float(fused[top]) - runner_up
            # Who asks ("我是甲方的产品经理，…") is no word the answer should have.
            asked = without_introduction(normalized)
            own = tokens if asked == normalized else textproc.tokens(asked, normalized=True)
            words = [t for t in own if not t.startswith("~") and not t.replace(".", "").isdigit()]
            features["unexplained"] = unexplained(
                words,
                [textproc.general_idf(w) for w in words],
                functools.partial(_in_vocabulary, vocabulary=self._item_words[top]),
            )
            item = self.knowledge.get(self.index.item_ids[top])
            aspect = missing_aspect(normalized, item, self.knowledge.parameters) if item else None
            category = self.index.classes[best_gap][len(GAP_PREFIX) :] if best_gap >= 0 else ""
            out.append(
                Scored(
                    question,
                    dense,
                    lexical,
                    fused,
                    features,
                    category=category,
                    aspect=aspect or "",
                )
            )
        return out

    def _fuse(self, dense: np.ndarray, lexical: np.ndarray, normalized: str) -> np.ndarray:
        fusion = self.fusion
        if fusion.method == "rrf":
            fused = fuse_rrf(dense, lexical, fusion.rrf_k)
            share = 1.0 / (fusion.rrf_k + 1)
        else:
            fused = fuse_weighted(dense, lexical, fusion.weight)
            share = 0.05
        matched = False
        for pattern, mask in self._intents:
            if pattern.search(normalized):
                fused = fused + fusion.intent_bonus * share * mask
                matched = True
        if not matched and fusion.clause_prior:
            fused = fused + fusion.clause_prior * share * self._clause
        if fusion.party_bonus:
            party = question_party(normalized)
            if party is not None:
                fused = fused + fusion.party_bonus * share * self._party_sign[party]
        return fused

    def _features(
        self, dense: np.ndarray, lexical: np.ndarray, question_top: float, tokens: list[str]
    ) -> dict[str, float]:
        import numpy as np

        order = np.argsort(-dense, kind="stable")
        top = float(dense[order[0]])
        second = float(dense[order[1]]) if len(order) > 1 else top - 0.1
        # Numbers ("2", "3.2") say nothing about the topic: "what's 2+2" is not about clause 2.
        words = [t for t in tokens if not t.startswith("~") and not t.replace(".", "").isdigit()]
        grams = [t for t in tokens if t.startswith("~")]
        weights = [textproc.general_idf(w) for w in words]
        known = [self._known(w) for w in words]
        found = sum(wt for k, wt in zip(known, weights, strict=True) if k)
        coverage = found / sum(weights) if words else 0.0
        # The rarest word the agreement never uses: a question about 房东, 劳动合同 or a
        # mortgage reuses the agreement's other words, but its subject is foreign to it.
        foreign = [wt for k, wt in zip(known, weights, strict=True) if not k]
        foreign_max = max(foreign, default=0.0)
        bigram_cov = sum(g in self._vocab_grams for g in grams) / len(grams) if grams else 0.0
        if not grams:
            bigram_cov = coverage  # English: words are all there is
        return {
            "dense_top": top,
            "dense_margin": top - second,
            "dense_gap": top - float(dense.mean()),
            "question_top": question_top,
            "coverage": coverage,
            "bigram_coverage": bigram_cov,
            "lexical_top": math.log1p(float(lexical.max()) if len(lexical) else 0.0),
            "foreign_max": foreign_max,
            "foreign_sum": math.log1p(sum(foreign)),
        }

    def _known(self, word: str) -> bool:
        """``word`` occurs in the knowledge: as a word, or (Chinese, where segmentation differs
        between a question and the agreement) as a chain of the knowledge's character bigrams."""
        if word in self._vocab_words:
            return True
        if len(word) >= 2 and textproc.has_cjk(word):
            return all("~" + g in self._vocab_grams for g in textproc.cjk_bigrams(word))
        return False

    # -- search --------------------------------------------------------------------------------

    def search(self, question: str, k: int = 5) -> Retrieval:
        """Ranked hits, a confidence 0..1 and whether to abstain, for one question."""
        return self.search_many([question], k)[0]

    def search_many(self, questions: Sequence[str], k: int = 5) -> list[Retrieval]:
        """``search`` for several questions, embedding them in one batch."""
        results: list[Retrieval | None] = [None] * len(questions)
        pending: list[int] = []
        for i, question in enumerate(questions):
            reference = parse_reference(question, self.knowledge)
            if reference is not None and reference.ids:
                hits = tuple(
                    Hit(item_id=item_id, score=1.0, via="reference") for item_id in reference.ids
                )
                results[i] = Retrieval(query=question, hits=hits, confidence=1.0, abstain=False)
            elif not re.search(r"\w", textproc.normalize(question)):  # nothing to search for
                results[i] = Retrieval(query=question, hits=(), confidence=0.0, abstain=True)
            else:
                pending.append(i)
        for i, scored in zip(
            pending, self.score_many([questions[i] for i in pending]), strict=True
        ):
            results[i] = self._retrieval(scored, k)
        return [r for r in results if r is not None]

    def _retrieval(self, scored: Scored, k: int) -> Retrieval:
        import numpy as np

        order = np.argsort(-scored.fused, kind="stable")[:k]
        hits = tuple(
            Hit(
                item_id=self.index.item_ids[j],
                score=round(float(scored.fused[j]), 6),
                dense=round(float(scored.dense[j]), 6),
                lexical=round(float(scored.lexical[j]), 6),
                via="search",
            )
            for j in order
        )
        values = [scored.features[name] for name in self.abstention.features]
        in_scope = self.abstention.confidence(values)
        if in_scope < self.abstention.threshold:
            return Retrieval(
                query=scored.question,
                hits=hits,
                confidence=round(in_scope, 4),
                abstain=True,
                coverage="out_of_scope",
            )
        gap = self.gaps.confidence([scored.features[name] for name in self.gaps.features])
        if gap < self.gaps.threshold and not scored.aspect:
            # The confidence that the answer is right: about the agreement, answered by it, and
            # the first hit the right item (the ranking model, calibrated on the dev split).
            right = self.ranking.confidence([scored.features[n] for n in self.ranking.features])
            return Retrieval(
                query=scored.question,
                hits=hits,
                confidence=round(in_scope * (1.0 - gap) * right, 4),
                abstain=False,
            )
        category = self.knowledge.coverage.get(scored.category)
        top = hits[0].item_id
        if gap < self.gaps.threshold and category is not None and top not in category.nearest:
            category = None  # only the aspect check says "not stated": say it of the best item
        if category is not None:
            nearest = sorted(
                category.nearest,
                key=lambda i: (
                    -float(scored.fused[self._position[i]]) if i in self._position else 0.0
                ),
            )
            if top not in nearest:  # the item retrieval finds nearest is quoted too
                nearest = [*nearest[:2], top]
        else:
            nearest = [top, *(h.item_id for h in hits[1:2])]
        return Retrieval(
            query=scored.question,
            hits=hits,
            # The aspect check is a rule: its verdict is as sure as the question's scope.
            confidence=round(in_scope * (gap if gap >= self.gaps.threshold else 1.0), 4),
            abstain=False,
            coverage="not_stated",
            category=category.id if category is not None else "",
            aspect=scored.aspect,
            nearest=tuple(nearest),
        )


def _in_vocabulary(word: str, vocabulary: frozenset[str]) -> bool:
    """``word`` is one of ``vocabulary``'s words, or (Chinese) a chain of its bigrams."""
    if word in vocabulary:
        return True
    if len(word) >= 2 and textproc.has_cjk(word):
        return all("~" + g in vocabulary for g in textproc.cjk_bigrams(word))
    return False
