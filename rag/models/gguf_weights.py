"""A Qwen2 GGUF file written as a transformers folder one tensor at a time, in bounded memory.

transformers' own GGUF loader builds the whole model in memory before ``save_pretrained`` (about 7 GB at its peak
for the 1.5B). Here the GGUF is memory-mapped (``gguf.GGUFReader``), each tensor is de-quantised in row chunks,
cast to bfloat16 and appended to a safetensors shard of a few hundred MB, with ``model.safetensors.index.json``
beside the shards: the peak is one shard plus one chunk. The config and the tokenizer come from transformers'
reading of the GGUF metadata (no weights), so the folder is the one ``AutoModelForCausalLM.from_pretrained(...,
gguf_file=...)`` + ``save_pretrained`` makes, tensor for tensor.

llama.cpp's converter writes Qwen2's q/k projections unpermuted (only its Llama converter permutes them), so the
weights need no reordering; ``tests/models/test_gguf_weights.py`` checks the names, the shapes and the values.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import ModelLoadError

if TYPE_CHECKING:
    import gguf
    import numpy as np
    import torch

log = logging.getLogger(__name__)

SHARD_BYTES = 400 * 1024 * 1024  # bfloat16 bytes per shard: the most the writer holds at once
CHUNK_ELEMENTS = 1 << 24  # elements de-quantised at once (64 MB of float32)

# GGUF tensor names (llama.cpp's "blk.N.*" scheme) -> the transformers Qwen2ForCausalLM names.
_GLOBAL = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_BLOCK = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_BLOCK_NAME = re.compile(r"blk\.(\d+)\.(.+)")


def hf_name(gguf_name: str) -> str:
    """The transformers name of the Qwen2 GGUF tensor ``gguf_name``; refused for a tensor Qwen2 does not have."""
    if gguf_name in _GLOBAL:
        return _GLOBAL[gguf_name]
    match = _BLOCK_NAME.fullmatch(gguf_name)
    if match and match.group(2) in _BLOCK:
        return f"model.layers.{match.group(1)}.{_BLOCK[match.group(2)]}"
    raise ModelLoadError(f"the GGUF tensor {gguf_name!r} has no Qwen2 counterpart")


def _rows(tensor: gguf.ReaderTensor) -> Iterator[np.ndarray]:
    """``tensor`` de-quantised to float32 in chunks of whole rows (the last GGUF dimension is a row)."""
    import gguf

    data = tensor.data
    shape = [int(n) for n in reversed(tensor.shape.tolist())]
    if len(shape) == 1:
        yield gguf.quants.dequantize(data, tensor.tensor_type).reshape(shape)
        return
    cols = shape[-1]
    rows = data.reshape(-1, data.shape[-1])
    step = max(1, CHUNK_ELEMENTS // cols)
    for start in range(0, rows.shape[0], step):
        yield gguf.quants.dequantize(rows[start : start + step], tensor.tensor_type).reshape(-1, cols)


def _bf16(tensor: gguf.ReaderTensor) -> torch.Tensor:
    """``tensor`` as a contiguous bfloat16 torch tensor in its transformers shape; float32 -> bfloat16 rounds to
    nearest even, as ``Tensor.to`` does in transformers' loader."""
    import torch

    shape = [int(n) for n in reversed(tensor.shape.tolist())]
    out = torch.empty(shape, dtype=torch.bfloat16)
    flat = out.view(-1, shape[-1]) if len(shape) > 1 else out.view(1, -1)
    row = 0
    for chunk in _rows(tensor):
        chunk = chunk.reshape(-1, flat.shape[1])
        part = torch.from_numpy(chunk if chunk.flags.writeable else chunk.copy())  # F32 tensors are the mapped file
        flat[row : row + part.shape[0]] = part.to(torch.bfloat16)
        row += part.shape[0]
    return out


def _shards(sizes: list[tuple[str, int]], limit: int) -> list[list[str]]:
    """GGUF tensor names grouped, in file order, into shards of at most ``limit`` bytes (a larger tensor alone)."""
    shards: list[list[str]] = [[]]
    used = 0
    for name, size in sizes:
        if shards[-1] and used + size > limit:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += size
    return shards


def write_weights(
    gguf_file: Path, out: Path, shard_bytes: int = SHARD_BYTES, progress: Callable[[int, int], None] | None = None
) -> int:
    """The tensors of the Qwen2 GGUF ``gguf_file`` written to ``out`` as bfloat16 safetensors shards and
    ``model.safetensors.index.json``; ``progress(done, total)`` after each tensor. Returns the number of tensors."""
    import gguf
    from safetensors.torch import save_file

    reader = gguf.GGUFReader(str(gguf_file))
    tensors = {tensor.name: tensor for tensor in reader.tensors}
    sizes = [(name, int(tensor.n_elements) * 2) for name, tensor in tensors.items()]
    shards = _shards(sizes, shard_bytes)
    out.mkdir(parents=True, exist_ok=True)
    weight_map: dict[str, str] = {}
    done = 0
    for number, names in enumerate(shards, start=1):
        file = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        shard: dict[str, torch.Tensor] = {}
        for name in names:
            shard[hf_name(name)] = _bf16(tensors[name])
            weight_map[hf_name(name)] = file
            done += 1
            if progress is not None:
                progress(done, len(tensors))
        save_file(shard, str(out / file), metadata={"format": "pt"})
        del shard
    index = {"metadata": {"total_size": sum(size for _, size in sizes)}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return len(tensors)


def write_config_and_tokenizer(gguf_file: Path, out: Path) -> None:
    """``out/config.json``, ``generation_config.json`` and the tokenizer files, read by transformers from the GGUF
    metadata (its weights are not loaded): the files ``save_pretrained`` writes for the de-quantised model."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    folder, name = str(gguf_file.parent), gguf_file.name
    config = AutoConfig.from_pretrained(folder, gguf_file=name, local_files_only=True)
    if getattr(config, "model_type", None) != "qwen2":
        raise ModelLoadError(f"{gguf_file} holds a {getattr(config, 'model_type', '?')} model, not qwen2")
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    config.architectures = ["Qwen2ForCausalLM"]
    config.save_pretrained(str(out))
    GenerationConfig.from_model_config(config).save_pretrained(str(out))
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    tokenizer.save_pretrained(str(out))


def write_transformers_folder(gguf_file: Path, out: Path, progress: Callable[[int, int], None] | None = None) -> None:
    """The Qwen2 GGUF ``gguf_file`` as a bfloat16 transformers folder ``out`` (weights, config, tokenizer)."""
    write_weights(gguf_file, out, progress=progress)
    write_config_and_tokenizer(gguf_file, out)


def main(argv: list[str] | None = None) -> None:
    """``python -m rag.models.gguf_weights GGUF OUT``: the folder written in this (child) process, so its memory
    is returned when it ends; one JSON line per tensor on stdout (``{"done": k, "total": n}``), the libraries'
    warnings and output on stderr."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m rag.models.gguf_weights GGUF OUT")
    pipe = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    warnings.filterwarnings("ignore")

    def report(done: int, total: int) -> None:
        pipe.write(json.dumps({"done": done, "total": total}) + "\n")

    write_transformers_folder(Path(args[0]), Path(args[1]), progress=report)


if __name__ == "__main__":
    main()
