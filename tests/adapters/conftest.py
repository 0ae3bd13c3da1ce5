"""The adapters' fixtures: a small index on the fakes (three files in two folders, written here) and, for the slow
tests, an index of three English files of the sample corpus built with the real default embedder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from adapters_support import CATS, FERNS, TEAPOTS, Garden

from rag.config import RagConfig
from rag.pipeline import RagPipeline


@pytest.fixture
def garden(tmp_path: Path, fake_pipeline: Callable[..., RagPipeline]) -> Garden:
    root = tmp_path / "files"
    (root / "garden").mkdir(parents=True)
    (root / "pets").mkdir()
    ferns, cats, tea = root / "garden" / "ferns.md", root / "pets" / "cats.md", root / "pets" / "tea.txt"
    ferns.write_text(FERNS, encoding="utf-8")
    cats.write_text(CATS, encoding="utf-8")
    tea.write_text(TEAPOTS, encoding="utf-8")
    pipeline = fake_pipeline()
    assert pipeline.ingest([root / "garden"], metadata={"team": "garden"}).files_added == 1
    assert pipeline.ingest([root / "pets"], metadata={"team": "pets"}).files_added == 2
    return Garden(pipeline, root, ferns, cats, tea)


REAL_FILES = ["transformer-architecture.md", "bm25-lexical-search.txt", "retrieval-augmented-generation.md"]


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RagPipeline, Path]]:
    """Three English files of the sample corpus indexed with the default models (MiniLM: the files are English),
    and the index's path. Used by the slow tests of both adapters (built once)."""
    corpus = Path(__file__).resolve().parents[2] / "corpora"
    index = tmp_path_factory.mktemp("adapters-real") / "index"
    pipeline = RagPipeline(RagConfig(index=index, quiet=True))
    report = pipeline.ingest([corpus / name for name in REAL_FILES])
    assert report.files_added == 3 and not report.skipped
    assert pipeline.info().embedder == "minilm"  # what `embedder=auto` picks for English files
    yield pipeline, index
    pipeline.close()
