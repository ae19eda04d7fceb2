"""Checking and loading the index: a corrupt, missing, stale or mismatched one is refused with
the command that fixes it, and the check is fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.search.index import (
    FILES,
    IndexMismatchError,
    current_dir,
    index_status,
    load_off_topics,
)
from bot.settings import ROOT, Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from bot.knowledge.loader import Knowledge


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('topics = ["weather"]\nexamples = ["hi", ""]\n', 'field "examples", entry 2'),
        ('topics = "weather"\n', 'field "topics" must be a list'),
        ("topics = [\n", "cannot read"),
        ("examples = []\n", "both empty"),
    ],
)
def test_a_broken_off_topic_list_is_named(tmp_path: Path, content: str, expected: str) -> None:
    assert len(load_off_topics()) >= 300  # the shipped one is fine
    bad = tmp_path / "off_topics.toml"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=r"off_topics\.toml") as excinfo:
        load_off_topics(bad)
    assert expected in str(excinfo.value)


@pytest.mark.parametrize("name", FILES)
def test_corrupt_file_is_refused_with_the_fix(
    private: Settings, knowledge: Knowledge, name: str
) -> None:
    from bot.search.retrieval import Retriever

    current = current_dir(private.index_dir)
    assert current is not None
    target = current / name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))

    ok, message = index_status(private)
    assert not ok and f"{name} is corrupt" in message
    with pytest.raises(IndexMismatchError) as excinfo:
        Retriever.load(private, knowledge=knowledge)
    assert f"{name} is corrupt" in str(excinfo.value)
    assert "make index" in str(excinfo.value)


def test_missing_file_is_refused(private: Settings, knowledge: Knowledge) -> None:
    from bot.search.index import load_index

    current = current_dir(private.index_dir)
    assert current is not None
    (current / "lexical.json").unlink()
    with pytest.raises(IndexMismatchError, match=r"lexical\.json is missing"):
        load_index(private, knowledge)


def test_another_model_setting_is_refused(private: Settings, knowledge: Knowledge) -> None:
    from bot.search.retrieval import Retriever

    other = private.model_copy(update={"embedding_model": "BAAI/bge-small-zh-v1.5"})
    ok, message = index_status(other)
    assert not ok and "BAAI/bge-small-zh-v1.5" in message
    with pytest.raises(IndexMismatchError) as excinfo:
        Retriever.load(other, knowledge=knowledge)
    message = str(excinfo.value)
    assert "intfloat/multilingual-e5-small" in message and "BAAI/bge-small-zh-v1.5" in message
    assert "make index" in message


def test_changed_knowledge_is_refused(
    private: Settings, knowledge: Knowledge, model: SentenceTransformer
) -> None:
    from bot.knowledge.loader import load_knowledge
    from bot.search.retrieval import Retriever

    agreement = private.knowledge_dir / "agreement.toml"
    text = agreement.read_text(encoding="utf-8")
    agreement.write_text(text.replace("本协议一式两份", "本协议一式三份", 1), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match=r"knowledge changed.*7\.1"):
        Retriever.load(private, knowledge=load_knowledge(private.knowledge_dir), model=model)


def test_no_index_is_refused(tmp_path: Path, settings: Settings, knowledge: Knowledge) -> None:
    from bot.search.retrieval import Retriever

    empty = settings.model_copy(update={"index_dir": tmp_path / "nothing"})
    ok, message = index_status(empty)
    assert not ok and "no index has been built" in message and "make index" in message
    with pytest.raises(IndexMismatchError, match="make index"):
        Retriever.load(empty, knowledge=knowledge)


def test_if_stale_is_fast_and_skips_torch(private: Settings) -> None:
    script = str(ROOT / "scripts" / "build_index.py")
    code = (
        "import sys, importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('b', {script!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "rc = m.main(['--if-stale'])\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', rc)\n"
    )
    env = {
        **os.environ,
        "BOT_INDEX_DIR": str(private.index_dir),
        "BOT_KNOWLEDGE_DIR": str(private.knowledge_dir),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "index OK" in result.stdout
    assert result.stdout.strip().endswith("NO-TORCH 0")


def test_index_built_before_the_onnx_export_is_refused(
    private: Settings, knowledge: Knowledge
) -> None:
    """The manifest records the ONNX export that answers the index's questions; an index that
    records another (or none) is refused on the ONNX backend with the command that fixes it,
    and still serves the torch backend, which does not use the export."""
    import json

    from bot.search.retrieval import Retriever

    current = current_dir(private.index_dir)
    assert current is not None
    manifest_path = current / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["model"]["onnx"]["fingerprint"]
    manifest["model"]["onnx"] = None
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    onnx = private.model_copy(update={"embedding_backend": "onnx"})
    ok, message = index_status(onnx)
    assert not ok and "ONNX export" in message and "make index" in message
    with pytest.raises(IndexMismatchError, match=r"ONNX export.*make index"):
        Retriever.load(onnx, knowledge=knowledge)
    assert index_status(private.model_copy(update={"embedding_backend": "torch"}))[0]
