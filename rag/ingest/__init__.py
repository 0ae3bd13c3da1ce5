"""Ingest stage: discovery -> loaders -> chunking -> plan (what changed) -> writer (embed, store, commit); ray runs
the read/chunk/embed part on a cluster and feeds the same writer."""
