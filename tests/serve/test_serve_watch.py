"""`rag serve --watch`: the server keeps watched folders in step with its index while answering, its upload jobs and
the watcher take turns at the writer (no IndexLockedError between them), and shutdown stops the watcher."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.cli.main import main
from rag.pipeline import RagPipeline
from rag.serve.app import ServerSettings, create_app

WAIT_S = 30.0


def wait_until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (value := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT_S:.0f} s: {what}")
        time.sleep(0.02)
    return value


def test_serve_watch_ingests_changes_beside_uploads(
    copy_corpus: Path, fake_pipeline: Callable[..., RagPipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAG_API_KEY", raising=False)
    pipeline = fake_pipeline()
    app = create_app(pipeline, ServerSettings(warm_up=False, watch=(copy_corpus,)))
    with TestClient(app) as client:
        watcher = app.state.uploads._watchers[0]
        assert watcher.ready.wait(WAIT_S) and watcher.error is None

        def sources(query: str) -> list[str]:
            passages = client.post("/search", json={"query": query, "k": 3}).json()["passages"]
            return [Path(p["source"]).name for p in passages]

        assert len(client.get("/documents").json()["documents"]) == 12  # the initial sync, while serving
        # a watched edit and an upload at the same moment: both land
        (copy_corpus / "harbour.md").write_text("The harbour master counts trawlers at noon.\n", encoding="utf-8")
        upload = b"Uploaded notes: the okapi lives in the Ituri forest."
        job = client.post("/documents", files=[("files", ("okapi.md", upload, "text/markdown"))]).json()
        wait_until(lambda: sources("harbour master trawlers")[:1] == ["harbour.md"], "the watched edit")
        done = wait_until(
            lambda: (j := client.get(f"/jobs/{job['id']}").json())["status"] in ("done", "failed") and j, "the upload"
        )
        assert done["status"] == "done", done
        assert sources("okapi Ituri forest")[:1] == ["okapi.md"]
        (copy_corpus / "harbour.md").unlink()
        wait_until(lambda: "harbour.md" not in sources("harbour master trawlers"), "the watched delete")
    assert not watcher.running  # the lifespan's shutdown stopped it
    assert pipeline.verify() == []


def test_cli_serve_passes_watch_paths_and_refuses_missing_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("rag.serve.app.serve", lambda pipeline, **kwargs: seen.update(kwargs))
    docs, notes = tmp_path / "docs", tmp_path / "notes.md"
    docs.mkdir()
    notes.write_text("notes", encoding="utf-8")
    argv = ["serve", "--index", str(tmp_path / "idx"), "--watch", str(docs), "--watch", str(notes), "-q"]
    assert main(argv) == 0
    assert seen["settings"].watch == (docs, notes)
    assert main(["serve", "--index", str(tmp_path / "idx"), "--watch", str(tmp_path / "missing"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "rag: error: cannot watch" in err and "missing" in err
