"""The light question engine of the bundled MiniLM (rag.embed.light): no torch, the full engine's vectors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.embed import openvino as openvino_backend
from rag.embed.hardware import cpu_has_int8_dot, cpu_has_native_bf16
from rag.embed.light import LightQueryEngine, mean_pooled
from rag.embed.st import MINILM, SentenceTransformerEmbedder
from rag.models.bundled import minilm_path

QUESTIONS = ["What is BM25 and how does it rank documents?", "how do I open a file", "检索增强生成是什么？"]

pytestmark = pytest.mark.skipif(
    not openvino_backend.available() or not (cpu_has_int8_dot() or cpu_has_native_bf16()),
    reason="MiniLM runs on torch float32 here (no OpenVINO, or no bf16/int8 instructions): no light engine",
)


def test_the_bundled_minilm_is_mean_pooled_and_normalised() -> None:
    assert mean_pooled(Path(minilm_path()))


def test_mean_pooled_refuses_other_pipelines(tmp_path: Path) -> None:
    (tmp_path / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Transformer"}]))
    assert not mean_pooled(tmp_path)
    assert not mean_pooled(tmp_path / "missing")


@pytest.mark.slow
def test_questions_use_the_light_engine_once_the_ir_is_cached(cache: Path) -> None:
    before = SentenceTransformerEmbedder(MINILM)
    assert before._light_engine() is None  # nothing converted in this cache yet: the full model
    full = before.embed_documents(QUESTIONS)  # loads fully, converts and caches the IR
    fresh = SentenceTransformerEmbedder(MINILM)
    light = fresh.embed_queries(QUESTIONS)
    assert isinstance(fresh._light, LightQueryEngine) and fresh._model is None
    assert light.shape == full.shape == (3, 384)
    assert float((light * full).sum(axis=1).min()) > 0.9999
    assert np.allclose(np.linalg.norm(light, axis=1), 1.0, atol=1e-5)
    long = fresh.embed_queries(["word " * 600])  # truncated at the model's 256 tokens, as the full model does
    assert float((long * before.embed_documents(["word " * 600])).sum()) > 0.9999


@pytest.mark.slow
def test_many_questions_are_embedded_in_batches_in_their_order(cache: Path) -> None:
    from rag.embed import light as light_module

    SentenceTransformerEmbedder(MINILM).embed_documents(["make sure the IR is cached"])
    engine = SentenceTransformerEmbedder(MINILM)._light_engine()
    assert isinstance(engine, LightQueryEngine)
    texts = [f"question {i}: " + "why " * (i % 7) + QUESTIONS[i % 3] for i in range(light_module.BATCH * 2 + 5)]
    together = engine.embed(texts)
    alone = np.vstack([engine.embed([t]) for t in texts])
    assert together.shape == (len(texts), 384)
    assert float((together * alone).sum(axis=1).min()) > 0.999  # each row is its own text's vector (int8: not exact)


@pytest.mark.slow
def test_a_cold_question_imports_neither_torch_nor_sentence_transformers(cache: Path) -> None:
    SentenceTransformerEmbedder(MINILM).embed_documents(["make sure the IR is cached"])
    code = (
        "import sys; from rag.embed.registry import create_embedder; "
        "v = create_embedder('minilm').embed_queries(['what is BM25?']); "
        "print(v.shape[1], 'torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "RAG_CACHE_DIR": str(cache)}
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["384", "False", "False"]
