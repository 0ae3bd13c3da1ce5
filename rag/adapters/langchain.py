"""A LangChain retriever over a ``RagPipeline`` (extra ``rag[langchain]``: langchain-core).

An app built on LangChain switches its retrieval to rag's (hybrid dense + BM25, filters applied before top-k, the
configured reranker, citations with lines and pages) by swapping its retriever::

    from rag.adapters.langchain import RagRetriever
    retriever = RagRetriever.from_index("indexes/main", k=4, filters=["path=docs/*"])

``retriever.invoke(question)`` returns ``langchain_core.documents.Document``s, best first: ``page_content`` is the
passage as rag's answers read it (the display text), ``metadata`` says where it is (``rag.adapters.common.metadata``:
``source``, ``start_line``/``end_line``, ``page``, ``heading``, ``score``, a ready ``citation`` such as
``docs/a.md:12-30``...). It is a Runnable, so it composes in LCEL chains (``retriever | format | prompt | llm``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.adapters.common import FilterSpec, as_filters, metadata, require

require("langchain_core", "langchain", "langchain-core")

from langchain_core.callbacks import (  # noqa: E402  (after the check that names the extra)
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.runnables.config import run_in_executor  # noqa: E402
from pydantic import ConfigDict, field_validator  # noqa: E402

from rag.filters import Filters  # noqa: E402
from rag.pipeline import RagPipeline  # noqa: E402
from rag.types import Hit  # noqa: E402

__all__ = ["RagRetriever", "to_document"]


def to_document(hit: Hit) -> Document:
    """One retrieved passage as a LangChain ``Document`` (``id`` is rag's chunk id, as text)."""
    chunk = hit.chunk
    return Document(
        page_content=chunk.shown,
        metadata=metadata(hit),
        id=None if chunk.id is None else str(chunk.id),
    )


class RagRetriever(BaseRetriever):
    """``RagPipeline.retrieve`` as a LangChain retriever.

    ``k``: passages per question (``None``: the index's configured ``top_k``). ``filters``: ``Filters``, the HTTP
    API's mapping, or ``rag search --filter`` strings (``path=GLOB``, ``type=markdown``, ``lang=en``,
    ``meta.KEY=VALUE``). ``across_languages``: also search the question translated into the index's main
    language when it is in the smaller one (loads the generator). ``invoke(q, k=..., filters=...)`` overrides
    ``k`` or replaces the filters for one call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: RagPipeline
    k: int | None = None
    filters: Filters | None = None
    across_languages: bool = False

    @field_validator("filters", mode="before")
    @classmethod
    def _parse_filters(cls, value: Any) -> Filters | None:
        return as_filters(value)

    @classmethod
    def from_index(
        cls,
        path: str | Path,
        *,
        k: int | None = None,
        filters: FilterSpec = None,
        across_languages: bool = False,
        **settings: Any,
    ) -> RagRetriever:
        """A retriever over the index folder at ``path`` (``settings`` as in ``RagPipeline.from_index``). The
        pipeline is ``retriever.pipeline``: close it when done (or let it go with the retriever)."""
        pipeline = RagPipeline.from_index(path, **settings)
        return cls(pipeline=pipeline, k=k, filters=as_filters(filters), across_languages=across_languages)

    def _search(self, query: str, k: int | None, filters: FilterSpec) -> list[Document]:
        chosen = self.filters if filters is None else as_filters(filters)
        hits = self.pipeline.retrieve(query, k or self.k, filters=chosen, across_languages=self.across_languages)
        return [to_document(hit) for hit in hits]

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: FilterSpec = None,
    ) -> list[Document]:
        return self._search(query, k, filters)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: FilterSpec = None,
    ) -> list[Document]:
        # The search (embedding, FAISS, tantivy) blocks: it runs in a worker thread, off the event loop.
        return await run_in_executor(None, self._search, query, k, filters)
