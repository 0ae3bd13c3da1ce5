"""Retrieval stage: dense + lexical search fused by RRF, filters applied inside both, optional cross-encoder rerank,
the query-vector cache."""
