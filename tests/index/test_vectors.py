"""Index types chosen by size: exact (flat), IVF and HNSW behind one VectorIndex, with stable ids, deletes,
filters, persistence, tuned recall, automatic conversion in the pipeline, and the GPU path (skipped without one)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag.config import RagConfig
from rag.errors import ConfigError
from rag.index import vectors as index_mod
from rag.index.vectors import VectorIndex, choose_kind, gpu_count, ivf_nlist, needs_rebuild
from rag.pipeline import RagPipeline

DIM = 48
PARAM_NAMES = {"ivf": {"nlist", "nprobe"}, "hnsw": {"M", "efSearch", "efConstruction"}}  # the search parameters


def clustered(n: int, seed: int = 0, clusters: int = 200) -> np.ndarray:
    """Unit vectors in clusters of varied spread (like embeddings: topics, paraphrases), not uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM)).astype(np.float32)
    spread = rng.uniform(0.3, 1.0, size=(n, 1)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + spread * rng.normal(size=(n, DIM)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(q @ x.T), axis=1)[:, :k]]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return sum(len(set(f) & set(t)) for f, t in zip(found.tolist(), truth.tolist(), strict=True)) / truth.size


def test_choose_kind_by_size_with_hysteresis() -> None:
    t = index_mod.IVF_THRESHOLD
    assert choose_kind("auto", t - 1) == "flat"
    assert choose_kind("auto", t) == "ivf"
    assert choose_kind("auto", t // 2 + 1, current="ivf") == "ivf"  # no flip-flop just under the line
    assert choose_kind("auto", t // 2 - 1, current="ivf") == "flat"
    assert choose_kind("hnsw", 10) == "hnsw"
    with pytest.raises(ValueError, match="'annoy'"):
        choose_kind("annoy", 10)
    with pytest.raises(ConfigError, match="index_type='annoy'"):
        RagConfig(index_type="annoy")
    assert ivf_nlist(1_000_000) == 2000 and ivf_nlist(100) == 2 and ivf_nlist(10_000) == 200


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_recall_deletes_filters_and_persistence(kind: str, tmp_path: Path) -> None:
    data = clustered(12_300)
    x, held_out = data[:12_000], data[12_000:]
    ids = np.arange(5_000, 17_000, dtype=np.int64)  # ids are not positions
    index = VectorIndex.build(kind, DIM, ids, x)
    assert index.kind == kind and len(index) == 12_000
    # recall@10 against exact search, on held-out queries from the same distribution, pushed off by noise
    rng = np.random.default_rng(7)
    q = held_out + 0.5 * rng.normal(size=held_out.shape).astype(np.float32) / np.sqrt(DIM)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    found = index.search(q, 10)[1]
    assert recall(found, exact(x, ids, q, 10)) >= 0.95, index.params()
    # deletes keep every other id stable
    gone = ids[:100]
    assert index.remove(gone) == 100
    assert len(index) == 11_900 and not set(gone.tolist()) & set(index.ids().tolist())
    assert np.allclose(index.reconstruct(int(ids[500])), x[500])
    found = index.search(x[:100], 10)[1]  # the deleted vectors' own neighbourhoods
    assert not set(found.ravel().tolist()) & set(gone.tolist())
    # a filter returns k hits whenever k ids are allowed, best first
    allowed = ids[[200, 3000, 7000, 11_000]].tolist()
    scores, got = index.search(x[200:201], 3, allowed=allowed)
    assert got[0][0] == ids[200] and len(got[0]) == 3 and set(got[0].tolist()) <= set(allowed)
    assert scores[0][0] == pytest.approx(1.0, abs=1e-5) and list(scores[0]) == sorted(scores[0], reverse=True)
    _, got = index.search(x[200:201], 3, allowed=[int(ids[200]), int(gone[0]), 99_999_999])  # absent ids skipped
    assert got[0].tolist() == [ids[200]]
    # saved and loaded with the tuned parameters
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss")
    assert set(index.params()) == PARAM_NAMES[kind]
    assert loaded.kind == kind and loaded.params() == index.params() and len(loaded) == 11_900
    assert np.array_equal(np.sort(loaded.ids()), np.sort(index.ids()))
    assert np.array_equal(loaded.search(q[:20], 10)[1], index.search(q[:20], 10)[1])


def test_needs_rebuild_rules() -> None:
    x = clustered(2_000)
    ivf = VectorIndex.build("ivf", DIM, np.arange(2_000), x)
    assert not needs_rebuild(ivf, "ivf", trained_on=2_000)
    assert needs_rebuild(ivf, "ivf", trained_on=400)  # grew more than 4x since training
    assert needs_rebuild(ivf, "flat", trained_on=2_000)
    tiny = VectorIndex.build("ivf", DIM, np.arange(10), x[:10])
    assert tiny.kind == "flat" and not needs_rebuild(tiny, "ivf", trained_on=0)  # too few to train


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_pipeline_keeps_an_approximate_index_correct_through_changes(
    kind: str, copy_corpus: Path, fake_pipeline: Callable[..., RagPipeline]
) -> None:
    for i in range(10):  # enough chunks to train an IVF (39 per list)
        (copy_corpus / f"note-{i}.txt").write_text(f"Note {i} about approximate nearest neighbours. " * 60, "utf-8")
    p = fake_pipeline(index_type=kind)
    p.ingest([copy_corpus])
    manifest = json.loads((p.index_path / "manifest.json").read_text())
    assert manifest["index_type"] == kind and manifest["index_policy"] == kind
    # the manifest records the search parameters of the committed vector file, not just some parameters
    stored = VectorIndex.load(p.index_path / manifest["files"]["vectors"])
    assert stored.kind == kind and manifest["index_params"] == stored.params()
    assert set(manifest["index_params"]) == PARAM_NAMES[kind]
    assert p.verify() == []
    hits = p.retrieve("What does BM25 rank by?", k=3)
    assert hits and "bm25" in hits[0].chunk.source.lower()
    # later ingests without the option keep the index's type; changes and deletes stay consistent
    later = fake_pipeline()
    (copy_corpus / "bm25-lexical-search.txt").write_text("BM25 was rewritten about capybaras. " * 30, "utf-8")
    (copy_corpus / "zhongwen-fenci.md").unlink()
    report = later.ingest([copy_corpus], sync=True)
    assert report.files_updated == 1 and report.files_removed == 1
    assert later.info().index_type == kind and later.verify() == []
    assert "capybaras" in later.retrieve("capybaras", k=1)[0].chunk.text
    filtered = later.retrieve("approximate nearest neighbours", k=3, filters={"path": "*note-3*"})
    assert filtered and all(h.chunk.source.endswith("note-3.txt") for h in filtered)
    # compact converts on request
    flat = fake_pipeline(index_type="flat").compact()
    assert flat.index_type == "flat" and flat.vectors == flat.chunks and fake_pipeline().verify() == []


def test_auto_moves_to_ivf_past_the_threshold(
    copy_corpus: Path, fake_pipeline: Callable[..., RagPipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    small = fake_pipeline()
    small.ingest([copy_corpus])
    n = small.info().chunks
    assert small.info().index_type == "flat"
    monkeypatch.setattr(index_mod, "IVF_THRESHOLD", n + 20)
    for i in range(12):
        (copy_corpus / f"more-{i}.txt").write_text(f"Additional note {i} on vector indexes. " * 40, "utf-8")
    grown = fake_pipeline()
    grown.ingest([copy_corpus])
    info = grown.info()
    assert info.chunks >= n + 20 and info.index_type == "ivf" and grown.verify() == []
    assert grown.retrieve("Additional note 7 on vector indexes", k=1)[0].chunk.source.endswith("more-7.txt")
    grown.remove([copy_corpus / "more-0.txt"])  # still above half the threshold: stays ivf
    assert fake_pipeline().info().index_type == "ivf"


@pytest.mark.gpu
@pytest.mark.skipif(gpu_count() == 0, reason="no GPU visible to faiss (install faiss-gpu on a CUDA machine)")
def test_gpu_search_matches_cpu() -> None:  # pragma: no cover - needs a GPU
    x = clustered(5_000)
    ids = np.arange(5_000, dtype=np.int64)
    for kind in ("flat", "ivf"):
        index = VectorIndex.build(kind, DIM, ids, x)
        q = clustered(50, seed=3)
        cpu = index._cpu.search(q, 10)[1]
        gpu = index.search(q, 10)[1]  # goes through the GPU copy
        assert index._gpu is not None and index._gpu is not index._cpu
        assert recall(gpu, cpu) >= 0.99


def test_hnsw_deletes_rebuild_once_per_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    x = clustered(3_000)
    index = VectorIndex.build("hnsw", DIM, np.arange(3_000), x)
    builds: list[int] = []
    real_build = VectorIndex.build.__func__  # type: ignore[attr-defined]

    def counting(cls: type, kind: str, *args: object, **kwargs: object) -> VectorIndex:
        builds.append(1)
        return real_build(cls, kind, *args, **kwargs)

    monkeypatch.setattr(VectorIndex, "build", classmethod(counting))
    for start in range(0, 50, 5):  # ten documents' deletes, as an ingest makes them
        assert index.remove(list(range(start, start + 5))) == 5
    assert index.remove([0, 1]) == 0  # already gone
    assert builds == []  # nothing rebuilt yet
    assert len(index) == 2_950  # the next read settles the deletes: one rebuild
    assert builds == [1] and not set(range(50)) & set(index.ids().tolist())
