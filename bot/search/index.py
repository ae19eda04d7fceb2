"""Check and load the retrieval index (``index/``); what its files are (``bot.search.build``
writes them).

Layout: every build is a folder of plain files, ``index/.index.<time>-<id>/``; the symlink
``index/current`` names the one in use and is swapped atomically by a build, so this module
reads either the old index or the new one, never a mix. ``index/README.md`` is committed and
never touched.

Files of one build:

- ``vectors.faiss``: ``IndexFlatIP`` over L2-normalized float32 vectors (inner product = cosine).
- ``vectors.json``: row -> (item id, field, content key). Fields: ``text`` and ``text_en``
  (passage prompt), ``title`` / ``title_en`` and every alternate ``question`` (query prompt).
- ``embeddings.npy``: the same vectors as a plain array: the cache an incremental build reuses.
  A row's content key is sha256(model fingerprint, prompt kind, text), so an unchanged text under
  an unchanged model is never embedded twice.
- ``lexical.json``: the BM25 index: one token list per item (``bot.search.textproc.tokens``).
- ``off_topics.npy``: query vectors of ``bot/search/off_topics.toml`` (topics and example
  questions the agreement does not cover), the reference points of the abstention signals in
  ``bot.search.retrieval``; cached by content key like the rest.
- ``coverage.npy``: query vectors of the example questions of the categories
  ``knowledge/coverage.toml`` says the agreement does not cover (or only partly); which category
  each row belongs to is in ``vectors.json``. The evidence for "the agreement does not say";
  cached by content key like the rest.
- ``classifier.npy``: a multinomial logistic regression over query vectors (which item, which
  gap category, or off-topic), trained at build time on the texts above and reused while they
  are unchanged; its classes are in ``vectors.json``.
- ``manifest.json``: format, model (name, path, fingerprint, dimension, and the fingerprint of
  the model's ONNX export when there was one at build time), knowledge (content hash,
  per-item hashes), off-topic hash and count, coverage-example hash and count, counts, build
  time, library versions and the sha256 of every other file.

Checking an index (``index_status``, ``load_index``) never imports torch, so
``scripts/build_index.py --if-stale`` answers in well under a second when nothing changed.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.model.cache import directory_fingerprint
from bot.search.lexical import BM25, lexical_fingerprint
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.knowledge.loader import Knowledge


#: 2: off_topics.npy added. 3: coverage.npy added.
FORMAT_VERSION = 3
CURRENT = "current"
BUILD_PREFIX = ".index."
LOCK_NAME = ".index.lock"
FILES = (
    "vectors.faiss",
    "vectors.json",
    "embeddings.npy",
    "lexical.json",
    "off_topics.npy",
    "coverage.npy",
    "classifier.npy",
)
#: The classifier (``classifier.npy``, trained by ``bot.search.build.train_classifier``) learns
#: which item a question is about from these fields of the items (query vectors), which gap
#: category from the coverage examples (labels ``GAP_PREFIX + category id``) and the
#: off-topic texts (label ``OFF_LABEL``).
CLASSIFIER_FIELDS = ("title", "title_en", "question")
GAP_PREFIX = "gap:"
OFF_LABEL = "off"
FIX = "run `make index` (or `contract-bot index build`)"
OFF_TOPICS_FILE = Path(__file__).with_name("off_topics.toml")


class IndexBuildError(Exception):
    """The index could not be built; the previous index (if any) is still in place."""


class IndexMismatchError(Exception):
    """The index on disk is missing, corrupt or does not match the model or the knowledge."""


@dataclass(frozen=True)
class Row:
    """One vector of the index: which item, which of its texts, and the content key."""

    item_id: str
    field: str
    key: str


def _read_off_topics(path: Path | None) -> tuple[Path, dict[str, Any]]:
    """``path`` (default ``bot/search/off_topics.toml``) and its parsed content."""
    path = path if path is not None else OFF_TOPICS_FILE
    try:
        with path.open("rb") as handle:
            return path, tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the off-topic list ({exc})") from exc


def load_off_topics(path: Path | None = None) -> tuple[str, ...]:
    """The texts of ``bot/search/off_topics.toml``: its ``topics`` then its ``examples`` (see its
    header); ``ValueError`` naming the file, list and entry when one is not a non-empty string."""
    path, data = _read_off_topics(path)
    out: list[str] = []
    for name in ("topics", "examples"):
        texts = data.get(name, [])
        if not isinstance(texts, list):
            raise ValueError(f'{path}: field "{name}" must be a list of non-empty strings')
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(
                    f'{path}: field "{name}", entry {i + 1}: expected a non-empty string, '
                    f"got {text!r}"
                )
            out.append(text.strip())
    if not out:
        raise ValueError(f'{path}: "topics" and "examples" are both empty')
    return tuple(out)


def load_subjects(path: Path | None = None) -> tuple[str, ...]:
    """The ``subjects`` of ``bot/search/off_topics.toml``: words naming another contract or
    business (not embedded; see the file's header). ``ValueError`` when the list is malformed."""
    path, data = _read_off_topics(path)
    words = data.get("subjects", [])
    if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
        raise ValueError(f'{path}: field "subjects" must be a list of non-empty strings')
    return tuple(w.strip().lower() for w in words)


def off_topics_hash(texts: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode()).hexdigest()[:32]


def content_key(fingerprint: str, prompt: str, text: str) -> str:
    data = json.dumps([fingerprint, prompt, text], ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:32]


def model_fingerprint(path: Path) -> str:
    """A cheap fingerprint of a sentence-transformers directory (no torch, no full weight read).

    Small files (configs, prompts, pooling) are hashed whole; large ones (weights, tokenizer)
    by name and size, plus the conversion record in ``.complete`` (which names the source file's
    sha256) minus its creation time. Raises ``IndexBuildError`` when the directory is missing.
    """
    if not path.is_dir():
        raise IndexBuildError(
            f"embedding model directory {path} is missing: run `make setup` "
            "(or `.venv/bin/python scripts/fetch_model.py`)"
        )
    return directory_fingerprint(path)


def current_dir(index_dir: Path) -> Path | None:
    """The build folder ``index/current`` points to, if any."""
    link = index_dir / CURRENT
    if not link.is_symlink() and not link.is_dir():
        return None
    target = link.resolve()
    return target if target.is_dir() else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Check and load


def read_manifest(index_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The current build folder and its manifest; ``IndexMismatchError`` when there is none."""
    current = current_dir(index_dir)
    if current is None:
        raise IndexMismatchError(f"no index has been built in {index_dir}: {FIX}.")
    try:
        manifest = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(
            f"the index manifest {current / 'manifest.json'} is unreadable ({exc}): {FIX}."
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"the index in {current} has an unknown format (built by another version): {FIX}."
        )
    return current, manifest


def check_files(current: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Problems with the build's files: missing, or different from what the manifest records."""
    problems = []
    recorded = manifest.get("files", {})
    for name in FILES:
        path = current / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif recorded.get(name) != sha256_file(path):
            problems.append(f"{name} is corrupt (its sha256 differs from the manifest's)")
    return problems


def check_match(
    manifest: Mapping[str, Any],
    settings: Settings,
    knowledge: Knowledge,
    fingerprint: str | None = None,
) -> list[str]:
    """Problems matching the manifest against the configured model and the knowledge."""
    problems = []
    built_model = manifest.get("model", {})
    if built_model.get("name") != settings.embedding_model:
        problems.append(
            f"it was built with the model {built_model.get('name')!r} but BOT_EMBEDDING_MODEL "
            f"is {settings.embedding_model!r}"
        )
    else:
        if fingerprint is None:
            try:
                fingerprint = model_fingerprint(settings.model_path())
            except IndexBuildError as exc:
                problems.append(str(exc))
        if fingerprint is not None and built_model.get("fingerprint") != fingerprint:
            problems.append(f"the model files in {settings.model_path()} changed since the build")
        elif settings.embedding_backend != "torch":
            problems += _onnx_problems(built_model, settings)
    if manifest.get("lexical_fingerprint") != lexical_fingerprint():
        problems.append(
            "its lexical index was made by another version of the tokenizer or BM25 code "
            "(bot/search/textproc.py, bot/search/lexical.py)"
        )
    try:
        if manifest.get("off_topics", {}).get("hash") != off_topics_hash(load_off_topics()):
            problems.append(f"the off-topic list {OFF_TOPICS_FILE} changed since the build")
    except ValueError as exc:
        problems.append(str(exc))
    if manifest.get("coverage", {}).get("hash") != knowledge.coverage.examples_hash():
        problems.append("the example questions of knowledge/coverage.toml changed since the build")
    built = manifest.get("knowledge", {})
    if built.get("content_hash") != knowledge.content_hash():
        problems.append(
            f"the knowledge changed since the build ({_knowledge_diff(built, knowledge)})"
        )
    return problems


def _onnx_problems(built_model: Mapping[str, Any], settings: Settings) -> list[str]:
    """With an ONNX backend, the index must record the export that serves its questions (its
    passages are sentence-transformers' vectors; the export is checked against those)."""
    from bot.model.cache import onnx_dir, onnx_problem

    if onnx_problem(settings) is not None:
        return []  # no usable export at all: loading the encoder says so, with the set-up fix
    recorded = (built_model.get("onnx") or {}).get("fingerprint")
    if recorded != directory_fingerprint(onnx_dir(settings)):
        return [
            f"it was built before the ONNX export of the model in {onnx_dir(settings)} "
            f"(BOT_EMBEDDING_BACKEND={settings.embedding_backend})"
        ]
    return []


def _knowledge_diff(built: Mapping[str, Any], knowledge: Knowledge) -> str:
    from bot.knowledge.loader import item_hash

    old: Mapping[str, str] = built.get("items", {})
    new = {item.id: item_hash(item) for item in knowledge.items}
    changed = [i for i in new if i in old and old[i] != new[i]]
    added = [i for i in new if i not in old]
    removed = [i for i in old if i not in new]
    parts = []
    for label, ids in (("changed", changed), ("added", added), ("removed", removed)):
        if ids:
            parts.append(f"{label}: {', '.join(ids[:6])}{' …' if len(ids) > 6 else ''}")
    return "; ".join(parts) or "parameters changed"


def index_status(settings: Settings) -> tuple[bool, str]:
    """(ok, message): whether the index is present, intact and matches model and knowledge."""
    from bot.knowledge.loader import KnowledgeError, load_knowledge

    try:
        current, manifest = read_manifest(settings.index_dir)
    except IndexMismatchError as exc:
        return False, str(exc)
    try:
        knowledge = load_knowledge(settings.knowledge_dir, overrides=settings.parameters)
    except KnowledgeError as exc:
        return False, f"the knowledge in {settings.knowledge_dir} is invalid:\n{exc}"
    problems = check_files(current, manifest) + check_match(manifest, settings, knowledge)
    if problems:
        return False, f"index in {current} is not usable: {'; '.join(problems)}. To fix: {FIX}."
    return True, (
        f"index OK: {manifest['item_count']} items, {manifest['vector_count']} vectors, "
        f"model {manifest['model']['name']}, built {manifest['built_at']} ({current})"
    )


@dataclass(frozen=True)
class LoadedIndex:
    """A verified index in memory."""

    path: Path
    manifest: Mapping[str, Any]
    faiss: Any
    rows: tuple[Row, ...]
    row_item: Any  # np.ndarray[int]: index into item_ids per row
    item_ids: tuple[str, ...]
    lexical: BM25
    off_topics: Any  # np.ndarray[float32], one query vector per text of bot/search/off_topics.toml
    coverage: Any = None  # np.ndarray[float32], one query vector per coverage example
    coverage_ids: tuple[str, ...] = ()  # the category of each row of ``coverage``
    classifier: Any = None  # np.ndarray[float32], (dimension + 1) x classes
    classes: tuple[str, ...] = ()  # item ids, GAP_PREFIX + category ids, OFF_LABEL

    @property
    def dimension(self) -> int:
        return int(self.manifest["model"]["dimension"])


def load_index(
    settings: Settings, knowledge: Knowledge, model_name: str | None = None
) -> LoadedIndex:
    """Load the current index after checking files, model and knowledge; else
    ``IndexMismatchError`` naming what is wrong and the command that fixes it."""
    import faiss
    import numpy as np
    from threadpoolctl import threadpool_limits

    # A flat search of a few hundred vectors takes microseconds on one thread; OpenMP's other
    # threads only wait for a core the model or the event loop needs (one question's answer
    # 15.2 -> 10.0 ms wall on a busy 2-core machine, measured 2026-12-02).
    faiss.omp_set_num_threads(1)
    # The same for numpy's BLAS (OpenBLAS): its threads turned the few small products of a
    # batch (questions against the off-topic and coverage vectors) into most of the scoring's
    # CPU, 2.1 ms a question in batches of 8 against 0.6 on one thread; a batch's questions
    # already run side by side in the model (measured 2026-12-02).
    threadpool_limits(1, user_api="blas")
    if model_name is not None and model_name != settings.embedding_model:
        settings = settings.model_copy(update={"embedding_model": model_name})
    current, manifest = read_manifest(settings.index_dir)
    problems = check_files(current, manifest) + check_match(manifest, settings, knowledge)
    if problems:
        raise IndexMismatchError(
            f"refusing the index in {current}: {'; '.join(problems)}. To fix: {FIX}."
        )
    try:
        faiss_index = faiss.read_index(str(current / "vectors.faiss"))
        listing = json.loads((current / "vectors.json").read_text(encoding="utf-8"))
        raw_rows = listing["rows"]
        lexical = BM25.from_json(json.loads((current / "lexical.json").read_text("utf-8")))
        off_topics = np.load(current / "off_topics.npy", allow_pickle=False)
        coverage = np.load(current / "coverage.npy", allow_pickle=False)
        coverage_ids = tuple(str(row[0]) for row in listing["coverage"])
        classifier = np.load(current / "classifier.npy", allow_pickle=False)
        classes = tuple(str(c) for c in listing["classes"])
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, IndexError) as exc:
        raise IndexMismatchError(f"cannot read the index in {current} ({exc}): {FIX}.") from exc
    rows = tuple(Row(*r) for r in raw_rows)
    item_ids = tuple(item.id for item in knowledge.items)
    position = {item_id: i for i, item_id in enumerate(item_ids)}
    if faiss_index.ntotal != len(rows) or any(r.item_id not in position for r in rows):
        raise IndexMismatchError(f"the index in {current} is inconsistent: {FIX}.")
    if lexical.item_ids != item_ids:
        raise IndexMismatchError(f"the lexical index in {current} is out of date: {FIX}.")
    if off_topics.ndim != 2 or off_topics.shape[1] != faiss_index.d:
        raise IndexMismatchError(f"the off-topic vectors in {current} are inconsistent: {FIX}.")
    if (
        coverage.ndim != 2
        or coverage.shape[1] != faiss_index.d
        or len(coverage_ids) != len(coverage)
        or list(coverage_ids) != [c for c, _ in knowledge.coverage.examples()]
    ):
        raise IndexMismatchError(f"the coverage vectors in {current} are inconsistent: {FIX}.")
    if classifier.ndim != 2 or classifier.shape != (faiss_index.d + 1, len(classes)):
        raise IndexMismatchError(f"the classifier in {current} is inconsistent: {FIX}.")
    return LoadedIndex(
        path=current,
        manifest=manifest,
        faiss=faiss_index,
        rows=rows,
        row_item=np.array([position[r.item_id] for r in rows], dtype=np.int64),
        item_ids=item_ids,
        lexical=lexical,
        off_topics=off_topics,
        coverage=coverage,
        coverage_ids=coverage_ids,
        classifier=classifier,
        classes=classes,
    )
