"""End-to-end with the real default models (offline) on the real sample corpus. Marked slow."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag import RagConfig, RagPipeline

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpora"
ENGLISH = [
    "transformer-architecture.md",
    "retrieval-augmented-generation.md",
    "bm25-lexical-search.txt",
    "subword-tokenization.md",
    "retrieval-evaluation.txt",
    "history-of-language-models.html",
]


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> RagPipeline:
    index = tmp_path_factory.mktemp("real") / "index"
    pipeline = RagPipeline(RagConfig(index=index, quiet=True))
    report = pipeline.ingest([CORPUS])
    assert report.files_added == 12 and not report.skipped
    return pipeline


def test_auto_embedder_picks_multilingual_for_the_mixed_corpus(sample_index: RagPipeline) -> None:
    info = sample_index.info()
    assert info.embedder == "e5-multilingual"
    assert info.dimension == 384
    assert info.chunks == info.vectors > 12


def test_english_question_is_answered_with_the_right_citation(sample_index: RagPipeline) -> None:
    answer = sample_index.ask("When was the Transformer architecture introduced?")
    assert not answer.refused
    assert "2017" in answer.text
    assert answer.citations, answer
    assert Path(answer.citations[0].source).name == "transformer-architecture.md"
    assert "[" + str(answer.citations[0].number) + "]" in answer.text
    cited = answer.citations[0]
    source_text = (CORPUS / "transformer-architecture.md").read_text(encoding="utf-8")
    assert source_text[cited.start : cited.end] == cited.text


def test_chinese_question_is_answered_in_chinese_from_the_chinese_document(sample_index: RagPipeline) -> None:
    answer = sample_index.ask("检索增强生成是哪一年提出的？")
    assert not answer.refused
    assert answer.language == "zh" and answer.grounding == "generated"
    assert "2020" in answer.text
    assert Path(answer.citations[0].source).name == "jiansuo-zengqiang-shengcheng.md"
    # a factoid gets a short answer: Chinese words, or the year itself copied from the Chinese passage
    body = re.sub(r"\s*\[\d+\]", "", answer.text).strip()
    assert _has_cjk(body) or "".join(body.split()) in "".join(answer.citations[0].text.split())
    explained = sample_index.ask("为什么检索增强生成要把检索和生成结合起来？")  # "why": sentences, in Chinese
    assert not explained.refused and _has_cjk(explained.text)


@pytest.mark.parametrize(
    ("question", "chinese"),
    [("What is the boiling point of the volcano Mauna Loa's lava?", False), ("如何做红烧肉？", True)],
)
def test_question_outside_the_corpus_is_refused(sample_index: RagPipeline, question: str, chinese: bool) -> None:
    answer = sample_index.ask(question)
    assert answer.refused
    assert answer.citations == []
    assert _has_cjk(answer.text) == chinese


def test_english_only_corpus_uses_minilm_and_answers(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ENGLISH:
        shutil.copy(CORPUS / name, docs / name)
    pipeline = RagPipeline(RagConfig(index=tmp_path / "index", quiet=True))
    pipeline.ingest([docs])
    assert pipeline.info().embedder == "minilm"
    answer = pipeline.ask("How many attention heads does the base Transformer model use?")
    assert not answer.refused and "8" in answer.text
    assert Path(answer.citations[0].source).name == "transformer-architecture.md"
    assert pipeline.ask("Who won the 2018 football World Cup?").refused


def test_bad_files_are_skipped_and_the_rest_is_searchable(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "zhongwen-fenci.md", docs / "zhongwen-fenci.md")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "blob.txt").write_bytes(b"\x00\x01\x02binary\x00" * 50)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n")
    (docs / "gbk.txt").write_bytes("向量检索把文本变成向量，再按余弦相似度查找最相近的段落。".encode("gbk"))
    pipeline = RagPipeline(RagConfig(index=tmp_path / "index", quiet=True, embedder="e5-multilingual"))
    report = pipeline.ingest([docs])
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"empty.txt", "blob.txt", "broken.pdf"}
    assert "empty" in reasons["empty.txt"] and "binary" in reasons["blob.txt"] and "PDF" in reasons["broken.pdf"]
    hits = pipeline.retrieve("余弦相似度查找段落", k=1)
    assert Path(hits[0].chunk.source).name == "gbk.txt"
    assert "余弦相似度" in hits[0].chunk.text


def test_cli_ask_cold_start_prints_answer_and_sources(sample_index: RagPipeline) -> None:
    env = {**os.environ, "RAG_INDEX": str(sample_index.index_path)}
    out = subprocess.run(
        [sys.executable, "-m", "rag", "ask", "jieba 是什么？", "--json", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    answer = json.loads(out.stdout)
    assert answer["refused"] is False
    assert ("jieba" in answer["text"] or "分词" in answer["text"]) and _has_cjk(answer["text"])  # says what it is
    assert Path(answer["citations"][0]["source"]).name == "zhongwen-fenci.md"
    plain = subprocess.run(
        [sys.executable, "-m", "rag", "ask", "What is BM25 based on?", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    assert "bm25-lexical-search.txt" in plain.stdout
    assert "[1]" in plain.stdout
