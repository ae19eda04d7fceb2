"""Loading the embedding model at start-up: ``SentenceTransformer(path)`` on the CPU, or its ONNX
export (``bot.model.onnx_encoder``) when ``BOT_EMBEDDING_BACKEND`` says so.

The directories were built at set-up (``bot.model.fetch``); here they are only checked and loaded.
``load_encoder`` is what answers questions; ``load_model`` is sentence-transformers itself, the
reference form that builds the index.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol

from bot.model.cache import FIX_COMMAND, ModelFetchError, is_complete, is_local_model
from bot.settings import Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class Encoder(Protocol):
    """What embeds questions: a ``SentenceTransformer``, an ``OnnxEncoder`` or a ``Rechecked``
    pair of them."""

    def encode_query(
        self,
        texts: list[str],
        /,
        *,
        batch_size: int = ...,
        normalize_embeddings: bool = ...,
        show_progress_bar: bool = ...,
    ) -> Any:
        """Normalized float32 vectors of ``texts`` as questions (an array of shape [n, d])."""
        ...

    def get_embedding_dimension(self) -> int | None: ...


def load_encoder(settings: Settings) -> Encoder:
    """What embeds questions in a running bot, by ``BOT_EMBEDDING_BACKEND``. The ONNX backends
    import neither torch nor sentence-transformers."""
    if settings.embedding_backend == "torch":
        return load_model(settings)
    from bot.model.onnx_encoder import OnnxEncoder, Rechecked

    check_model_directory(settings)
    if settings.embedding_backend == "onnx-int8" and settings.int8_recheck:
        return Rechecked.load(settings)
    return OnnxEncoder.load(settings)


def load_model(settings: Settings) -> SentenceTransformer:
    """Load the configured model through sentence-transformers, on the CPU."""
    check_model_directory(settings)
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # A weight-loading progress bar on every start would clutter the console chat and logs.
    hf_logging.disable_progress_bar()
    if "OMP_NUM_THREADS" not in os.environ:
        # Latency of one short query is what matters; one thread per available core.
        torch.set_num_threads(max(1, min(len(os.sched_getaffinity(0)), 8)))
    return SentenceTransformer(str(settings.model_path()), device="cpu")


def check_model_directory(settings: Settings) -> None:
    """``ModelFetchError`` with the set-up command when the model directory is missing or
    incomplete."""
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
