"""What the handlers share: reloading keeps the loaded model when the rebuilt index was made
with the same one (a reload costs the index, not a second model in memory)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.settings import Settings
from bot.telegram.state import index_build, load_retriever

if TYPE_CHECKING:
    from bot.search.retrieval import Retriever


def test_a_reload_keeps_the_loaded_model(settings: Settings, retriever: Retriever) -> None:
    reloaded = load_retriever(settings, reuse=retriever)
    assert reloaded is not retriever
    assert reloaded.model is retriever.model  # type: ignore[attr-defined]
    assert index_build(reloaded) == index_build(retriever)
    assert reloaded.search("合同有效期多久？").hits[0].item_id == "2.1"
