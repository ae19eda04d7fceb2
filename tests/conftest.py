"""Session-wide fixtures: the real knowledge, the real model, one real index built once.

``settings`` points at the repository's knowledge and model but at a private index folder (and
storage file) under pytest's temporary directory, so tests never touch ``index/`` or ``data/``.
The index is built there once per session; when the repository already has a built index its
vectors are reused (content-keyed, see ``bot.search.index``), so this takes a second or two.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from bot.settings import ROOT, Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from bot.knowledge.loader import Knowledge
    from bot.model.loading import Encoder
    from bot.search.build import BuildReport
    from bot.search.retrieval import Retriever
    from tests.servers import Postgres


def seed_index(target_dir: Path, source_dir: Path) -> None:
    """Copy the build ``source_dir/current`` points to into ``target_dir`` (as its current
    build), so that a build there reuses its vectors. Does nothing when there is none."""
    from bot.search.index import CURRENT, current_dir

    source = current_dir(source_dir)
    if source is None:
        return
    target_dir.mkdir(parents=True, exist_ok=True)
    seed = target_dir / ".index.seed"
    try:
        shutil.copytree(source, seed)
    except (OSError, shutil.Error):
        shutil.rmtree(seed, ignore_errors=True)  # a concurrent rebuild pruned it: build afresh
        return
    os.symlink(seed.name, target_dir / CURRENT)


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str = "", timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``python -m bot <args>`` in a child process, from the repository root, with the
    current environment plus ``env``; output captured as UTF-8 text."""
    defaults = {"PYTHONIOENCODING": "utf-8", "BOT_LOG_LEVEL": "WARNING"}
    full_env = {**os.environ, **defaults, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` as a module (scripts/ is not a package)."""
    module_name = f"scripts_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    base = tmp_path_factory.mktemp("contract-bot")
    return Settings(
        _env_file=None,
        index_dir=base / "index",
        storage_path=base / "data" / "bot.sqlite3",
        telegram_token=None,
    )


@pytest.fixture(scope="session")
def knowledge(settings: Settings) -> Knowledge:
    from bot.knowledge.loader import load_knowledge

    return load_knowledge(settings.knowledge_dir)


@pytest.fixture(scope="session")
def model(settings: Settings) -> SentenceTransformer:
    from bot.model.loading import load_model

    return load_model(settings)


@pytest.fixture(scope="session")
def encoder(settings: Settings, model: SentenceTransformer) -> Encoder:
    """What embeds questions under the session's settings: the ONNX int8 export by default
    (``BOT_EMBEDDING_BACKEND``), made by set-up (here too, if it has not been)."""
    if settings.embedding_backend == "torch":
        return model
    from bot.model.fetch import fetch_onnx
    from bot.model.loading import load_encoder

    fetch_onnx(settings)
    return load_encoder(settings)


@pytest.fixture(scope="session")
def built_index(
    settings: Settings, knowledge: Knowledge, model: SentenceTransformer, encoder: Encoder
) -> BuildReport:
    """The session's index in ``settings.index_dir``, built once from the real knowledge by
    sentence-transformers (after the ONNX export, which its manifest records)."""
    from bot.search.build import build_index

    seed_index(settings.index_dir, Settings(_env_file=None).index_dir)
    return build_index(settings, knowledge=knowledge, model=model, progress=False)


@pytest.fixture(scope="session")
def retriever(
    settings: Settings, knowledge: Knowledge, encoder: Encoder, built_index: BuildReport
) -> Retriever:
    """The retriever a running bot would have: the session's index and ``encoder``."""
    from bot.search.retrieval import Retriever

    return Retriever.load(settings, knowledge=knowledge, model=encoder)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A throw-away PostgreSQL cluster on a free loopback port for the whole session."""
    import tempfile

    from tests.servers import postgres_missing_reason, postgres_server

    reason = postgres_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    # Not under pytest's temporary folder: that is private to root, and the server runs as the
    # postgres user.
    root = Path(tempfile.mkdtemp(prefix="contract-bot-pg-"))
    try:
        with postgres_server(root) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)
