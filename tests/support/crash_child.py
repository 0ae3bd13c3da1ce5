"""Run by test_durability in a subprocess: an ingest that SIGKILLs itself at a chosen point.

usage: python crash_child.py INDEX FOLDER TARGET N [tune]
TARGET names a step (see STEPS); the process kills itself right after the N-th call of it. With ``tune``: instead
of an ingest of FOLDER, ``rag tune --apply`` (inverse-cloze pairs, one training step, always applied) on INDEX, an
index built with the model it names (tests/support/tiny_model.py), counting steps only once the commit begins
(``embed-batch``: from the start, so the kill falls in the re-embedding of every chunk).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from rag import pipeline
from rag.config import RagConfig
from rag.index import folder as indexdir
from rag.index.lexical import LexicalIndex
from rag.ingest import writer
from rag.testing import EchoGenerator, HashEmbedder
from rag.tune import apply as tune_apply

STEPS = {
    "embed-batch": (writer.EmbedBatch, "flush"),
    "fsync": (indexdir, "_fsync_file"),
    "lexical-commit": (LexicalIndex, "commit"),  # tantivy committed in the staged directory, manifest not yet
    "lexical-fsync": (indexdir, "_fsync_lexical"),
    "replace": (indexdir.os, "replace"),
    "stage-model": (tune_apply, "_stage_model"),
}


def kill_after(target: str, n: int, armed: threading.Event | None = None) -> None:
    """SIGKILL this process right after the ``n``-th call of ``target``'s step (counting only while ``armed`` is
    set, when given); embedding windows shrunk so a commit has many kill points."""
    owner, name = STEPS[target]
    original = getattr(owner, name)
    calls = {"n": 0}

    def wrapped(*args: object, **kwargs: object) -> object:
        result = original(*args, **kwargs)
        if armed is None or armed.is_set():
            calls["n"] += 1
            if calls["n"] == n:
                os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapped)
    writer.WINDOW_BATCHES = 4  # with batch_size=1: embedding windows of 4 chunks, many kill points


def main() -> None:
    index, folder, target, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if sys.argv[5:] == ["tune"]:
        tune(Path(index), target, n)
        return
    kill_after(target, n)
    config = RagConfig(index=Path(index), quiet=True, batch_size=1)
    pipeline.RagPipeline(config, embedder=HashEmbedder(), generator=EchoGenerator()).ingest([folder], sync=True)


def tune(index: Path, target: str, n: int) -> None:
    """``rag tune --apply`` that dies at the ``n``-th ``target`` step of its commit."""
    armed = threading.Event()
    original = tune_apply.commit_tuned

    def commit(*args: object, **kwargs: object) -> object:
        armed.set()
        return original(*args, **kwargs)  # type: ignore[arg-type]

    tune_apply.commit_tuned = commit  # type: ignore[assignment]
    from rag.tune import run

    run.commit_tuned = commit  # type: ignore[assignment]
    kill_after(target, n, None if target == "embed-batch" else armed)  # embed-batch: the re-embedding before it
    config = RagConfig(index=index, quiet=True)
    rag = pipeline.RagPipeline(config, generator=EchoGenerator())
    rag.tune(pairs_from="cloze", apply=True, accept_proxy=True, margin=-1.0, max_steps=1, batch_size=4, max_pairs=16)


if __name__ == "__main__":
    main()
