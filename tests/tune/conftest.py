"""The tune tests' shared fixtures: a tiny sentence-transformers model (once per module) and an index of the
copied corpus embedded by it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_model import tiny_sentence_transformer

from rag.config import RagConfig
from rag.pipeline import RagPipeline
from rag.testing import EchoGenerator


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sentence_transformer(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def tiny_index(tmp_path: Path, tiny: Path, copy_corpus: Path) -> Path:
    index = tmp_path / "idx"
    with RagPipeline(RagConfig(index=index, embedder=str(tiny), quiet=True), generator=EchoGenerator()) as p:
        p.ingest([copy_corpus])
    return index
