"""Set-up: export the sentence-transformers model to ONNX, optimise it, quantize it to int8.

Three steps, each with the standard tool: ``torch.onnx.export`` of the transformer (inputs
``input_ids`` and ``attention_mask``, output ``last_hidden_state``); ONNX Runtime's transformer
optimizer (``onnxruntime.transformers.optimizer``: fused attention, embedding and skip layer
norms, bias + GELU), kept as the fp32 model; and ONNX Runtime's dynamic quantization
(``onnxruntime.quantization.quantize_dynamic``: int8 weights per output channel, activations
quantized per call) for the int8 model.

The int8 model quantizes every MatMul and the fused attention's projections (the matrix
products, nearly all of the work); the word embeddings stay fp32 (a lookup, no faster in int8,
and mapped from disk, so only the rows a question touches are resident). Its vectors differ
slightly from sentence-transformers' (cosine 0.997 on average), enough to rank another item first
on 20 of 992 evaluation questions, nearly all near-ties, short of the fidelity gate
(``tests/test_fidelity.py``) on its own. So the bot serves it checked (``BOT_INT8_RECHECK``,
``bot.model.onnx_encoder.Rechecked``): a question whose decision is near its turning point is
embedded again by the fp32 model (measured 2026-12-02: 5.0 ms a question in int8, 10.3 ms in
fp32, one thread; about one question in six checked). An earlier export kept the feed-forward
output projections in fp32 (cosine 0.9990) at 6.9 ms a question, and still missed the gate alone
(976 / 992).

Pooling and normalization stay outside the graph (``bot.model.onnx_encoder`` does them); what it
needs (prompts, pooling, maximum length, padding) is written to ``encoder.json`` with a copy of
the tokenizer, so the export is a self-contained directory. ``bot.model.fetch`` runs this into a
temporary directory and swaps it in; a running bot never imports this module.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from bot.model.cache import (
    ENCODER_CONFIG,
    EXPORTER_VERSION,
    ONNX_FILES,
    ModelFetchError,
    directory_fingerprint,
    utc_now,
)

log = logging.getLogger(__name__)

OPSET = 17
#: What the int8 model quantizes (see the module docstring): the matrix products.
QUANTIZED_OPS = ("MatMul", "Attention")


def export_onnx(model_dir: Path, target: Path) -> dict[str, Any]:
    """Write the ONNX export of the sentence-transformers model in ``model_dir`` into
    ``target`` (an empty directory); return the record for its marker."""
    import torch
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    model = SentenceTransformer(str(model_dir), device="cpu")
    config = _encoder_config(model, model_dir)
    transformer: Any = model[0].auto_model
    # The optimizer recognises the plain attention pattern, not a fused SDPA call.
    transformer.set_attn_implementation("eager")
    wrapper = _last_hidden_state(transformer).eval()
    sample = model.tokenizer(["query: 样例", "passage: a longer sample text"], padding=True)
    inputs = tuple(
        torch.tensor(sample[name], dtype=torch.int64) for name in ("input_ids", "attention_mask")
    )
    raw = target / "_exported.onnx"
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter warns about itself and about traced Python conditions
        # (shape checks that hold for every input of this graph).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            inputs,
            str(raw),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    del model, transformer, wrapper
    exported = time.perf_counter()

    from onnxruntime.transformers.optimizer import optimize_model

    hidden = int(config["dimension"])
    heads = int(config.pop("heads"))
    optimized = optimize_model(
        str(raw), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0
    )
    fused = optimized.get_fused_operator_statistics()
    if not fused.get("Attention"):
        raise ModelFetchError(
            f"ONNX Runtime's optimizer fused no attention in the export of {model_dir}: this "
            "model is not BERT-like. Set BOT_EMBEDDING_BACKEND=torch to serve it as it is."
        )
    fp32 = target / ONNX_FILES["onnx"]
    # Weights in a file of their own: ONNX Runtime then maps it into memory instead of copying
    # it, and the word embeddings (250k rows, 384 MB in fp32) cost only the rows a question
    # touches (a loaded fp32 session: 141 MB resident instead of 574 MB; measured 2026-12-01).
    optimized.save_model_to_file(str(fp32), use_external_data_format=True)
    raw.unlink()
    del optimized
    optimised = time.perf_counter()

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    # The quantizer logs every tensor on the root logger, and advises a pre-processing step
    # whose shape inference the optimizer's fused operators are outside of anyway.
    root.setLevel(max(level, logging.ERROR))
    try:
        quantize_dynamic(
            fp32,
            target / ONNX_FILES["onnx-int8"],
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(QUANTIZED_OPS),
            use_external_data_format=True,
            # Fused operators (Attention, SkipLayerNormalization) are outside ONNX's shape
            # inference; their outputs are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)
    quantized = time.perf_counter()

    shutil.copyfile(model_dir / "tokenizer.json", target / "tokenizer.json")
    (target / ENCODER_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    seconds = {
        "export": round(exported - started, 1),
        "optimise": round(optimised - exported, 1),
        "quantize": round(quantized - optimised, 1),
    }
    log.info("ONNX export: %s s", seconds)
    return {
        "source": "onnx-export",
        "exporter_version": EXPORTER_VERSION,
        "source_dir": str(model_dir),
        "source_fingerprint": directory_fingerprint(model_dir),
        "files": dict(ONNX_FILES),
        "quantization": {
            "method": "onnxruntime.quantization.quantize_dynamic",
            "weights": "int8, per channel",
            "ops": list(QUANTIZED_OPS),
        },
        "fused": {k: v for k, v in fused.items() if v},
        "opset": OPSET,
        "seconds": seconds,
        "versions": _versions(),
        "created": utc_now(),
    }


def _last_hidden_state(transformer: Any) -> Any:
    """``transformer(input_ids, attention_mask).last_hidden_state`` as a module to export."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask)[0]

    return LastHiddenState()


def _encoder_config(model: Any, model_dir: Path) -> dict[str, Any]:
    """What the ONNX encoder must do around the graph to equal ``model.encode``."""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    modules = list(model)
    pooling = next((m for m in modules if isinstance(m, Pooling)), None)
    mode = getattr(pooling, "pooling_mode", None) if pooling is not None else None
    if mode not in ("mean", "cls") or (pooling is not None and not pooling.include_prompt):
        raise ModelFetchError(
            f"the model in {model_dir} pools with {mode!r}; the ONNX encoder does mean or CLS "
            "pooling over all tokens only. Set BOT_EMBEDDING_BACKEND=torch to serve it."
        )
    transformer = modules[0].auto_model
    return {
        "prompts": dict(model.prompts),
        "max_seq_length": int(model.max_seq_length),
        "pooling": mode,
        "normalize": any(isinstance(m, Normalize) for m in modules),
        "dimension": int(model.get_embedding_dimension()),
        "heads": int(transformer.config.num_attention_heads),
    }


def _versions() -> dict[str, str]:
    import contextlib
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out
