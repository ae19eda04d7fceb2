"""Loading the embedding model at start-up: ``SentenceTransformer(path)`` on the CPU.

The directory was built at set-up (``bot.model.fetch``); here it is only checked and loaded.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from bot.model.cache import FIX_COMMAND, ModelFetchError, is_complete, is_local_model
from bot.settings import Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def load_model(settings: Settings) -> SentenceTransformer:
    """Load the configured model through sentence-transformers, on the CPU."""
    path = settings.model_path()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelFetchError(
            f"embedding model {settings.embedding_model!r} is not available at {path}: "
            f"{FIX_COMMAND}."
        )
    if not is_local_model(settings) and not is_complete(path):
        raise ModelFetchError(
            f"embedding model directory {path} is incomplete or was built by an older "
            f"converter: {FIX_COMMAND}."
        )
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # A weight-loading progress bar on every start would clutter the console chat and logs.
    hf_logging.disable_progress_bar()
    if "OMP_NUM_THREADS" not in os.environ:
        # Latency of one short query is what matters; one thread per available core.
        torch.set_num_threads(max(1, min(len(os.sched_getaffinity(0)), 8)))
    return SentenceTransformer(str(path), device="cpu")
