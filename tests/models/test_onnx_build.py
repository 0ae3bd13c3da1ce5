"""The low-memory model builder (rag.models.onnx_build) against onnxruntime-genai's stock builder on a tiny random
Qwen2 written here: the same initializers byte for byte, the same nodes, the same config files; its progress lines
and its silence on stdout."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime_genai")
onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = ["int4_accuracy_level=4", "prune_lm_head=true", "op_types_to_quantize=MatMul/Gather"]


def _tiny_qwen2(folder: Path, tied: bool) -> None:
    """A 2-layer Qwen2 (hidden 64, vocab 256) with random bf16 weights, in two safetensors shards, and a byte-level
    tokenizer with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=tied, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(folder), max_shard_size="100KB")
    vocab = {f"<{i}>": i for i in range(3)} | {chr(65 + i % 26) + str(i): i for i in range(3, 256)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<0>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<0>", bos_token="<1>", eos_token="<2>")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    fast.save_pretrained(str(folder))


def _build(module: str, hf: Path, out: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", module, "-i", str(hf), "-o", str(out), "-p", "int4", "-e", "cpu"]
    command += ["-c", str(out) + ".cache", "--extra_options", *OPTIONS]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _initializers(folder: Path) -> dict[str, tuple[int, tuple[int, ...], str]]:
    model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    data = (folder / "model.onnx.data").read_bytes()
    out = {}
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            where = {e.key: int(e.value) for e in tensor.external_data if e.key in ("offset", "length")}
            raw = data[where.get("offset", 0) : where.get("offset", 0) + where["length"]]
        else:
            raw = tensor.SerializeToString()
        out[tensor.name] = (tensor.data_type, tuple(tensor.dims), hashlib.sha256(raw).hexdigest())
    return out


def _nodes(folder: Path) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...], str]]:
    model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    return sorted(
        (n.op_type, n.name, tuple(n.input), tuple(n.output), str(sorted((a.name, str(a)) for a in n.attribute)))
        for n in model.graph.node
    )


@pytest.mark.parametrize("tied", [False, True], ids=["separate-lm-head", "tied-embeddings"])
def test_the_low_memory_builder_makes_the_stock_builders_model(tmp_path: Path, tied: bool) -> None:
    hf = tmp_path / "hf"
    _tiny_qwen2(hf, tied)
    assert len(list(hf.glob("model-*.safetensors"))) > 1  # read shard by shard
    stock = tmp_path / "stock"
    _build("onnxruntime_genai.models.builder", hf, stock)
    ours = tmp_path / "ours"
    done = _build("rag.models.onnx_build", hf, ours)

    expected = _initializers(stock)
    assert any(name.endswith("_Q4") for name in expected)  # the MatMuls (and the table) are int4 in both
    assert _initializers(ours) == expected
    assert _nodes(ours) == _nodes(stock)
    for name in ("genai_config.json", "tokenizer.json", "chat_template.jinja"):
        assert (ours / name).read_bytes() == (stock / name).read_bytes(), name

    lines = [json.loads(line) for line in done.stdout.splitlines()]  # stdout: only the progress lines
    assert lines[0] == {"total": 5} and [m["done"] for m in lines[1:]] == [1, 2, 3, 4, 5]
    assert [m["step"] for m in lines[1:]] == ["embedding", "layer 1/2", "layer 2/2", "output layer", "saved"]
