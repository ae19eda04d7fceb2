"""Set-up: export the sentence-transformers model to ONNX, optimise it, quantize it to int8.

Three steps, each with the standard tool: ``torch.onnx.export`` of the transformer (inputs
``input_ids`` and ``attention_mask``, output ``last_hidden_state``); ONNX Runtime's transformer
optimizer (``onnxruntime.transformers.optimizer``: fused attention, embedding and skip layer
norms, bias + GELU), kept as the fp32 model; and ONNX Runtime's dynamic quantization
(``onnxruntime.quantization.quantize_dynamic``: int8 weights per output channel, activations
quantized per call) for the int8 model.

The int8 model keeps the feed-forward output projections (the MatMuls fed by a GELU) in fp32.
Their inputs have the widest range of any activation in the model, and one uint8 scale for a
whole tensor loses them: with those quantized too, the embeddings' cosine with
sentence-transformers' was 0.9966 on average (0.9916 at worst) on the 520 evaluation questions;
kept in fp32, 0.9990 (0.9983), with two thirds of the weights still int8. That still ranks
another item first on 8 of the 520 (most of them out-of-scope questions, where the nearest
topics are near-ties), short of the fidelity gate (``tests/test_fidelity.py``), so the bot
serves the fp32 model by default (``BOT_EMBEDDING_BACKEND=onnx``); the int8 one is
``onnx-int8`` (measured 2026-12-01).

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
#: Activations whose consumer MatMul stays in fp32 in the int8 model (see the module docstring).
FP32_AFTER = frozenset({"Gelu", "BiasGelu", "FastGelu"})


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
    keep_fp32 = _fed_by(optimized.model, FP32_AFTER)
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
            nodes_to_exclude=keep_fp32,
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
            "fp32_nodes": sorted(keep_fp32),
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


def _fed_by(model: Any, producers: frozenset[str]) -> list[str]:
    """Names of the MatMul nodes of ``model`` (an ONNX ModelProto) whose first input is the
    output of a node of a type in ``producers``."""
    made_by = {out: node.op_type for node in model.graph.node for out in node.output}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and made_by.get(node.input[0]) in producers
    ]


def _versions() -> dict[str, str]:
    import contextlib
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out
