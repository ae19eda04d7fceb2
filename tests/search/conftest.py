"""Fixtures of the search tests: a private copy of the session index to break and rebuild."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.settings import Settings
from tests.conftest import seed_index

if TYPE_CHECKING:
    from bot.search.build import BuildReport


@pytest.fixture
def private(tmp_path: Path, settings: Settings, built_index: BuildReport) -> Settings:
    """Settings with a private copy of the session index and of knowledge/."""
    index_dir = tmp_path / "index"
    seed_index(index_dir, settings.index_dir)
    (index_dir / "README.md").write_text("kept\n", encoding="utf-8")
    knowledge_dir = tmp_path / "knowledge"
    shutil.copytree(settings.knowledge_dir, knowledge_dir)
    return settings.model_copy(update={"index_dir": index_dir, "knowledge_dir": knowledge_dir})
