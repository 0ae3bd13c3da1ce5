"""The MCP tests' fixture: an index of the sample corpus on the fakes (helpers: tests/support/mcp_support.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.config import RagConfig
from rag.pipeline import RagPipeline
from rag.testing import EchoGenerator, HashEmbedder


@pytest.fixture
def indexed(tmp_path: Path, copy_corpus: Path) -> Iterator[Callable[..., RagPipeline]]:
    """Factory: a pipeline on the fakes over ``tmp_path/idx``, holding a copy of the sample corpus
    (``copy_corpus``), unless ``ingest=False``. Settings go to RagConfig."""
    made: list[RagPipeline] = []

    def make(ingest: bool = True, **settings: Any) -> RagPipeline:
        config = RagConfig(index=tmp_path / "idx", quiet=True, **settings)
        pipeline = RagPipeline(config, embedder=HashEmbedder(), generator=EchoGenerator())
        if ingest:
            pipeline.ingest([copy_corpus])
        made.append(pipeline)
        return pipeline

    yield make
    for p in made:
        p.close()
