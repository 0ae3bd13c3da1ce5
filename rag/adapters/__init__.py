"""Framework adapters: ``rag`` as the retriever of an app built on LangChain or LlamaIndex.

``rag.adapters.langchain.RagRetriever`` (extra ``rag[langchain]``) and ``rag.adapters.llamaindex.RagRetriever``
(extra ``rag[llamaindex]``) wrap a ``RagPipeline``: hybrid search, filters and citations stay rag's, the documents
come back as the framework's own types. They sit at the top of the layers, beside ``rag.serve``, and reach the
stages only through ``RagPipeline``; the frameworks are imported only by the module of each, so ``import rag``
never needs them.
"""
