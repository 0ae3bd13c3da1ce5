"""A LlamaIndex retriever over a ``RagPipeline`` (extra ``rag[llamaindex]``: llama-index-core).

An app built on LlamaIndex switches its retrieval to rag's (hybrid dense + BM25, filters applied before top-k, the
configured reranker, citations with lines and pages) by swapping its retriever::

    from rag.adapters.llamaindex import RagRetriever
    retriever = RagRetriever.from_index("indexes/main", k=4, filters=["path=docs/*"])

``retriever.retrieve(question)`` returns ``NodeWithScore(TextNode)``s, best first, and the retriever plugs into
``RetrieverQueryEngine`` and the other places that take a ``BaseRetriever``. A node's ``text`` is the passage as
rag's answers read it (the display text); ``start_char_idx``/``end_char_idx`` are its offsets in the original
file; its source relationship is the document (``ref_doc_id`` = rag's document id); ``metadata`` is
``rag.adapters.common.metadata`` (``source``, ``start_line``/``end_line``, ``page``, ``heading``, a ready
``citation`` such as ``docs/a.md:12-30``...), of which only ``citation`` and ``heading`` are shown to the LLM and
none is embedded.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rag.adapters.common import FilterSpec, as_filters, metadata, require

require("llama_index.core", "llamaindex", "llama-index-core")

from llama_index.core.callbacks import CallbackManager  # noqa: E402  (after the check that names the extra)
from llama_index.core.retrievers import BaseRetriever  # noqa: E402
from llama_index.core.schema import (  # noqa: E402
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)

from rag.pipeline import RagPipeline  # noqa: E402
from rag.types import Hit  # noqa: E402

__all__ = ["LLM_METADATA", "RagRetriever", "to_node"]

# The metadata a node shows the LLM beside its text (LlamaIndex prepends a node's metadata to what it reads):
# where the passage is, not the offsets and scores.
LLM_METADATA = ("citation", "heading")


def to_node(hit: Hit) -> NodeWithScore:
    """One retrieved passage as a LlamaIndex ``NodeWithScore`` (node id: rag's chunk id, as text)."""
    chunk = hit.chunk
    meta = metadata(hit)
    node = TextNode(
        text=chunk.shown,
        metadata=meta,
        start_char_idx=chunk.start,
        end_char_idx=chunk.end,
        excluded_embed_metadata_keys=list(meta),
        excluded_llm_metadata_keys=[key for key in meta if key not in LLM_METADATA],
        relationships={
            NodeRelationship.SOURCE: RelatedNodeInfo(node_id=meta["document_id"], metadata={"source": meta["source"]})
        },
    )
    if chunk.id is not None:
        node.id_ = str(chunk.id)
    return NodeWithScore(node=node, score=hit.score)


class RagRetriever(BaseRetriever):
    """``RagPipeline.retrieve`` as a LlamaIndex retriever.

    ``k``: passages per question (``None``: the index's configured ``top_k``). ``filters``: ``Filters``, the HTTP
    API's mapping, or ``rag search --filter`` strings (``path=GLOB``, ``type=markdown``, ``lang=en``,
    ``meta.KEY=VALUE``). ``across_languages``: also search the question translated into the index's main
    language when it is in the smaller one (loads the generator).
    """

    def __init__(
        self,
        pipeline: RagPipeline,
        *,
        k: int | None = None,
        filters: FilterSpec = None,
        across_languages: bool = False,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self.pipeline = pipeline
        self.k = k
        self.filters = as_filters(filters)
        self.across_languages = across_languages

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
        return cls(pipeline, k=k, filters=filters, across_languages=across_languages)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.pipeline.retrieve(
            query_bundle.query_str, self.k, filters=self.filters, across_languages=self.across_languages
        )
        return [to_node(hit) for hit in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # The base class would run the blocking search (embedding, FAISS, tantivy) on the event loop itself.
        return await asyncio.to_thread(self._retrieve, query_bundle)
