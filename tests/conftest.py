"""Shared fixtures for the fast tests: the sample corpus and pipelines built on the fakes in rag.testing."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.config import RagConfig
from rag.pipeline import RagPipeline
from rag.testing import EchoGenerator, HashEmbedder

CORPUS = Path(__file__).resolve().parent.parent / "corpora"


@pytest.fixture
def corpus_dir() -> Path:
    """The sample corpus shipped with the repository (read-only: copy it before editing files)."""
    assert CORPUS.is_dir(), f"sample corpus missing at {CORPUS}"
    return CORPUS


@pytest.fixture
def copy_corpus(tmp_path: Path, corpus_dir: Path) -> Path:
    """A private copy of the sample corpus under tmp_path, safe to edit."""
    target = tmp_path / "corpus"
    shutil.copytree(corpus_dir, target)
    return target


@pytest.fixture
def fake_pipeline(tmp_path: Path) -> Iterator[Callable[..., RagPipeline]]:
    """Factory: ``fake_pipeline(index=None, embedder=None, **settings)`` -> a RagPipeline on the fakes.

    The index defaults to tmp_path/"idx"; settings go straight into RagConfig (no rag.toml, no RAG_*).
    Every pipeline made is closed at teardown.
    """
    made: list[RagPipeline] = []

    def make(index: Path | None = None, embedder: Any = None, **settings: Any) -> RagPipeline:
        config = RagConfig(index=index or tmp_path / "idx", quiet=True, **settings)
        pipeline = RagPipeline(config, embedder=embedder or HashEmbedder(), generator=EchoGenerator())
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.close()
