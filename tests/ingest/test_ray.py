"""Scale-out ingest on a local Ray instance: the same index as a local ingest, incremental re-ingest, the real
embedder in Ray actors, and the CLI starting (and stopping) its own local Ray."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.pipeline import RagPipeline
from rag.testing import HASH_EMBEDDER as HASH

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'rag[ray]'")

ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray instance for the module (starting one costs seconds); the pipeline joins it."""
    os.environ.update(ENV)
    from rag.ingest.ray import connect

    started = connect("local")
    yield
    if started:
        ray.shutdown()


def _chunks(p: RagPipeline) -> list:  # type: ignore[type-arg]
    snap = p._current()
    return list(snap.store.chunks_by_ids(snap.store.chunk_ids()).values())


def _contents(p: RagPipeline) -> dict[str, list[tuple[str, int, int, int, int]]]:
    out: dict[str, list[tuple[str, int, int, int, int]]] = {}
    for c in sorted(_chunks(p), key=lambda c: (c.source, c.start)):
        out.setdefault(Path(c.source).name, []).append((c.text, c.start, c.end, c.start_line, c.end_line))
    return out


def _vectors_by_text(p: RagPipeline) -> dict[str, np.ndarray]:
    snap = p._current()
    return {c.text: snap.vectors.reconstruct(int(c.id)) for c in _chunks(p)}


def test_ray_ingest_builds_the_same_index_and_stays_incremental(
    local_ray: None, tmp_path: Path, copy_corpus: Path, fake_pipeline: Callable[..., RagPipeline]
) -> None:
    local = fake_pipeline(index=tmp_path / "local")
    local.ingest([copy_corpus])
    remote = fake_pipeline(index=tmp_path / "ray")
    report = remote.ingest([copy_corpus], ray="local")
    assert report.files_added == 12 and report.chunks_added == local.info().chunks and report.skipped == []
    assert _contents(remote) == _contents(local)  # same chunks, spans and lines
    theirs, ours = _vectors_by_text(remote), _vectors_by_text(local)
    assert ours and theirs.keys() == ours.keys() and all(np.allclose(theirs[t], ours[t]) for t in ours)
    assert remote.verify() == []
    m_local = json.loads((local.index_path / "manifest.json").read_text())
    m_ray = json.loads((remote.index_path / "manifest.json").read_text())
    assert set(m_ray) == set(m_local) and m_ray["embedder"] == m_local["embedder"]
    assert {d.path: d.language for d in remote.documents()} == {d.path: d.language for d in local.documents()}

    # change one file, delete one, add one and a bad one: only those go through Ray
    (copy_corpus / "bm25-lexical-search.txt").write_text("BM25 was rewritten about capybaras. " * 30, "utf-8")
    (copy_corpus / "zhongwen-fenci.md").unlink()
    shutil.copy(copy_corpus / "transformer-architecture.md", copy_corpus / "copy.md")
    (copy_corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    again = fake_pipeline(index=tmp_path / "ray").ingest([copy_corpus], sync=True, ray="local")
    assert (again.files_added, again.files_updated, again.files_removed, again.files_unchanged) == (1, 1, 1, 10)
    assert [Path(s.path).name for s in again.skipped] == ["broken.pdf"] and "pdf" in again.skipped[0].reason.lower()
    fresh = fake_pipeline(index=tmp_path / "ray")
    assert fresh.verify() == [] and "capybaras" in fresh.retrieve("capybaras", k=1)[0].chunk.text
    assert fresh.info().generation == 2


def test_ray_ingest_takes_email_attachments_like_a_local_ingest(
    local_ray: None, tmp_path: Path, fake_pipeline: Callable[..., RagPipeline]
) -> None:
    import documents as make

    docs = tmp_path / "docs"
    docs.mkdir()
    deck = make.pptx_file(docs / "deck.pptx", [("Plans", "The zebrafinch survey", "")])
    message = make.email_message(
        "Stock",
        "See attached.",
        attachments=[("a.txt", b"Walrus count 7", "text/plain"), ("b.pdf", b"junk", "application/pdf")],
    )
    mail = make.eml_file(docs / "mail.eml", message)
    local = fake_pipeline(index=tmp_path / "local", ocr="never")
    local_report = local.ingest([docs])
    remote = fake_pipeline(index=tmp_path / "ray", ocr="never")
    report = remote.ingest([docs], ray="local")
    assert report.files_added == local_report.files_added == 3
    assert [s.path for s in report.skipped] == [s.path for s in local_report.skipped] == [f"{mail}#b.pdf"]
    assert _contents(remote) == _contents(local)
    assert remote.retrieve("zebrafinch", k=1)[0].chunk.location() == "slide 1"
    assert deck.exists()
    mail.write_bytes(bytes(make.email_message("Stock", "Nothing attached now.")))
    os.utime(mail, (1_000_000_000, 1_000_000_000))
    fake_pipeline(index=tmp_path / "ray", ocr="never").ingest([docs], ray="local")
    assert sorted(Path(d.path).name for d in fake_pipeline(index=tmp_path / "ray").documents()) == [
        "deck.pptx",
        "mail.eml",
    ]


@pytest.mark.slow
def test_ray_actors_run_the_real_embedder(local_ray: None, tmp_path: Path, corpus_dir: Path) -> None:
    english = tmp_path / "en"
    english.mkdir()
    for name in ("bm25-lexical-search.txt", "transformer-architecture.md", "retrieval-evaluation.txt"):
        shutil.copy(corpus_dir / name, english / name)
    from rag.config import RagConfig

    p = RagPipeline(RagConfig(index=tmp_path / "idx", embedder="minilm", quiet=True))
    report = p.ingest([english], ray="local", ray_workers=1)
    assert report.model == "minilm" and report.chunks_added > 3
    hits = p.retrieve("How does BM25 score a document?", k=2)
    assert hits[0].chunk.source.endswith("bm25-lexical-search.txt")
    # the actor's vectors are the embedder's vectors
    from rag.embed.registry import create_embedder

    here = create_embedder("minilm")
    vecs = _vectors_by_text(p)
    texts = list(vecs)[:5]
    cos = (here.embed_documents(texts) * np.stack([vecs[t] for t in texts])).sum(axis=1)
    assert cos.min() > 0.99


def _rag(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """Run the rag CLI in a fresh process (with Ray's usage stats off)."""
    return subprocess.run(
        [sys.executable, "-m", "rag", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        timeout=timeout,
        check=False,
    )


def test_cli_starts_a_local_ray_instance(tmp_path: Path, corpus_dir: Path) -> None:
    index = str(tmp_path / "idx")
    out = _rag("ingest", str(corpus_dir), "--ray", "--model", HASH, "--index", index, "-q", "--json", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["files_added"] == 12 and report["chunks_added"] > 12
    check = _rag("verify", "--index", index, "-q", timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


def test_an_unreachable_cluster_fails_fast_and_changes_nothing(tmp_path: Path, corpus_dir: Path) -> None:
    index = tmp_path / "idx"
    out = _rag(
        "ingest", str(corpus_dir), "--ray", "127.0.0.1:9", "--model", HASH, "--index", str(index), "-q", timeout=120
    )
    assert out.returncode != 0
    assert "cannot reach a Ray cluster at '127.0.0.1:9'" in out.stderr and "local Ray" in out.stderr
    assert not (index / "manifest.json").exists()
