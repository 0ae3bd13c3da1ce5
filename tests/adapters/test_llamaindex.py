"""rag.adapters.llamaindex against the real llama-index-core: NodeWithScore(TextNode)s with rag's citations,
filters, QueryBundle and async retrieval, and a RetrieverQueryEngine answering with MockLLM (which echoes the
prompt it is given, so the test reads what the LLM was shown)."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path

import pytest
from adapters_support import Garden
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from rag.adapters.common import MissingExtraError
from rag.adapters.llamaindex import RagRetriever
from rag.errors import ConfigError
from rag.filters import Filters

FERNS_QUESTION = "How often should I water the ferns?"


def _names(nodes: list[NodeWithScore]) -> list[str]:
    return [Path(n.node.metadata["path"]).name for n in nodes]


def test_retrieve_returns_text_nodes_with_the_right_file_first(garden: Garden) -> None:
    retriever = RagRetriever(garden.pipeline, k=3)
    assert isinstance(retriever, BaseRetriever)
    nodes = retriever.retrieve(FERNS_QUESTION)
    assert nodes and all(type(n) is NodeWithScore and type(n.node) is TextNode for n in nodes)
    assert _names(nodes)[0] == "ferns.md"
    hits = garden.pipeline.retrieve(FERNS_QUESTION, 3)
    assert [n.node.get_content() for n in nodes] == [h.chunk.shown for h in hits]
    assert [n.score for n in nodes] == [h.score for h in hits]
    assert [n.node.node_id for n in nodes] == [str(h.chunk.id) for h in hits]
    # a QueryBundle is taken as well as a string
    assert _names(retriever.retrieve(QueryBundle(FERNS_QUESTION))) == _names(nodes)


def test_node_carries_the_source_lines_offsets_and_a_citation(garden: Garden) -> None:
    node = RagRetriever(garden.pipeline, k=1).retrieve(FERNS_QUESTION)[0].node
    meta = node.metadata
    original = garden.ferns.read_text(encoding="utf-8")
    assert meta["path"] == str(garden.ferns) and Path(meta["source"]).name == "ferns.md"
    assert node.start_char_idx == meta["start"] and node.end_char_idx == meta["end"]
    assert "Water the ferns twice a week" in original[node.start_char_idx : node.end_char_idx]
    lines = original.splitlines()[meta["start_line"] - 1 : meta["end_line"]]
    assert any("Water the ferns twice a week" in line for line in lines)
    assert meta["citation"] == f"{meta['source']}:{meta['start_line']}-{meta['end_line']}"
    assert meta["heading"].startswith("Ferns") and meta["language"] == "en"
    assert node.ref_doc_id == meta["document_id"]
    # the LLM reads the citation beside the text, not the offsets and scores; nothing of it is embedded
    shown = node.get_content(metadata_mode=MetadataMode.LLM)
    assert f"citation: {meta['citation']}" in shown and "similarity" not in shown and "chunk_id" not in shown
    assert node.get_content(metadata_mode=MetadataMode.EMBED) == node.get_content()


@pytest.mark.parametrize(
    "filters",
    [["path=*pets/*"], {"path": "*pets/*"}, Filters(path="*pets/*"), ["meta.team=pets"]],
    ids=["strings", "mapping", "Filters", "meta"],
)
def test_filters_keep_the_other_files_out(garden: Garden, filters: object) -> None:
    nodes = RagRetriever(garden.pipeline, k=3, filters=filters).retrieve(FERNS_QUESTION)
    assert sorted(_names(nodes)) == ["cats.md", "tea.txt"]


def test_k_language_filter_and_bad_filters(garden: Garden) -> None:
    assert len(RagRetriever(garden.pipeline, k=1).retrieve(FERNS_QUESTION)) == 1
    assert RagRetriever(garden.pipeline, filters=["lang=zh"]).retrieve(FERNS_QUESTION) == []
    with pytest.raises(ConfigError, match="colour"):
        RagRetriever(garden.pipeline, filters=["colour=red"])


def test_from_index_and_async_retrieve(garden: Garden) -> None:
    retriever = RagRetriever.from_index(garden.pipeline.index_path, k=1, filters=["path=*pets/*"], quiet=True)
    try:
        assert _names(asyncio.run(retriever.aretrieve("How long do cats sleep?"))) == ["cats.md"]
        assert _names(retriever.retrieve("green tea")) == ["tea.txt"]
    finally:
        retriever.pipeline.close()


def test_plugs_into_a_retriever_query_engine(garden: Garden) -> None:
    engine = RetrieverQueryEngine.from_args(RagRetriever(garden.pipeline, k=1), llm=MockLLM())
    response = engine.query(FERNS_QUESTION)
    assert _names(response.source_nodes) == ["ferns.md"]
    prompt = str(response)  # MockLLM answers with its prompt
    citation = response.source_nodes[0].node.metadata["citation"]
    assert f"citation: {citation}" in prompt and "Water the ferns twice a week" in prompt
    assert FERNS_QUESTION in prompt and "Cats sleep" not in prompt
    assert _names(asyncio.run(engine.aquery(FERNS_QUESTION)).source_nodes) == ["ferns.md"]


def test_missing_llama_index_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_index.core", None)  # `import llama_index.core` now fails
    monkeypatch.delitem(sys.modules, "rag.adapters.llamaindex")
    with pytest.raises(MissingExtraError, match=r"rag\[llamaindex\]") as caught:
        importlib.import_module("rag.adapters.llamaindex")
    assert isinstance(caught.value, ImportError) and "llama-index-core" in str(caught.value)


@pytest.mark.slow
def test_real_embedder_on_real_files(real_index: tuple[object, Path]) -> None:
    """The default embedder (MiniLM) and hybrid search over three files of the sample corpus."""
    _, index = real_index
    retriever = RagRetriever.from_index(index, k=3)
    try:
        nodes = retriever.retrieve("When was the Transformer architecture introduced?")
        assert _names(nodes)[0] == "transformer-architecture.md"
        top = nodes[0].node
        original = Path(top.metadata["path"]).read_text(encoding="utf-8")
        assert "2017" in original[top.start_char_idx : top.end_char_idx] and "2017" in top.get_content()
        only_bm25 = RagRetriever(retriever.pipeline, k=3, filters=["path=*bm25*"])
        bm25 = only_bm25.retrieve("What does BM stand for in BM25?")
        assert bm25 and set(_names(bm25)) == {"bm25-lexical-search.txt"}
        assert "Best Matching" in bm25[0].node.get_content()
    finally:
        retriever.pipeline.close()
