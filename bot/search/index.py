"""Build, check and load the retrieval index (``index/``).

Layout: every build is a folder of plain files, ``index/.index.<time>-<id>/``; the symlink
``index/current`` names the one in use. A build writes a new folder beside the old one and then
replaces the symlink with ``os.replace`` — one atomic rename — so a reader sees either the old
index or the new one, never a mix, and a failed build (invalid knowledge, missing model, an
exception half-way) leaves ``current`` and its files untouched. The previous build is kept until
the next one (a process that resolved the old symlink a moment ago can still read it); older ones
and leftovers of crashed builds are deleted. ``index/README.md`` is committed and never touched.

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
- ``manifest.json``: format, model (name, path, fingerprint, dimension), knowledge (content hash,
  per-item hashes), off-topic hash and count, counts, build time, library versions and the sha256
  of every other file.

Checking an index (``index_status``, ``load_index``) never imports torch, so
``scripts/build_index.py --if-stale`` answers in well under a second when nothing changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
import secrets
import shutil
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.search import textproc
from bot.settings import Settings

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from bot.knowledge.loader import Knowledge
    from bot.types import Item

#: 2: off_topics.npy added.
FORMAT_VERSION = 2
#: Bump when the lexical index format changes. Changes to the tokenizer are caught anyway:
#: the manifest records ``lexical_fingerprint()``, a hash of the code that makes the tokens.
LEXICAL_VERSION = 1
CURRENT = "current"
BUILD_PREFIX = ".index."
LOCK_NAME = ".index.lock"
FILES = ("vectors.faiss", "vectors.json", "embeddings.npy", "lexical.json", "off_topics.npy")
FIX = "run `make index` (or `contract-bot index build`)"
#: Below this many texts to embed, no progress bar (it would flash by).
PROGRESS_MIN = 32
BATCH = 32
OFF_TOPICS_FILE = Path(__file__).with_name("off_topics.toml")

#: (field, prompt kind) of the texts embedded per item, in row order.
PASSAGE_FIELDS = ("text", "text_en")
QUERY_FIELDS = ("title", "title_en", "question")


class IndexBuildError(Exception):
    """The index could not be built; the previous index (if any) is still in place."""


class IndexMismatchError(Exception):
    """The index on disk is missing, corrupt or does not match the model or the knowledge."""


# ---------------------------------------------------------------------------------------------
# What gets embedded


@dataclass(frozen=True)
class Row:
    """One vector of the index: which item, which of its texts, and the content key."""

    item_id: str
    field: str
    key: str


def item_texts(item: Item) -> list[tuple[str, str, str]]:
    """(field, prompt kind, text) for every text of ``item`` that gets a vector."""
    out = [("text", "document", item.text), ("text_en", "document", item.text_en)]
    out += [("title", "query", item.title), ("title_en", "query", item.title_en)]
    out += [("question", "query", q) for q in item.questions]
    return [(f, p, t.strip()) for f, p, t in out if t.strip()]


def lexical_document(item: Item) -> str:
    """The text BM25 indexes for ``item``: its wording, headings, aliases and questions."""
    parts = [item.section, item.title, item.title_en, item.text, item.text_en]
    parts += list(item.aliases) + list(item.questions)
    return "\n".join(p for p in parts if p)


def load_off_topics(path: Path | None = None) -> tuple[str, ...]:
    """The texts of ``bot/search/off_topics.toml``: its ``topics`` then its ``examples`` (see its
    header); ``ValueError`` naming the file, list and entry when one is not a non-empty string."""
    path = path if path is not None else OFF_TOPICS_FILE
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the off-topic list ({exc})") from exc
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


def off_topics_hash(texts: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode()).hexdigest()[:32]


def lexical_fingerprint() -> str:
    """sha256 of the source of ``bot.search.textproc`` and this module: a changed tokenizer or
    lexical document makes the lexical index stale (rebuilding it re-embeds nothing)."""
    digest = hashlib.sha256(str(LEXICAL_VERSION).encode())
    for path in (Path(textproc.__file__), Path(__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


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
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel in ("README.md", "LICENSE") or rel.endswith(".lock"):
            continue
        size = file.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        if rel == ".complete":
            with contextlib.suppress(ValueError):
                record = json.loads(file.read_text(encoding="utf-8"))
                record.pop("created", None)
                digest.update(json.dumps(record, sort_keys=True).encode())
        elif size < 1_000_000:
            digest.update(file.read_bytes())
    return digest.hexdigest()[:32]


# ---------------------------------------------------------------------------------------------
# BM25 (a plain-file lexical index)


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


# ---------------------------------------------------------------------------------------------
# Build


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
        return (
            f"index built in {self.seconds:.1f} s: {self.items} items, {self.vectors} vectors "
            f"({self.model}); {what}. -> {self.path}"
        )


def current_dir(index_dir: Path) -> Path | None:
    """The build folder ``index/current`` points to, if any."""
    link = index_dir / CURRENT
    if not link.is_symlink() and not link.is_dir():
        return None
    target = link.resolve()
    return target if target.is_dir() else None


@contextlib.contextmanager
def _lock(index_dir: Path) -> Iterator[None]:
    """One build at a time per index folder (a second waits, then builds on the first's)."""
    with (index_dir / LOCK_NAME).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("torch", "sentence-transformers", "transformers", "faiss-cpu", "numpy", "jieba"):
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
    return out


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
        try:
            target = _write_build(
                index_dir,
                settings,
                knowledge,
                rows,
                (off_topics, off_keys),
                previous | fresh,
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
        )


def _write_build(
    index_dir: Path,
    settings: Settings,
    knowledge: Knowledge,
    rows: list[Row],
    off_topics: tuple[Sequence[str], Sequence[str]],
    vectors_by_key: Mapping[str, Any],
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
        _write_json(
            tmp / "vectors.json",
            {"rows": [[r.item_id, r.field, r.key] for r in rows], "off_topics": list(off_keys)},
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
            },
            "knowledge": {
                "dir": str(settings.knowledge_dir),
                "content_hash": knowledge.content_hash(),
                "items": {item.id: item_hash(item) for item in knowledge.items},
            },
            "off_topics": {"hash": off_topics_hash(off_texts), "count": len(off_texts)},
            "item_count": len(knowledge.items),
            "vector_count": len(rows),
            "fields": dict(sorted(fields.items())),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "build_seconds": round(time.perf_counter() - started, 3),
            "versions": library_versions(),
            "files": {name: _sha256_file(tmp / name) for name in FILES},
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
        elif recorded.get(name) != _sha256_file(path):
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
    if manifest.get("lexical_fingerprint") != lexical_fingerprint():
        problems.append(
            "its lexical index was made by another version of the tokenizer or BM25 code "
            "(bot/search/textproc.py, bot/search/index.py)"
        )
    try:
        if manifest.get("off_topics", {}).get("hash") != off_topics_hash(load_off_topics()):
            problems.append(f"the off-topic list {OFF_TOPICS_FILE} changed since the build")
    except ValueError as exc:
        problems.append(str(exc))
    built = manifest.get("knowledge", {})
    if built.get("content_hash") != knowledge.content_hash():
        problems.append(
            f"the knowledge changed since the build ({_knowledge_diff(built, knowledge)})"
        )
    return problems


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
        raw_rows = json.loads((current / "vectors.json").read_text(encoding="utf-8"))["rows"]
        lexical = BM25.from_json(json.loads((current / "lexical.json").read_text("utf-8")))
        off_topics = np.load(current / "off_topics.npy", allow_pickle=False)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
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
    return LoadedIndex(
        path=current,
        manifest=manifest,
        faiss=faiss_index,
        rows=rows,
        row_item=np.array([position[r.item_id] for r in rows], dtype=np.int64),
        item_ids=item_ids,
        lexical=lexical,
        off_topics=off_topics,
    )
