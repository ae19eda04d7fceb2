"""Embedding questions with ONNX Runtime: the export of ``bot.model.onnx_export``, no torch.

What sentence-transformers does around the transformer, done the same way: the prompt is put
before the text (nothing stripped), the model's own ``tokenizers`` tokenizer adds the
special tokens and truncates to the maximum length, and the last hidden states are mean-pooled
over the attention mask (prompt included) and L2-normalized. ``tests/model/test_onnx_encoder.py``
compares the result with sentence-transformers.

Each text runs through the graph on its own: the int8 model quantizes its activations with one
scale per call, so a text batched with others would get a slightly different vector (and so,
rarely, a different answer) depending on who else asked at that moment. On two cores batching
bought nothing anyway: the padding cost what the larger matrix products saved (measured
2026-12-01: 13.9 ms a text alone, 11.3-15.0 ms in batches of 4-32).
The texts of a batch run side by side instead, one per core, each with ``BOT_ONNX_THREADS``
threads (identical vectors to one at a time).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.model.cache import ENCODER_CONFIG, FIX_COMMAND, ONNX_FILES, ModelFetchError, onnx_dir

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

    from bot.settings import Settings


class OnnxEncoder:
    """Query and passage embeddings from an ONNX export (the subset of sentence-transformers'
    ``encode_query`` / ``encode_document`` that the bot uses)."""

    def __init__(
        self,
        directory: Path,
        model_file: str,
        threads: int | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.directory = directory
        self.model_file = model_file
        self.config: dict[str, Any] = json.loads(
            (directory / ENCODER_CONFIG).read_text(encoding="utf-8")
        )
        self.prompts: dict[str, str] = dict(self.config.get("prompts", {}))
        if tokenizer is None:
            # Loaded, the model's 250k-piece tokenizer takes about 290 MB: an encoder of the
            # same export (``Rechecked``) is given this one instead of loading its own.
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
            tokenizer.enable_truncation(int(self.config["max_seq_length"]))
            tokenizer.no_padding()
        self.tokenizer = tokenizer
        options = ort.SessionOptions()
        # ``threads`` None: one per available core, for the lowest latency of a lone question.
        # The bot passes 1 (BOT_ONNX_THREADS): a short question's operators are too small to
        # split well, so a second thread cut the wall time by a few per cent while the CPU per
        # question rose 1.6x (10.7 -> 16.9 ms measured 2026-12-02); under load that CPU is what
        # the event loop and the next question need. No second pool for parallel branches (a
        # transformer is one chain).
        options.intra_op_num_threads = threads or max(1, min(len(os.sched_getaffinity(0)), 8))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle pool threads would otherwise spin for a while after every run, taking a core
        # from the event loop and everything else on the machine: on this 2-core machine,
        # spinning doubled the CPU per question and, with other work running, the latency too.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # warnings about unused initializers are noise here
        self.session = ort.InferenceSession(
            str(directory / model_file), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        cores = max(1, min(len(os.sched_getaffinity(0)), 8))
        side_by_side = cores // options.intra_op_num_threads
        self._parallel = (
            ThreadPoolExecutor(side_by_side, thread_name_prefix="onnx")
            if side_by_side > 1
            else None
        )

    @classmethod
    def load(cls, settings: Settings, tokenizer: Tokenizer | None = None) -> OnnxEncoder:
        """The export for ``settings.embedding_backend`` (``onnx`` or ``onnx-int8``), checked to
        be complete and made from the configured model's current files (``tokenizer``: that of
        another encoder of the same export, to share)."""
        from bot.model.cache import onnx_problem

        problem = onnx_problem(settings)
        if problem is not None:
            raise ModelFetchError(f"{problem}: {FIX_COMMAND} (or set BOT_EMBEDDING_BACKEND=torch).")
        return cls(
            onnx_dir(settings),
            ONNX_FILES[settings.embedding_backend],
            threads=settings.onnx_threads or None,
            tokenizer=tokenizer,
        )

    def __repr__(self) -> str:
        return f"OnnxEncoder({str(self.directory / self.model_file)!r})"

    def get_embedding_dimension(self) -> int:
        return int(self.config["dimension"])

    def encode_query(self, texts: str | Sequence[str], **options: Any) -> np.ndarray:
        """Vectors of ``texts`` as questions (the model's query prompt); one text → one vector.
        ``options`` of sentence-transformers' signature (batch size, progress bar) are accepted;
        vectors are always normalized when the model normalizes."""
        return self.encode(texts, self.prompts.get("query", ""))

    def encode_document(self, texts: str | Sequence[str], **options: Any) -> np.ndarray:
        """Vectors of ``texts`` as passages (the model's document prompt)."""
        prompt = self.prompts.get("document", self.prompts.get("passage", ""))
        return self.encode(texts, prompt)

    def encode(self, texts: str | Sequence[str], prompt: str = "") -> np.ndarray:
        import numpy as np

        single = isinstance(texts, str)
        batch = [texts] if isinstance(texts, str) else list(texts)
        out = np.zeros((len(batch), self.get_embedding_dimension()), dtype=np.float32)
        texts_in = [prompt + text for text in batch]
        if len(texts_in) > 1 and self._parallel is not None:
            # The texts of a batch (questions that came while the model was busy) each run
            # alone as before, side by side on the cores (ONNX Runtime releases the GIL):
            # one thread per question costs the least CPU, and a batch still uses every core.
            for row, vector in enumerate(self._parallel.map(self._embed, texts_in)):
                out[row] = vector
        else:
            for row, text in enumerate(texts_in):
                out[row] = self._embed(text)
        return out[0] if single else out

    def _embed(self, text: str) -> np.ndarray:
        import numpy as np

        encoding = self.tokenizer.encode(text)
        ids = np.array([encoding.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feed)[0][0]
        vector = hidden[0] if self.config["pooling"] == "cls" else hidden.mean(axis=0)
        if self.config.get("normalize", True):
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return vector.astype(np.float32)


class Rechecked:
    """The int8 model for every question, with the fp32 export beside it as ``exact``: the
    retriever embeds a question again with ``exact`` when its decision is close enough for the
    int8 model's small error to change it (``bot.search.retrieval.RECHECK``,
    ``BOT_INT8_RECHECK``). Most questions pay the int8 model's cost only, and where the margins
    judge that the two models could disagree the answer is the fp32 model's (measured: the first
    item equal to torch's on 1,271 of 1,272 evaluation questions, README "Serving the model")."""

    def __init__(self, fast: OnnxEncoder, exact: OnnxEncoder) -> None:
        self.fast = fast
        self.exact = exact

    @classmethod
    def load(cls, settings: Settings) -> Rechecked:
        fast = OnnxEncoder.load(settings.model_copy(update={"embedding_backend": "onnx-int8"}))
        exact = OnnxEncoder.load(
            settings.model_copy(update={"embedding_backend": "onnx"}), tokenizer=fast.tokenizer
        )
        return cls(fast, exact)

    def __repr__(self) -> str:
        return f"Rechecked({self.fast!r}, exact={self.exact!r})"

    def get_embedding_dimension(self) -> int:
        return self.fast.get_embedding_dimension()

    def encode_query(self, texts: str | Sequence[str], **options: Any) -> np.ndarray:
        return self.fast.encode_query(texts, **options)

    def encode_document(self, texts: str | Sequence[str], **options: Any) -> np.ndarray:
        return self.exact.encode_document(texts, **options)
