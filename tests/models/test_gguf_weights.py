"""The GGUF -> safetensors writer on a tiny Qwen2 GGUF written here with gguf.GGUFWriter: names mapped to
transformers', shapes in transformers' order, values as gguf de-quantises them (rounded to bf16), tensors split
into shards with an index that transformers reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.errors import ModelLoadError
from rag.models import gguf_weights
from rag.models.gguf_weights import hf_name, write_weights

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")


def _tiny_gguf(path: Path) -> dict[str, np.ndarray]:
    """Two blocks of a Qwen2-shaped model (hidden 64, kv 32, ffn 96, vocab 40): matrices in Q8_0 and F16, vectors
    in F32. Returns the float32 tensors by GGUF name, in transformers' shape (rows = output features)."""
    rng = np.random.default_rng(0)
    hidden, kv, ffn, vocab = 64, 32, 96, 40
    shapes = {"token_embd.weight": (vocab, hidden), "output_norm.weight": (hidden,), "output.weight": (vocab, hidden)}
    for b in range(2):
        shapes |= {
            f"blk.{b}.attn_norm.weight": (hidden,),
            f"blk.{b}.attn_q.weight": (hidden, hidden),
            f"blk.{b}.attn_q.bias": (hidden,),
            f"blk.{b}.attn_k.weight": (kv, hidden),
            f"blk.{b}.attn_k.bias": (kv,),
            f"blk.{b}.attn_v.weight": (kv, hidden),
            f"blk.{b}.attn_v.bias": (kv,),
            f"blk.{b}.attn_output.weight": (hidden, hidden),
            f"blk.{b}.ffn_norm.weight": (hidden,),
            f"blk.{b}.ffn_gate.weight": (ffn, hidden),
            f"blk.{b}.ffn_up.weight": (ffn, hidden),
            f"blk.{b}.ffn_down.weight": (hidden, ffn),
        }
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_block_count(2)
    expected: dict[str, np.ndarray] = {}
    for i, (name, shape) in enumerate(shapes.items()):
        values = rng.standard_normal(shape).astype(np.float32)
        if len(shape) == 1:
            writer.add_tensor(name, values)
        elif i % 2:
            q8 = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(values, q8), raw_dtype=q8)
            values = gguf.quants.dequantize(gguf.quants.quantize(values, q8), q8).reshape(shape)
        else:
            values = values.astype(np.float16)
            writer.add_tensor(name, values)
            values = values.astype(np.float32)
        expected[name] = values
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected


def test_gguf_names_map_to_the_transformers_qwen2_names() -> None:
    assert hf_name("token_embd.weight") == "model.embed_tokens.weight"
    assert hf_name("output.weight") == "lm_head.weight"
    assert hf_name("output_norm.weight") == "model.norm.weight"
    assert hf_name("blk.11.attn_k.bias") == "model.layers.11.self_attn.k_proj.bias"
    assert hf_name("blk.0.ffn_down.weight") == "model.layers.0.mlp.down_proj.weight"
    assert hf_name("blk.3.ffn_norm.weight") == "model.layers.3.post_attention_layernorm.weight"
    with pytest.raises(ModelLoadError, match="no Qwen2 counterpart"):
        hf_name("blk.0.attn_q_norm.weight")  # a Qwen3 tensor


def test_the_tensors_are_written_in_shards_with_their_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors import safe_open

    expected = _tiny_gguf(tmp_path / "tiny.gguf")
    monkeypatch.setattr(gguf_weights, "CHUNK_ELEMENTS", 64 * 8)  # several row chunks per matrix
    seen: list[tuple[int, int]] = []
    count = write_weights(
        tmp_path / "tiny.gguf", tmp_path / "hf", shard_bytes=20_000, progress=lambda d, t: seen.append((d, t))
    )
    assert count == len(expected) and seen[-1] == (count, count)
    index = json.loads((tmp_path / "hf" / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 2 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    assert set(index["weight_map"]) == {hf_name(name) for name in expected}
    sizes = [(tmp_path / "hf" / f).stat().st_size for f in files]
    assert max(sizes) < 20_000 + 8_000  # a shard holds at most its limit (plus one tensor and the header)
    for name, values in expected.items():
        with safe_open(str(tmp_path / "hf" / index["weight_map"][hf_name(name)]), "pt") as handle:
            tensor = handle.get_tensor(hf_name(name))
        assert tensor.dtype == torch.bfloat16 and tuple(tensor.shape) == values.shape
        assert torch.equal(tensor, torch.from_numpy(values).to(torch.bfloat16)), name
    assert index["metadata"]["total_size"] == sum(v.size * 2 for v in expected.values())
