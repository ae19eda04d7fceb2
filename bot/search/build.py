"""Set-up: build the index for the knowledge and model, incrementally, and swap it in atomically.

A build writes a complete folder ``index/.index.<time>-<id>/`` beside the current one, then
replaces the symlink ``index/current`` with ``os.replace`` (one atomic rename), so a reader sees
the old index or the new one, never a mix, and a failed build leaves the previous one serving.
Texts already embedded under the same model are reused by content key (``bot.search.index``).
The previous build is kept until the next one; older ones and leftovers of crashed builds are
deleted. A running bot never imports this module (``/reload`` only loads).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import secrets
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.search.index import (
    BUILD_PREFIX,
    CLASSIFIER_FIELDS,
    CURRENT,
    FILES,
    FORMAT_VERSION,
    GAP_PREFIX,
    LOCK_NAME,
    OFF_LABEL,
    IndexBuildError,
    Row,
    content_key,
    current_dir,
    load_off_topics,
    model_fingerprint,
    off_topics_hash,
    sha256_file,
)
from bot.search.lexical import BM25, LEXICAL_VERSION, lexical_fingerprint
from bot.settings import Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from bot.knowledge.loader import Knowledge
    from bot.types import Item

#: Below this many texts to embed, no progress bar (it would flash by).
PROGRESS_MIN = 32
BATCH = 32
#: The classifier over query vectors (see ``train_classifier``): inverse L2 strength and the
#: L-BFGS iteration cap, chosen on the dev split (scripts/evaluate.py); bump the version when
#: the training changes so that no older classifier is reused.
CLASSIFIER_C = 300.0
CLASSIFIER_ITERATIONS = 300
CLASSIFIER_VERSION = "classifier-v1"


def item_texts(item: Item) -> list[tuple[str, str, str]]:
    """(field, prompt kind, text) for every text of ``item`` that gets a vector."""
    out = [("text", "document", item.text), ("text_en", "document", item.text_en)]
    out += [("title", "query", item.title), ("title_en", "query", item.title_en)]
    out += [("question", "query", q) for q in item.questions]
    return [(f, p, t.strip()) for f, p, t in out if t.strip()]


@dataclass(frozen=True)
class BuildReport:
    """What a build did; ``summary()`` is what the command line prints."""

    path: Path
    items: int
    vectors: int
    embedded: int
    reused: int
    changed_items: tuple[str, ...]
    seconds: float
    model: str
    off_topics: int = 0
    off_topics_embedded: int = 0
    coverage: int = 0
    coverage_embedded: int = 0
    classifier_trained: bool = False

    def summary(self) -> str:
        if self.embedded == 0:
            what = f"re-embedded nothing, reused all {self.reused} vectors"
        else:
            ids = ", ".join(self.changed_items[:8]) + (
                f", … ({len(self.changed_items)} items)" if len(self.changed_items) > 8 else ""
            )
            n = len(self.changed_items)
            what = (
                f"re-embedded {self.embedded} text{'s' if self.embedded != 1 else ''} "
                f"of {n} item{'s' if n != 1 else ''} ({ids}), reused {self.reused}"
            )
        if self.off_topics_embedded:
            what += f"; embedded {self.off_topics_embedded} of {self.off_topics} off-topic texts"
        if self.coverage_embedded:
            what += (
                f"; embedded {self.coverage_embedded} of {self.coverage} coverage example questions"
            )
        if self.classifier_trained:
            what += "; trained the classifier"
        return (
            f"index built in {self.seconds:.1f} s: {self.items} items, {self.vectors} vectors "
            f"({self.model}); {what}. -> {self.path}"
        )


@contextlib.contextmanager
def _lock(index_dir: Path) -> Iterator[None]:
    """One build at a time per index folder (a second waits, then builds on the first's)."""
    with (index_dir / LOCK_NAME).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def library_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    names = ("torch", "sentence-transformers", "transformers", "faiss-cpu", "numpy", "jieba")
    for name in (*names, "onnxruntime"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    with contextlib.suppress(metadata.PackageNotFoundError):
        out["opencc"] = metadata.version("opencc")
    return out


def _previous_vectors(index_dir: Path, fingerprint: str) -> dict[str, Any]:
    """content key -> vector of the current build, when it was made with the same model."""
    import numpy as np

    current = current_dir(index_dir)
    if current is None:
        return {}
    try:
        manifest = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("model", {}).get("fingerprint") != fingerprint:
            return {}
        listing = json.loads((current / "vectors.json").read_text(encoding="utf-8"))
        rows = listing["rows"]
        vectors = np.load(current / "embeddings.npy", allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # unreadable or corrupt: simply embed again
    if len(rows) != len(vectors):
        return {}
    out = {row[2]: vectors[i] for i, row in enumerate(rows)}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        off_keys = listing.get("off_topics", [])
        off_vectors = np.load(current / "off_topics.npy", allow_pickle=False)
        if len(off_keys) == len(off_vectors):
            out |= {key: off_vectors[i] for i, key in enumerate(off_keys)}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, IndexError):
        coverage_keys = [row[1] for row in listing.get("coverage", [])]
        coverage_vectors = np.load(current / "coverage.npy", allow_pickle=False)
        if len(coverage_keys) == len(coverage_vectors):
            out |= {key: coverage_vectors[i] for i, key in enumerate(coverage_keys)}
    return out


def train_classifier(vectors: Any, labels: Sequence[str]) -> tuple[Any, tuple[str, ...]]:
    """A multinomial logistic regression over query vectors: which item, which gap category of
    the coverage map, or off-topic, a question is about.

    Trained on the knowledge's own texts only (items' titles and alternate questions, coverage
    examples, off-topic texts), never on evaluation questions. Returns the weights
    (dimension + 1 rows, the last the bias; one column per class) and the classes (sorted).
    Retrieval turns its probabilities into the ``gap_logit`` / ``off_logit`` signals: cosine
    neighbours alone barely tell "what does 1.3 say" from "can 乙方 subcontract", a classifier
    fitted on all the texts of each class does much better (scripts/evaluate.py).
    """
    import numpy as np
    from scipy.optimize import minimize

    classes = tuple(sorted(set(labels)))
    index = {c: i for i, c in enumerate(classes)}
    x = np.hstack([np.asarray(vectors, dtype=np.float64), np.ones((len(labels), 1))])
    target = np.zeros((len(labels), len(classes)))
    target[np.arange(len(labels)), [index[label] for label in labels]] = 1.0
    shrink = np.ones((x.shape[1], 1))
    shrink[-1] = 0.0  # the bias is not shrunk

    def loss(flat: Any) -> tuple[float, Any]:
        w = flat.reshape(x.shape[1], len(classes))
        z = x @ w
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        value = -(target * log_p).sum() + 0.5 / CLASSIFIER_C * (shrink * w * w).sum()
        grad = x.T @ (np.exp(log_p) - target) + shrink * w / CLASSIFIER_C
        return float(value), grad.ravel()

    start = np.zeros(x.shape[1] * len(classes))
    result = minimize(
        loss, start, jac=True, method="L-BFGS-B", options={"maxiter": CLASSIFIER_ITERATIONS}
    )
    return result.x.reshape(x.shape[1], len(classes)).astype(np.float32), classes


def _classifier_key(training: Sequence[tuple[str, str]]) -> str:
    payload = [CLASSIFIER_VERSION, CLASSIFIER_C, CLASSIFIER_ITERATIONS, [list(t) for t in training]]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:32]


def _previous_classifier(index_dir: Path, key: str) -> tuple[Any, tuple[str, ...]] | None:
    """The current build's classifier when it was trained on exactly the same vectors."""
    import numpy as np

    current = current_dir(index_dir)
    if current is None:
        return None
    try:
        manifest = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("classifier", {}).get("key") != key:
            return None
        classes = json.loads((current / "vectors.json").read_text(encoding="utf-8"))["classes"]
        weights = np.load(current / "classifier.npy", allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if weights.ndim != 2 or weights.shape[1] != len(classes):
        return None
    return weights, tuple(classes)


def _embed(
    model: SentenceTransformer, texts: Sequence[tuple[str, str]], progress: bool
) -> list[Any]:
    """Embed (prompt kind, text) pairs, queries and passages each in batches."""
    from tqdm import tqdm

    out: list[Any] = [None] * len(texts)
    bar = tqdm(
        total=len(texts),
        desc="embedding",
        unit="text",
        disable=not progress or len(texts) < PROGRESS_MIN,
        file=sys.stderr,
    )
    with bar:
        for kind in ("query", "document"):
            positions = [i for i, (k, _) in enumerate(texts) if k == kind]
            for start in range(0, len(positions), BATCH * 4):
                chunk = positions[start : start + BATCH * 4]
                batch = [texts[i][1] for i in chunk]
                encode = model.encode_query if kind == "query" else model.encode_document
                vectors = encode(
                    batch, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False
                )
                for i, vector in zip(chunk, vectors, strict=True):
                    out[i] = vector
                bar.update(len(chunk))
    return out


def build_index(
    settings: Settings,
    *,
    force: bool = False,
    progress: bool = True,
    knowledge: Knowledge | None = None,
    model: SentenceTransformer | None = None,
) -> BuildReport:
    """Build the index for the knowledge and model in ``settings`` and swap it in atomically.

    Texts whose content key is in the current index are reused unless ``force``. Raises
    ``IndexBuildError`` (invalid knowledge, missing model, disk errors); the previous index
    is then left exactly as it was.
    """
    from bot.knowledge.loader import KnowledgeError, load_knowledge

    started = time.perf_counter()
    index_dir = settings.index_dir
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexBuildError(f"cannot create the index folder {index_dir}: {exc}") from exc
    with _lock(index_dir):
        if knowledge is None:
            try:
                knowledge = load_knowledge(settings.knowledge_dir, overrides=settings.parameters)
            except KnowledgeError as exc:
                raise IndexBuildError(
                    f"knowledge in {settings.knowledge_dir} is invalid:\n{exc}"
                ) from exc
        model_path = settings.model_path()
        fingerprint = model_fingerprint(model_path)
        previous = {} if force else _previous_vectors(index_dir, fingerprint)

        try:
            off_topics = load_off_topics()
        except ValueError as exc:
            raise IndexBuildError(str(exc)) from exc

        rows: list[Row] = []
        wanted: dict[str, tuple[str, str]] = {}  # key -> (prompt kind, text), first occurrence
        for item in knowledge.items:
            for field_name, prompt, text in item_texts(item):
                key = content_key(fingerprint, prompt, text)
                rows.append(Row(item.id, field_name, key))
                wanted.setdefault(key, (prompt, text))
        off_keys = [content_key(fingerprint, "query", text) for text in off_topics]
        for key, text in zip(off_keys, off_topics, strict=True):
            wanted.setdefault(key, ("query", text))
        # The coverage map's example questions: what the agreement does not say.
        coverage = knowledge.coverage.examples()
        coverage_keys = [content_key(fingerprint, "query", text) for _, text in coverage]
        for key, (_, text) in zip(coverage_keys, coverage, strict=True):
            wanted.setdefault(key, ("query", text))
        todo = [key for key in wanted if key not in previous]
        todo_set = set(todo)
        changed = tuple(dict.fromkeys(r.item_id for r in rows if r.key in todo_set))
        fresh: dict[str, Any] = {}
        if todo:
            if model is None:
                from bot.model.cache import ModelFetchError
                from bot.model.loading import load_model

                if not progress:  # --quiet: no "Loading weights" bar from transformers either
                    with contextlib.suppress(ImportError):
                        from transformers.utils import logging as hf_logging

                        hf_logging.disable_progress_bar()

                try:
                    model = load_model(settings)
                except ModelFetchError as exc:
                    raise IndexBuildError(str(exc)) from exc
            vectors = _embed(model, [wanted[k] for k in todo], progress)
            fresh = dict(zip(todo, vectors, strict=True))
        vectors_by_key = previous | fresh
        training = [(r.item_id, r.key) for r in rows if r.field in CLASSIFIER_FIELDS]
        training += [
            (GAP_PREFIX + c, key) for (c, _), key in zip(coverage, coverage_keys, strict=True)
        ]
        training += [(OFF_LABEL, key) for key in off_keys]
        classifier_key = _classifier_key(training)
        classifier = None if force else _previous_classifier(index_dir, classifier_key)
        trained = classifier is None
        if classifier is None:
            import numpy as np

            classifier = train_classifier(
                np.stack([vectors_by_key[key] for _, key in training]), [c for c, _ in training]
            )
        try:
            target = _write_build(
                index_dir,
                settings,
                knowledge,
                rows,
                (off_topics, off_keys),
                [
                    (category, key)
                    for (category, _), key in zip(coverage, coverage_keys, strict=True)
                ],
                vectors_by_key,
                (classifier[0], classifier[1], classifier_key),
                fingerprint,
                started,
            )
        except OSError as exc:
            raise IndexBuildError(f"cannot write the index into {index_dir}: {exc}") from exc
        reused = sum(1 for r in rows if r.key not in fresh)
        embedded_rows = len(rows) - reused
        return BuildReport(
            path=target,
            items=len(knowledge.items),
            vectors=len(rows),
            embedded=embedded_rows,
            reused=reused,
            changed_items=changed,
            seconds=time.perf_counter() - started,
            model=settings.embedding_model,
            off_topics=len(off_keys),
            off_topics_embedded=sum(1 for key in off_keys if key in fresh),
            coverage=len(coverage_keys),
            coverage_embedded=sum(1 for key in coverage_keys if key in fresh),
            classifier_trained=trained,
        )


def _write_build(
    index_dir: Path,
    settings: Settings,
    knowledge: Knowledge,
    rows: list[Row],
    off_topics: tuple[Sequence[str], Sequence[str]],
    coverage: Sequence[tuple[str, str]],
    vectors_by_key: Mapping[str, Any],
    classifier: tuple[Any, Sequence[str], str],
    fingerprint: str,
    started: float,
) -> Path:
    """Write a complete build into a temporary folder, then swap ``current`` to it."""
    import faiss
    import numpy as np

    from bot.knowledge.loader import item_hash

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    tmp = index_dir / f"{BUILD_PREFIX}tmp-{os.getpid()}-{secrets.token_hex(3)}"
    final = index_dir / f"{BUILD_PREFIX}{stamp}-{secrets.token_hex(3)}"
    try:
        tmp.mkdir()
        matrix = np.stack([vectors_by_key[r.key] for r in rows]).astype(np.float32)
        dimension = int(matrix.shape[1])
        faiss_index = faiss.IndexFlatIP(dimension)
        faiss_index.add(matrix)
        faiss.write_index(faiss_index, str(tmp / "vectors.faiss"))
        np.save(tmp / "embeddings.npy", matrix, allow_pickle=False)
        off_texts, off_keys = off_topics
        off_matrix = np.stack([vectors_by_key[key] for key in off_keys]).astype(np.float32)
        np.save(tmp / "off_topics.npy", off_matrix, allow_pickle=False)
        coverage_matrix = np.zeros((len(coverage), dimension), dtype=np.float32)
        for i, (_, key) in enumerate(coverage):
            coverage_matrix[i] = vectors_by_key[key]
        np.save(tmp / "coverage.npy", coverage_matrix, allow_pickle=False)
        weights, classes, classifier_key = classifier
        np.save(tmp / "classifier.npy", np.asarray(weights, dtype=np.float32), allow_pickle=False)
        _write_json(
            tmp / "vectors.json",
            {
                "rows": [[r.item_id, r.field, r.key] for r in rows],
                "off_topics": list(off_keys),
                "coverage": [list(pair) for pair in coverage],
                "classes": list(classes),
            },
        )
        _write_json(tmp / "lexical.json", BM25.build(knowledge.items).to_json())
        fields = Counter(r.field for r in rows)
        manifest = {
            "format": FORMAT_VERSION,
            "lexical_version": LEXICAL_VERSION,
            "lexical_fingerprint": lexical_fingerprint(),
            "model": {
                "name": settings.embedding_model,
                "path": str(settings.model_path()),
                "fingerprint": fingerprint,
                "dimension": dimension,
                "onnx": _onnx_record(settings),
            },
            "knowledge": {
                "dir": str(settings.knowledge_dir),
                "content_hash": knowledge.content_hash(),
                "items": {item.id: item_hash(item) for item in knowledge.items},
            },
            "off_topics": {"hash": off_topics_hash(off_texts), "count": len(off_texts)},
            "coverage": {
                "hash": knowledge.coverage.examples_hash(),
                "count": len(coverage),
                "categories": len({category for category, _ in coverage}),
            },
            "classifier": {"key": classifier_key, "classes": len(classes)},
            "item_count": len(knowledge.items),
            "vector_count": len(rows),
            "fields": dict(sorted(fields.items())),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - started, 3),
            "versions": library_versions(),
            "files": {name: sha256_file(tmp / name) for name in FILES},
        }
        _write_json(tmp / "manifest.json", manifest)  # last: a build without it is incomplete
        tmp.rename(final)
        old = current_dir(index_dir)
        link_tmp = index_dir / f"{BUILD_PREFIX}link-{os.getpid()}-{secrets.token_hex(3)}"
        os.symlink(final.name, link_tmp)
        os.replace(link_tmp, index_dir / CURRENT)  # the atomic swap
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _prune(index_dir, keep={final.name} | ({old.name} if old is not None else set()))
    return final


def _onnx_record(settings: Settings) -> dict[str, str] | None:
    """The ONNX export of the model that serves this index's questions, if set-up made one."""
    from bot.model.cache import directory_fingerprint, onnx_dir, onnx_problem

    if onnx_problem(settings) is not None:
        return None
    directory = onnx_dir(settings)
    return {"path": str(directory), "fingerprint": directory_fingerprint(directory)}


def _write_json(path: Path, data: object) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())


def _prune(index_dir: Path, keep: set[str]) -> None:
    """Delete builds other than ``keep`` and leftovers of crashed builds (we hold the lock)."""
    for entry in index_dir.iterdir():
        if entry.name.startswith(BUILD_PREFIX) and entry.name != LOCK_NAME:
            if entry.name in keep:
                continue
            if entry.is_symlink() or entry.is_file():
                entry.unlink(missing_ok=True)
            elif entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
