"""requantized_gguf: matrices rewritten as Q8_0/F16, vectors as f32, metadata (arrays and strings) kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.errors import ModelLoadError
from rag.models.convert import requantized_gguf

gguf = pytest.importorskip("gguf")


def _toy(path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    tensors = {"blk.0.attn_q.weight": rng.standard_normal((64, 96)).astype(np.float32)}
    tensors["blk.0.attn_norm.weight"] = rng.standard_normal(96).astype(np.float32)
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_block_count(1)
    writer.add_chat_template("{{ messages }}")
    writer.add_token_list(["a", "b", "<|im_end|>"])
    writer.add_file_type(15)
    for name, data in tensors.items():
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tensors


@pytest.mark.parametrize(("kind", "qtype", "tolerance"), [("q8_0", "Q8_0", 0.05), ("f16", "F16", 0.005)])
def test_matrices_are_requantized_and_metadata_kept(tmp_path: Path, kind: str, qtype: str, tolerance: float) -> None:
    tensors = _toy(tmp_path / "toy.gguf", np.random.default_rng(0))
    requantized_gguf(tmp_path / "toy.gguf", tmp_path / "out.gguf", kind)
    reader = gguf.GGUFReader(str(tmp_path / "out.gguf"))
    assert reader.fields["general.architecture"].contents() == "qwen2"
    assert reader.fields["tokenizer.chat_template"].contents() == "{{ messages }}"
    assert reader.fields["tokenizer.ggml.tokens"].contents() == ["a", "b", "<|im_end|>"]
    assert reader.fields["qwen2.block_count"].contents() == 1
    assert reader.fields["general.file_type"].contents() == {"q8_0": 7, "f16": 1}[kind]
    read = {t.name: t for t in reader.tensors}
    assert read["blk.0.attn_q.weight"].tensor_type.name == qtype
    assert read["blk.0.attn_norm.weight"].tensor_type.name == "F32"
    for name, original in tensors.items():
        back = gguf.quants.dequantize(read[name].data, read[name].tensor_type).reshape(original.shape)
        assert np.max(np.abs(back - original)) <= tolerance * np.max(np.abs(original))


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    _toy(tmp_path / "toy.gguf", np.random.default_rng(1))
    with pytest.raises(ModelLoadError, match="cannot requantize to 'q3_k'"):
        requantized_gguf(tmp_path / "toy.gguf", tmp_path / "out.gguf", "q3_k")
    assert not (tmp_path / "out.gguf").exists()
