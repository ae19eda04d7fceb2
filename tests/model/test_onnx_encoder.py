"""The ONNX Runtime encoder: the same vectors as sentence-transformers (the reference form), a
vector that does not depend on what else is encoded with it, a running bot without torch, and an
export that is missing or made from other model files refused with the set-up command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.model.cache import MARKER, ModelFetchError, onnx_dir
from bot.model.loading import load_encoder
from bot.settings import ROOT, Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from bot.knowledge.loader import Knowledge
    from bot.model.onnx_encoder import OnnxEncoder

QUESTIONS = [
    "合同有效期多久？",
    "乙方不响应故障怎么办？",
    "售後支持期限是幾年？",
    "What is the penalty if Party B fails to respond within 2 hours?",
    "第5.1条",
    "thanks!",
    "   spaces around   ",
    "",
    "違約金🙂 ＡＢＣ half-width? ｶﾀｶﾅ",
]


@pytest.fixture(scope="module")
def onnx_encoders(settings: Settings, encoder: object) -> dict[str, OnnxEncoder]:
    from bot.model.onnx_encoder import OnnxEncoder

    return {
        backend: OnnxEncoder.load(settings.model_copy(update={"embedding_backend": backend}))
        for backend in ("onnx", "onnx-int8")
    }


def _cosines(a: object, b: object) -> list[float]:
    import numpy as np

    return [float(x) for x in (np.asarray(a) * np.asarray(b)).sum(axis=1)]


# int8 vectors are approximations (the retriever checks near decisions with fp32: Rechecked).
@pytest.mark.parametrize(("backend", "worst"), [("onnx", 0.9999), ("onnx-int8", 0.99)])
def test_queries_and_passages_match_sentence_transformers(
    onnx_encoders: dict[str, OnnxEncoder],
    model: SentenceTransformer,
    knowledge: Knowledge,
    backend: str,
    worst: float,
) -> None:
    encoder = onnx_encoders[backend]
    passages = [item.text for item in knowledge.items[:12]] + [knowledge.items[3].text_en]
    queries = _cosines(encoder.encode_query(QUESTIONS), model.encode_query(QUESTIONS))
    documents = _cosines(encoder.encode_document(passages), model.encode_document(passages))
    assert min(queries) >= worst, list(zip(QUESTIONS, queries, strict=True))
    assert min(documents) >= worst


def test_long_text_is_truncated_like_sentence_transformers(
    onnx_encoders: dict[str, OnnxEncoder], model: SentenceTransformer
) -> None:
    long = "甲方应当按时支付服务费，乙方应当在两小时内响应。" * 80  # far over 512 tokens
    encoder = onnx_encoders["onnx"]
    assert len(encoder.tokenizer.encode("query: " + long).ids) == 512
    (cosine,) = _cosines(encoder.encode_query([long]), model.encode_query([long]))
    assert cosine >= 0.9999


def test_a_vector_does_not_depend_on_its_companions(
    onnx_encoders: dict[str, OnnxEncoder],
) -> None:
    """Questions asked at the same moment may be embedded together; each must still get the
    vector (and so the answer) it gets alone."""
    import numpy as np

    for encoder in onnx_encoders.values():
        alone = encoder.encode_query([QUESTIONS[0]])
        together = encoder.encode_query([QUESTIONS[3], QUESTIONS[0], "x" * 300])
        assert np.array_equal(alone[0], together[1])
        assert encoder.encode_query(QUESTIONS[0]).shape == (384,)


def test_a_running_bot_imports_no_torch(built_index: object, settings: Settings) -> None:
    """``contract-bot ask`` on the ONNX backend answers without importing torch,
    sentence-transformers or transformers (where the memory and the start-up time go)."""
    code = (
        "import json, sys, io, contextlib\n"
        "from bot.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    rc = main(['ask', '--json', '合同有效期多久？'])\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers') "
        "if m in sys.modules]\n"
        "print(json.dumps({'rc': rc, 'answer': json.loads(out.getvalue()), 'heavy': heavy}))\n"
    )
    env = {
        **os.environ,
        "BOT_EMBEDDING_BACKEND": "onnx",
        "BOT_INDEX_DIR": str(settings.index_dir),
        "BOT_LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0 and report["heavy"] == []
    assert "2.1" in json.dumps(report["answer"]["citations"])


def _cache_with_model(tmp_path: Path, settings: Settings) -> Settings:
    """A model cache holding (a link to) the real model directory and nothing else."""
    cache = tmp_path / "models"
    cache.mkdir()
    real = settings.model_path()
    (cache / real.name).symlink_to(real, target_is_directory=True)
    return settings.model_copy(update={"model_cache_dir": cache, "embedding_backend": "onnx"})


def test_missing_export_is_refused_with_the_setup_command(
    tmp_path: Path, settings: Settings
) -> None:
    private = _cache_with_model(tmp_path, settings)
    with pytest.raises(ModelFetchError, match="ONNX export") as info:
        load_encoder(private)
    assert "make setup" in str(info.value) and "BOT_EMBEDDING_BACKEND=torch" in str(info.value)


def test_export_of_other_model_files_is_refused(tmp_path: Path, settings: Settings) -> None:
    private = _cache_with_model(tmp_path, settings)
    real = onnx_dir(settings)
    fake = onnx_dir(private)
    fake.mkdir()
    for name in os.listdir(real):
        if name != MARKER:
            (fake / name).symlink_to(real / name)
    record = json.loads((real / MARKER).read_text(encoding="utf-8"))
    (fake / MARKER).write_text(json.dumps(record), encoding="utf-8")
    assert load_encoder(private) is not None  # an exact copy serves
    (fake / MARKER).write_text(json.dumps({**record, "source_fingerprint": "0" * 32}))
    with pytest.raises(ModelFetchError, match=r"made from other files.*make setup"):
        load_encoder(private)
    (fake / MARKER).write_text(json.dumps({**record, "exporter_version": 0}))
    with pytest.raises(ModelFetchError, match="older exporter"):
        load_encoder(private)


def test_fetch_is_cheap_when_the_export_is_there(settings: Settings, encoder: object) -> None:
    """Set-up runs on every `make run`; with the export there it must not redo it."""
    from bot.model.fetch import fetch_onnx

    marker = onnx_dir(settings) / MARKER
    before = marker.read_text(encoding="utf-8")
    assert fetch_onnx(settings) == onnx_dir(settings)
    assert marker.read_text(encoding="utf-8") == before
