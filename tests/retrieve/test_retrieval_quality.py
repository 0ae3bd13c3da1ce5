"""Metrics against hand-computed values, BEIR loading, filters before top-k, the lexical side in Chinese,
and the reranker with a tiny cross-encoder built here (no reranker weights ship on PyPI)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.errors import ConfigError, RagError
from rag.evaluation import (
    exact_match,
    f1_score,
    load_beir,
    mrr_at_k,
    ndcg_at_k,
    normalize_en,
    normalize_zh,
    percentile,
    recall_at_k,
    score_retrieval,
    strip_citations,
)
from rag.filters import Filters
from rag.pipeline import RagPipeline
from rag.text.lexical import fts_query, tokenize


def test_ndcg_recall_mrr_by_hand() -> None:
    ranked = ["d3", "d1", "d7", "d2"]
    relevant = {"d1", "d2"}
    # DCG = 1/log2(3) + 1/log2(5); ideal = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(expected)
    assert ndcg_at_k(ranked, relevant, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(["d1", "d2"], relevant) == pytest.approx(1.0)
    assert ndcg_at_k(["x"], relevant) == 0.0
    assert recall_at_k(ranked, relevant, 2) == 0.5
    assert recall_at_k(ranked, relevant, 4) == 1.0
    assert mrr_at_k(ranked, relevant, 10) == 0.5
    assert mrr_at_k(ranked, {"d2"}, 3) == 0.0
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def test_answer_metrics_by_hand() -> None:
    assert normalize_en("The  Cat, sat!") == "cat sat"
    assert exact_match("the Denver Broncos.", ["Denver Broncos"], "en") == 1.0
    # pred tokens: denver broncos won; gold: denver broncos -> P=2/3 R=1 F1=0.8
    assert f1_score("Denver Broncos won", ["Denver Broncos"], "en") == pytest.approx(0.8)
    assert f1_score("nothing", ["Denver Broncos", "nothing at all"], "en") == pytest.approx(0.5)
    assert normalize_zh("２０２０ 年，提出。") == "２０２０年提出"
    # chars: 于2020年提出 (8) vs 2020年 (5): common 5 -> P=5/8 R=1 -> F1 = 10/13
    assert f1_score("于2020年提出", ["2020年"], "zh") == pytest.approx(2 * (5 / 8) / (5 / 8 + 1))
    assert exact_match("2020年。", ["2020 年"], "zh") == 1.0
    assert strip_citations("It was 2017. [1][2]") == "It was 2017."


def _write_beir(root: Path) -> Path:
    root.mkdir()
    corpus = [
        {"_id": "a", "title": "Transformers", "text": "The Transformer was introduced in 2017."},
        {"_id": "b", "title": "BM25", "text": "BM25 ranks documents by term frequency."},
        {"_id": "c", "title": "", "text": "FAISS searches dense vectors quickly."},
    ]
    queries = [{"_id": "q1", "text": "When was the Transformer introduced?"}, {"_id": "q2", "text": "term frequency"}]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus), encoding="utf-8")
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries), encoding="utf-8")
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ta\t1\nq2\tb\t1\n", encoding="utf-8")
    return root


def test_load_beir_and_score_a_tiny_set(tmp_path: Path, fake_pipeline: Callable[..., RagPipeline]) -> None:
    data = load_beir(_write_beir(tmp_path / "set"))
    assert set(data.corpus) == {"a", "b", "c"} and data.qrels == {"q1": {"a"}, "q2": {"b"}}
    docs = {d.path: d.text for d in data.documents()}
    assert docs["beir:a"].startswith("Transformers\nThe Transformer") and docs["beir:c"].startswith("FAISS")
    pipeline = fake_pipeline(retrieval="lexical")
    pipeline.ingest_documents(data.documents(), total=3)
    scores = score_retrieval(pipeline, data)
    assert scores.queries == 2
    assert scores.ndcg_at_10 == pytest.approx(1.0) and scores.mrr_at_10 == pytest.approx(1.0)
    again = pipeline.ingest_documents(data.documents())
    assert again.files_unchanged == 3 and again.chunks_added == 0


def test_load_beir_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(RagError, match=r"corpus\.jsonl is missing"):
        load_beir(tmp_path)
    root = _write_beir(tmp_path / "set")
    with pytest.raises(RagError, match=r"no qrels/dev\.tsv"):
        load_beir(root, split="dev")


def test_chinese_is_segmented_for_bm25() -> None:
    tokens = tokenize("检索增强生成由研究人员提出 BM25 Ranking")
    assert "检索" in tokens and "生成" in tokens and "bm25" in tokens and "ranking" in tokens
    assert '"检索"' in fts_query("检索增强生成")


def test_queries_leave_out_function_words_unless_nothing_else_is_left() -> None:
    assert fts_query("How do I parse the command line?") == '"parse" OR "command" OR "line"'
    assert '"的"' not in fts_query("中文的分词") and '"分词"' in fts_query("中文的分词")
    assert fts_query("to be or not to be") == '"to" OR "be" OR "or" OR "not"'  # all function words: kept


def test_lexical_retrieval_finds_chinese_passages(corpus_dir: Path, fake_pipeline: Callable[..., RagPipeline]) -> None:
    pipeline = fake_pipeline(retrieval="lexical")
    pipeline.ingest([corpus_dir])
    hits = pipeline.retrieve("中文分词工具", k=3)
    assert Path(hits[0].chunk.source).name == "zhongwen-fenci.md"


def test_filters_apply_before_top_k(corpus_dir: Path, fake_pipeline: Callable[..., RagPipeline]) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([corpus_dir])
    zh_chunks = sum(1 for d in pipeline.documents() if d.language == "zh" for _ in range(d.n_chunks))
    for mode in ("dense", "lexical", "hybrid"):
        pipeline.config = pipeline.config.replace(retrieval=mode)
        hits = pipeline.retrieve("FAISS 向量 Transformer attention", k=5, filters={"language": ["zh"]})
        assert hits and all(h.chunk.metadata["language"] == "zh" for h in hits)
        if mode == "dense":  # dense always has k candidates when k chunks match
            assert len(hits) == min(5, zh_chunks)
        md = pipeline.retrieve("retrieval", k=4, filters=Filters(file_type=("markdown",)))
        assert md and all(h.chunk.source.endswith(".md") for h in md)
        one = pipeline.retrieve("retrieval", k=10, filters={"path": "*bm25-lexical-search.txt"})
        assert one and {Path(h.chunk.source).name for h in one} == {"bm25-lexical-search.txt"}


def test_user_metadata_filter(tmp_path: Path, corpus_dir: Path, fake_pipeline: Callable[..., RagPipeline]) -> None:
    team = tmp_path / "team"
    team.mkdir()
    (team / "notes.txt").write_text("Our vector search notes mention FAISS and HNSW graphs.", encoding="utf-8")
    pipeline = fake_pipeline(retrieval="dense")
    pipeline.ingest([corpus_dir])
    pipeline.ingest([team], metadata={"team": "search"})
    hits = pipeline.retrieve("FAISS HNSW", k=3, filters=Filters.parse(["meta.team=search"]))
    assert [Path(h.chunk.source).name for h in hits] == ["notes.txt"]
    assert pipeline.retrieve("FAISS HNSW", k=3, filters={"meta": {"team": "other"}}) == []


def test_filter_parsing_errors() -> None:
    assert Filters.parse(["type=markdown,pdf", "lang=zh"]) == Filters(None, ("markdown", "pdf"), ("zh",), {})
    with pytest.raises(ConfigError, match="unknown filter key 'colour'"):
        Filters.parse(["colour=red"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        Filters.parse(["path"])
    with pytest.raises(ConfigError, match="unknown filter field"):
        Filters.from_mapping({"author": "x"})


def _tiny_cross_encoder(folder: Path, words: list[str]) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words))]
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(vocab), encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=512,
        num_labels=1,
    )
    import torch

    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_reranker_reorders_candidates_with_a_real_cross_encoder(
    tmp_path: Path, corpus_dir: Path, fake_pipeline: Callable[..., RagPipeline]
) -> None:
    from sentence_transformers import CrossEncoder

    words = [w for t in corpus_dir.glob("*.md") for w in tokenize(t.read_text(encoding="utf-8"))]
    model = _tiny_cross_encoder(tmp_path / "ce", words)
    plain = fake_pipeline(rerank_candidates=12)
    plain.ingest([corpus_dir])
    question = "How many attention heads does the Transformer use?"
    candidates = plain.retrieve(question, k=12)
    reranked_pipeline = fake_pipeline(rerank=str(model), rerank_candidates=12)
    hits = reranked_pipeline.retrieve(question, k=4)
    expected = CrossEncoder(str(model)).predict([(question, h.chunk.indexed) for h in candidates])
    order = sorted(range(len(candidates)), key=lambda i: -float(expected[i]))[:4]
    assert order != [0, 1, 2, 3]  # the cross-encoder disagrees with retrieval, so keeping its order would fail
    assert [h.chunk.id for h in hits] == [candidates[i].chunk.id for i in order]
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert hits[0].score == pytest.approx(float(expected[order[0]]), rel=1e-4)


def test_missing_reranker_is_a_clear_error(corpus_dir: Path, fake_pipeline: Callable[..., RagPipeline]) -> None:
    from rag.errors import ModelLoadError

    pipeline = fake_pipeline(rerank="/nonexistent/cross-encoder")
    pipeline.ingest([corpus_dir])
    with pytest.raises(ModelLoadError, match="could not load reranker"):
        pipeline.retrieve("anything")


def test_answer_contained_and_faithfulness() -> None:
    from rag.evaluation import answer_contained, faithfulness
    from rag.types import SentenceSupport

    assert answer_contained("It was introduced in  2017 [1].", ["2017"], "en") == 1.0
    assert answer_contained("The TRANSFORMER paper", [["transformer paper"], "x"], "en") == 1.0  # nested lists
    assert answer_contained("于 2020 年提出", ["2020年"], "zh") == 1.0  # CJK: spaces do not count
    assert answer_contained("in 2018", ["2017"], "en") == 0.0 and answer_contained("x", [""], "en") == 0.0

    from types import SimpleNamespace

    answer = SimpleNamespace(
        supported=[
            SentenceSupport("Made in 2017. [1]", cited=[1], passages=[1, 2]),
            SentenceSupport("Invented by aliens. [2]", cited=[2], passages=[]),
            SentenceSupport("Uncited but true.", cited=[], passages=[1]),
        ]
    )
    assert faithfulness(answer) == 1 / 3  # only the first sentence is supported by a passage it cites
    assert faithfulness(SimpleNamespace(supported=[])) == 0.0
