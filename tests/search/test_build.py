"""Building the index: incremental, atomic, and a failed build leaves the old index serving.

Every test works on its own copy of the session's index (copying reuses all vectors), so only
what a test changes gets embedded.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.search.build import build_index, item_texts
from bot.search.index import (
    CURRENT,
    FILES,
    LOCK_NAME,
    IndexBuildError,
    current_dir,
    index_status,
    load_off_topics,
)
from bot.settings import Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from bot.knowledge.loader import Knowledge
    from bot.search.build import BuildReport


def snapshot(index_dir: Path) -> dict[str, str]:
    """Every file under the index folder -> sha256, plus where ``current`` points (the empty
    lock file a build creates is no part of the index)."""
    out = {}
    for path in sorted(index_dir.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.name != LOCK_NAME:
            out[str(path.relative_to(index_dir))] = hashlib.sha256(path.read_bytes()).hexdigest()
    link = index_dir / CURRENT
    out["-> current"] = os.readlink(link) if link.is_symlink() else ""
    return out


def test_manifest_describes_the_build(
    settings: Settings, knowledge: Knowledge, built_index: BuildReport
) -> None:
    current = current_dir(settings.index_dir)
    assert current is not None and current == built_index.path
    manifest = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"]["name"] == settings.embedding_model
    assert manifest["model"]["dimension"] == 384
    assert manifest["knowledge"]["content_hash"] == knowledge.content_hash()
    assert set(manifest["knowledge"]["items"]) == {item.id for item in knowledge.items}
    assert manifest["item_count"] == len(knowledge.items) == 34
    expected_vectors = sum(len(item_texts(item)) for item in knowledge.items)
    assert manifest["vector_count"] == expected_vectors == built_index.vectors
    assert sum(manifest["fields"].values()) == expected_vectors
    for library in ("python", "torch", "sentence-transformers", "faiss-cpu", "jieba"):
        assert manifest["versions"][library]
    for name in FILES:
        digest = hashlib.sha256((current / name).read_bytes()).hexdigest()
        assert manifest["files"][name] == digest
    rows = json.loads((current / "vectors.json").read_text(encoding="utf-8"))["rows"]
    assert len(rows) == expected_vectors
    assert {row[0] for row in rows} == {item.id for item in knowledge.items}
    ok, message = index_status(settings)
    assert ok, message


def test_editing_one_item_reembeds_only_its_texts(
    private: Settings, model: SentenceTransformer
) -> None:
    agreement = private.knowledge_dir / "agreement.toml"
    text = agreement.read_text(encoding="utf-8")
    start = text.index('id = "3.2"')
    anchor = text.index("questions = [\n", start) + len("questions = [\n")
    new_question = '    "季度服务费最迟哪天到账？（测试新增）",\n'
    agreement.write_text(text[:anchor] + new_question + text[anchor:], encoding="utf-8")

    ok, message = index_status(private)
    assert not ok and "3.2" in message and "make index" in message

    report = build_index(private, model=model, progress=False)
    assert report.embedded == 1
    assert report.changed_items == ("3.2",)
    assert report.reused == report.vectors - 1
    summary = report.summary()
    assert "re-embedded 1 text of 1 item (3.2)" in summary
    assert f"reused {report.reused}" in summary
    assert index_status(private)[0]

    again = build_index(private, model=model, progress=False)
    assert again.embedded == 0 and "reused all" in again.summary()


def test_editing_the_off_topic_list_marks_the_index_stale_and_embeds_only_the_new_text(
    private: Settings, model: SentenceTransformer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.search.index

    edited = tmp_path / "off_topics.toml"
    text = bot.search.index.OFF_TOPICS_FILE.read_text(encoding="utf-8")
    edited.write_text(text.replace("examples = [\n", 'examples = [\n  "股票怎么开户",\n', 1))
    monkeypatch.setattr(bot.search.index, "OFF_TOPICS_FILE", edited)

    ok, message = index_status(private)
    assert not ok and "off_topics.toml" in message and "make index" in message
    report = build_index(private, model=model, progress=False)
    assert report.embedded == 0 and report.off_topics_embedded == 1
    assert "embedded 1 of" in report.summary()
    assert index_status(private)[0]
    current = current_dir(private.index_dir)
    assert current is not None
    manifest = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["off_topics"]["count"] == len(load_off_topics(edited)) == report.off_topics


def test_builds_swap_atomically_and_keep_the_readme(
    private: Settings, model: SentenceTransformer
) -> None:
    before = current_dir(private.index_dir)
    first = build_index(private, model=model, progress=False)
    second = build_index(private, model=model, progress=False)
    link = private.index_dir / CURRENT
    assert link.is_symlink() and link.resolve() == second.path
    builds = sorted(
        p.name for p in private.index_dir.iterdir() if p.is_dir() and not p.is_symlink()
    )
    # The current build and the one before it (readers may still hold it); older ones pruned.
    assert builds == sorted([first.path.name, second.path.name])
    assert before is not None and not before.exists()
    assert (private.index_dir / "README.md").read_text(encoding="utf-8") == "kept\n"
    assert not [p for p in private.index_dir.iterdir() if ".index.tmp" in p.name]


def test_invalid_knowledge_leaves_the_old_index_byte_identical(
    private: Settings, model: SentenceTransformer
) -> None:
    before = snapshot(private.index_dir)
    agreement = private.knowledge_dir / "agreement.toml"
    text = agreement.read_text(encoding="utf-8")
    agreement.write_text(text.replace('id = "1.2"', 'id = "1.1"', 1), encoding="utf-8")
    with pytest.raises(IndexBuildError) as excinfo:
        build_index(private, model=model, progress=False)
    assert "agreement.toml" in str(excinfo.value) and "1.1" in str(excinfo.value)
    assert snapshot(private.index_dir) == before


class ExplodingModel:
    """Stands in for the model and fails half-way through embedding."""

    def encode_query(self, texts: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated crash while embedding")

    encode_document = encode_query


def test_crash_midway_leaves_the_old_index_byte_identical(private: Settings) -> None:
    before = snapshot(private.index_dir)
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_index(private, force=True, model=ExplodingModel(), progress=False)  # type: ignore[arg-type]
    assert snapshot(private.index_dir) == before
    assert index_status(private)[0]


def test_manifest_counts_the_coverage_examples_and_the_classifier(
    settings: Settings, knowledge: Knowledge, built_index: BuildReport
) -> None:
    import numpy as np

    current = current_dir(settings.index_dir)
    assert current is not None
    manifest = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
    examples = knowledge.coverage.examples()
    assert manifest["coverage"]["count"] == len(examples) == built_index.coverage
    assert manifest["coverage"]["categories"] == len(knowledge.coverage.gaps)
    assert manifest["coverage"]["hash"] == knowledge.coverage.examples_hash()
    listing = json.loads((current / "vectors.json").read_text(encoding="utf-8"))
    assert [row[0] for row in listing["coverage"]] == [c for c, _ in examples]
    assert np.load(current / "coverage.npy").shape == (len(examples), 384)
    classes = listing["classes"]
    assert {f"gap:{c.id}" for c in knowledge.coverage.gaps} <= set(classes)
    assert {item.id for item in knowledge.items} <= set(classes) and "off" in classes
    assert np.load(current / "classifier.npy").shape == (385, len(classes))
    assert manifest["classifier"]["classes"] == len(classes)


def test_editing_the_coverage_examples_marks_the_index_stale(
    private: Settings, model: SentenceTransformer
) -> None:
    path = private.knowledge_dir / "coverage.toml"
    text = path.read_text(encoding="utf-8")
    anchor = text.index('id = "insurance"')
    anchor = text.index("examples = [\n", anchor) + len("examples = [\n")
    path.write_text(text[:anchor] + '    "乙方的车要不要上保险？（测试）",\n' + text[anchor:])

    ok, message = index_status(private)
    assert not ok and "coverage.toml" in message and "make index" in message
    report = build_index(private, model=model, progress=False)
    assert report.embedded == 0 and report.coverage_embedded == 1
    assert report.classifier_trained  # its training texts changed
    assert "embedded 1 of" in report.summary() and "coverage example" in report.summary()
    assert index_status(private)[0]
    # A statement is not embedded: rewording it needs no build.
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("本协议没有约定任何一方须购买保险。", "本协议没有约定保险。"))
    assert index_status(private)[0]
    again = build_index(private, model=model, progress=False)
    assert again.embedded == again.coverage_embedded == 0 and not again.classifier_trained


def test_classifier_learns_the_classes_of_its_training_texts() -> None:
    import numpy as np

    from bot.search.build import train_classifier
    from bot.search.gaps import log_softmax

    rng = np.random.RandomState(0)
    centres = np.eye(4, 8)
    labels = ["1.1", "gap:insurance", "off", "1.2"]
    vectors, names = [], []
    for centre, label in zip(centres, labels, strict=True):
        for _ in range(10):
            v = centre + 0.1 * rng.randn(8)
            vectors.append(v / np.linalg.norm(v))
            names.append(label)
    weights, classes = train_classifier(np.array(vectors), names)
    assert classes == tuple(sorted(labels)) and weights.shape == (9, 4)
    probe = np.hstack([centres, np.ones((4, 1))]) @ weights
    predicted = [classes[i] for i in np.argmax(log_softmax(probe), axis=1)]
    assert predicted == labels
