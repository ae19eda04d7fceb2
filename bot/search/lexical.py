"""The lexical half of the index: one BM25 document per item, kept as plain token lists.

``lexical.json`` stores the tokens (``bot.search.textproc.tokens`` of ``lexical_document``), so it
stays a plain file; bm25s rebuilds its matrix on load. ``lexical_fingerprint`` hashes the code
that makes the tokens, so a changed tokenizer marks the index stale.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.search import textproc

if TYPE_CHECKING:
    import numpy as np

    from bot.types import Item

#: Bump when the lexical index format changes. Changes to the tokenizer are caught anyway:
#: the manifest records ``lexical_fingerprint()``, a hash of the code that makes the tokens.
LEXICAL_VERSION = 1


def lexical_document(item: Item) -> str:
    """The text BM25 indexes for ``item``: its wording, headings, aliases and questions."""
    parts = [item.section, item.title, item.title_en, item.text, item.text_en]
    parts += list(item.aliases) + list(item.questions)
    return "\n".join(p for p in parts if p)


def lexical_fingerprint() -> str:
    """sha256 of the source of ``bot.search.textproc`` and this module: a changed tokenizer or
    lexical document makes the lexical index stale (rebuilding it re-embeds nothing)."""
    digest = hashlib.sha256(str(LEXICAL_VERSION).encode())
    for path in (Path(textproc.__file__), Path(__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


@dataclass
class BM25:
    """Okapi BM25 over pre-tokenized documents, one per item; scores all items at once.

    Scoring is bm25s's (Lucene variant); the documents' tokens are what the index stores, so
    the lexical index stays a plain JSON file and bm25s rebuilds its matrix on load (about a
    second at 10,000 items).
    """

    item_ids: tuple[str, ...]
    docs: list[list[str]]
    k1: float = 1.2
    b: float = 0.75
    _bm25: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import bm25s

        # bm25s pins its logger at DEBUG when imported; let it follow the application's level.
        logging.getLogger("bm25s").setLevel(logging.NOTSET)
        self._bm25 = bm25s.BM25(method="lucene", k1=self.k1, b=self.b)
        # bm25s cannot index an empty corpus or empty documents; a placeholder token no query
        # can produce keeps row numbers aligned with items.
        self._bm25.index([doc or ["\x00"] for doc in self.docs] or [["\x00"]], show_progress=False)

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        import numpy as np

        vocab = self._bm25.vocab_dict
        known = [t for t in dict.fromkeys(query_tokens) if t in vocab]
        if not known or not self.docs:
            return np.zeros(len(self.docs), dtype=np.float32)
        # bm25s's Lucene variant leaves out Okapi's constant (k1 + 1) factor; keep it, so that
        # scores (and the fusion weight tuned on them) are the textbook BM25 values.
        scores = self._bm25.get_scores(known) * (self.k1 + 1)
        return np.asarray(scores, dtype=np.float32)

    def known(self, token: str) -> bool:
        return token in self._bm25.vocab_dict and token != "\x00"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": LEXICAL_VERSION,
            "k1": self.k1,
            "b": self.b,
            "items": list(self.item_ids),
            "docs": self.docs,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BM25:
        return cls(tuple(data["items"]), [list(d) for d in data["docs"]], data["k1"], data["b"])

    @classmethod
    def build(cls, items: Sequence[Item]) -> BM25:
        return cls(
            tuple(i.id for i in items), [textproc.tokens(lexical_document(i)) for i in items]
        )
