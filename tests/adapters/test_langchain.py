"""rag.adapters.langchain against the real langchain-core: Documents with rag's citations, filters, the Runnable
interface and an LCEL chain (with a fake LLM that echoes its prompt)."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path

import pytest
from adapters_support import Garden
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from rag.adapters.common import MissingExtraError
from rag.adapters.langchain import RagRetriever
from rag.errors import ConfigError, RagError
from rag.filters import Filters

FERNS_QUESTION = "How often should I water the ferns?"


def _names(docs: list[Document]) -> list[str]:
    return [Path(d.metadata["path"]).name for d in docs]


def test_invoke_returns_langchain_documents_with_the_right_file_first(garden: Garden) -> None:
    retriever = RagRetriever(pipeline=garden.pipeline, k=3)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(FERNS_QUESTION)
    assert docs and all(type(d) is Document for d in docs)
    assert _names(docs)[0] == "ferns.md"
    # the same passages, in the same order, as the pipeline's own search
    hits = garden.pipeline.retrieve(FERNS_QUESTION, 3)
    assert [d.page_content for d in docs] == [h.chunk.shown for h in hits]
    assert [d.id for d in docs] == [str(h.chunk.id) for h in hits]
    assert [d.metadata["score"] for d in docs] == [h.score for h in hits]


def test_metadata_carries_the_source_lines_offsets_and_a_citation(garden: Garden) -> None:
    doc = RagRetriever(pipeline=garden.pipeline, k=1).invoke(FERNS_QUESTION)[0]
    meta = doc.metadata
    original = garden.ferns.read_text(encoding="utf-8")
    assert meta["path"] == str(garden.ferns) and Path(meta["source"]).name == "ferns.md"
    assert "Water the ferns twice a week" in original[meta["start"] : meta["end"]]
    lines = original.splitlines()[meta["start_line"] - 1 : meta["end_line"]]
    assert any("Water the ferns twice a week" in line for line in lines)
    assert meta["citation"] == f"{meta['source']}:{meta['start_line']}-{meta['end_line']}"
    assert meta["heading"].startswith("Ferns") and meta["title"] == "Ferns"
    assert meta["language"] == "en" and meta["file_type"] == "markdown"
    assert meta["rank"] == 1 and isinstance(meta["chunk_id"], int) and meta["page"] is None
    assert meta["document_id"] and meta["location"] == f"lines {meta['start_line']}-{meta['end_line']}"


def test_k_limits_the_documents_and_invoke_can_override_it(garden: Garden) -> None:
    retriever = RagRetriever(pipeline=garden.pipeline, k=1)
    assert len(retriever.invoke(FERNS_QUESTION)) == 1
    assert len(retriever.invoke(FERNS_QUESTION, k=3)) == 3
    assert len(RagRetriever(pipeline=garden.pipeline).invoke(FERNS_QUESTION)) == 3  # top_k (5) > 3 chunks


@pytest.mark.parametrize(
    "filters",
    [["path=*pets/*"], "path=*pets/*", {"path": "*pets/*"}, Filters(path="*pets/*"), ["meta.team=pets"]],
    ids=["strings", "string", "mapping", "Filters", "meta"],
)
def test_filters_keep_the_other_files_out(garden: Garden, filters: object) -> None:
    retriever = RagRetriever(pipeline=garden.pipeline, k=3, filters=filters)
    docs = retriever.invoke(FERNS_QUESTION)
    assert sorted(_names(docs)) == ["cats.md", "tea.txt"]


def test_type_and_language_filters_and_per_call_filters(garden: Garden) -> None:
    text_only = RagRetriever(pipeline=garden.pipeline, k=3, filters=["type=text"])
    assert _names(text_only.invoke(FERNS_QUESTION)) == ["tea.txt"]
    assert RagRetriever(pipeline=garden.pipeline, filters=["lang=zh"]).invoke(FERNS_QUESTION) == []
    # filters given to invoke replace the retriever's for that call
    assert _names(text_only.invoke(FERNS_QUESTION, filters=["path=*garden/*"])) == ["ferns.md"]


def test_a_bad_filter_fails_when_the_retriever_is_made(garden: Garden) -> None:
    with pytest.raises(ConfigError, match="colour"):
        RagRetriever(pipeline=garden.pipeline, filters=["colour=red"])


def test_from_index_opens_the_folder(garden: Garden) -> None:
    retriever = RagRetriever.from_index(garden.pipeline.index_path, k=2, filters=["path=*garden/*"], quiet=True)
    try:
        assert _names(retriever.invoke(FERNS_QUESTION)) == ["ferns.md"]
    finally:
        retriever.pipeline.close()
    with pytest.raises(RagError):
        RagRetriever.from_index(garden.root / "no-index")


def test_async_and_batch_calls(garden: Garden) -> None:
    retriever = RagRetriever(pipeline=garden.pipeline, k=1)
    assert _names(asyncio.run(retriever.ainvoke(FERNS_QUESTION))) == ["ferns.md"]
    assert _names(asyncio.run(retriever.ainvoke("green tea", filters=["path=*pets/*"]))) == ["tea.txt"]
    batched = retriever.batch([FERNS_QUESTION, "How long do cats sleep?", "How hot should green tea be brewed?"])
    assert [_names(docs) for docs in batched] == [["ferns.md"], ["cats.md"], ["tea.txt"]]


def test_composes_in_an_lcel_chain_with_a_fake_llm(garden: Garden) -> None:
    """retriever | format -> prompt -> LLM -> parser: the LLM (a RunnableLambda that echoes its prompt) reads the
    top passage and its citation."""
    retriever = RagRetriever(pipeline=garden.pipeline, k=1)

    def format_docs(docs: list[Document]) -> str:
        return "\n\n".join(f"[{d.metadata['citation']}]\n{d.page_content}" for d in docs)

    def fake_llm(prompt: PromptValue) -> str:
        return "ECHO: " + prompt.to_string()

    prompt = ChatPromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}")
    chain = (
        {"context": retriever | RunnableLambda(format_docs), "question": RunnablePassthrough()}
        | prompt
        | RunnableLambda(fake_llm)
        | StrOutputParser()
    )
    out = chain.invoke(FERNS_QUESTION)
    assert out.startswith("ECHO: ")
    assert f"[{garden.ferns}:" in out and "Water the ferns twice a week" in out
    assert f"Question: {FERNS_QUESTION}" in out and "Cats sleep" not in out


def test_missing_langchain_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langchain_core", None)  # `import langchain_core` now fails
    monkeypatch.delitem(sys.modules, "rag.adapters.langchain")
    with pytest.raises(MissingExtraError, match=r"rag\[langchain\]") as caught:
        importlib.import_module("rag.adapters.langchain")
    assert isinstance(caught.value, ImportError) and "langchain-core" in str(caught.value)


@pytest.mark.slow
def test_real_embedder_on_real_files(real_index: tuple[object, Path]) -> None:
    """The default embedder (MiniLM) and hybrid search over three files of the sample corpus."""
    _, index = real_index
    retriever = RagRetriever.from_index(index, k=3)
    try:
        docs = retriever.invoke("When was the Transformer architecture introduced?")
        assert _names(docs)[0] == "transformer-architecture.md"
        top = docs[0].metadata
        original = Path(top["path"]).read_text(encoding="utf-8")
        assert "2017" in original[top["start"] : top["end"]] and "2017" in docs[0].page_content
        bm25 = retriever.invoke("What does BM stand for in BM25?", filters=["path=*bm25*"])
        assert bm25 and set(_names(bm25)) == {"bm25-lexical-search.txt"}
        assert "Best Matching" in bm25[0].page_content
        elsewhere = retriever.invoke("When was the Transformer introduced?", filters=["path=*retrieval-aug*"])
        assert elsewhere and set(_names(elsewhere)) == {"retrieval-augmented-generation.md"}
    finally:
        retriever.pipeline.close()


def test_page_content_is_the_display_text_and_offsets_point_into_the_raw_file(garden: Garden) -> None:
    """Markdown markup is read, not passed on: the link is its text and the entity its character in
    ``page_content``, while ``start``/``end`` still cut the original (raw) file."""
    doc = RagRetriever(pipeline=garden.pipeline, k=1).invoke("Where is the fern care guide?")[0]
    assert "fern care guide & keep the soil moist" in doc.page_content
    assert "](https://" not in doc.page_content and "&amp;" not in doc.page_content
    raw = garden.ferns.read_text(encoding="utf-8")[doc.metadata["start"] : doc.metadata["end"]]
    assert "[fern care guide](https://example.org/ferns) &amp;" in raw
