"""The folder watcher (rag.watch, `rag watch`): files created, changed, renamed and deleted under a watched folder
show up in what a separate reader retrieves, within a bounded wait; a burst of saves is one commit; editors' temp
files and the index folder never start an ingest; an unreadable file is reported once per version; a stop waits
for the commit in flight (in process, and SIGTERM to `rag watch`); a SIGKILL mid-commit leaves a valid index.
Fakes (HashEmbedder) except the one slow test with the default embedder on the sample corpus."""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from rag.cli.main import main
from rag.config import RagConfig
from rag.index.folder import IndexDir
from rag.pipeline import RagPipeline
from rag.testing import HashEmbedder
from rag.types import IngestReport
from rag.watch import FolderWatcher, WatchError, WatchFilter, is_temporary, resolve_roots

T = TypeVar("T")
Factory = Callable[..., RagPipeline]
WAIT_S = 30.0  # upper bound on every wait (they end as soon as the condition holds)
ROOT = Path(__file__).resolve().parents[1]
SUPPORT = ROOT / "tests" / "support"
CHILD = SUPPORT / "watch_child.py"


def wait_until(check: Callable[[], T], what: str, timeout: float = WAIT_S) -> T:
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.02)


def stored(p: RagPipeline) -> set[str]:
    """File names of the documents in the index."""
    return {Path(d.path).name for d in p.documents()}


def top(p: RagPipeline, query: str) -> str | None:
    hits = p.retrieve(query, k=1)
    return Path(hits[0].chunk.source).name if hits else None


def texts(p: RagPipeline, query: str) -> str:
    return "\n".join(h.chunk.text for h in p.retrieve(query, k=20))


@pytest.fixture
def watching(fake_pipeline: Factory) -> Iterator[Callable[..., FolderWatcher]]:
    """``watching(*paths, pipeline=None, **options)``: a FolderWatcher started in the background over ``pipeline``
    (default: a new one on the fakes), its initial sync done. Closed at teardown."""
    started: list[FolderWatcher] = []

    def make(*paths: Path, pipeline: RagPipeline | None = None, **options: Any) -> FolderWatcher:
        watcher = FolderWatcher(pipeline or fake_pipeline(), paths, **options)
        started.append(watcher)
        watcher.start()
        assert watcher.ready.wait(WAIT_S), "the initial sync did not finish"
        assert watcher.error is None and watcher.running
        return watcher

    yield make
    for watcher in started:
        watcher.close(WAIT_S)
        assert not watcher.running


# -- what a reader sees ------------------------------------------------------------------------------------


def test_created_modified_renamed_moved_and_deleted_files(
    copy_corpus: Path, tmp_path: Path, watching: Callable[..., FolderWatcher], fake_pipeline: Factory
) -> None:
    w = watching(copy_corpus)
    reader = fake_pipeline(index=w.pipeline.index_path)  # another pipeline: sees each commit when it lands
    assert len(stored(reader)) == 12  # the initial sync
    note = copy_corpus / "zebra.md"

    note.write_text("Zebras graze on the open savanna at dawn.\n", encoding="utf-8")
    wait_until(lambda: top(reader, "zebras graze savanna") == "zebra.md", "a new file is searchable")

    note.write_text("Penguins huddle together on the Antarctic ice.\n", encoding="utf-8")
    wait_until(
        lambda: top(reader, "penguins huddle antarctic ice") == "zebra.md" and "Zebras" not in texts(reader, "zebras"),
        "a changed file's new text replaces the old",
    )

    note.rename(copy_corpus / "penguins.md")
    wait_until(
        lambda: top(reader, "penguins huddle antarctic ice") == "penguins.md" and "zebra.md" not in stored(reader),
        "a renamed file is stored under its new name only",
    )

    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "owls.md").write_text("Owls hunt mice in the barn at night.\n", encoding="utf-8")
    shutil.move(outside, copy_corpus / "birds")  # one event for the folder, none for the file inside
    wait_until(lambda: top(reader, "owls hunt mice barn") == "owls.md", "a folder moved in is ingested")
    shutil.move(copy_corpus / "birds", tmp_path / "away")
    wait_until(lambda: "owls.md" not in stored(reader), "a folder moved out is removed")

    (copy_corpus / "penguins.md").unlink()
    wait_until(lambda: "penguins.md" not in stored(reader), "a deleted file is removed")
    assert "Penguins" not in texts(reader, "penguins huddle antarctic ice")
    assert len(stored(reader)) == 12
    assert reader.verify() == []


def test_with_follow_symlinks_changes_behind_a_link_out_of_the_folder_are_seen(
    tmp_path: Path, watching: Callable[..., FolderWatcher], fake_pipeline: Factory
) -> None:
    docs, shared, notes = tmp_path / "docs", tmp_path / "shared", tmp_path / "notes"
    for folder in (docs, shared, notes):
        folder.mkdir()
    (docs / "local.md").write_text("Local notes about gardening tools.\n", encoding="utf-8")
    (shared / "otters.md").write_text("Otters float on their backs to eat.\n", encoding="utf-8")
    (notes / "wolves.md").write_text("Wolves howl to find their pack.\n", encoding="utf-8")
    (docs / "shared").symlink_to(shared, target_is_directory=True)
    (docs / "wolves.md").symlink_to(notes / "wolves.md")
    pipeline = fake_pipeline(follow_symlinks=True)
    w = watching(docs, pipeline=pipeline)
    reader = fake_pipeline(index=pipeline.index_path)
    assert stored(reader) == {"local.md", "otters.md", "wolves.md"}  # the initial sync follows both links

    (shared / "herons.md").write_text("Herons stand still in shallow water to fish.\n", encoding="utf-8")
    wait_until(lambda: top(reader, "herons shallow water fish") == "herons.md", "a file added behind a link")
    (notes / "wolves.md").write_text("Wolves roam the northern forests in winter.\n", encoding="utf-8")
    wait_until(lambda: "northern forests" in texts(reader, "wolves roam forests"), "a linked file changed")
    (shared / "otters.md").unlink()
    wait_until(lambda: "otters.md" not in stored(reader), "a file deleted behind a link is removed")
    assert stored(reader) == {"local.md", "herons.md", "wolves.md"} and reader.verify() == []
    assert w.error is None


def test_without_follow_symlinks_nothing_behind_a_link_is_watched(tmp_path: Path, fake_pipeline: Factory) -> None:
    docs, shared = tmp_path / "docs", tmp_path / "shared"
    docs.mkdir()
    shared.mkdir()
    (docs / "shared").symlink_to(shared, target_is_directory=True)
    plain = FolderWatcher(fake_pipeline(), [docs])
    assert plain.scopes == [docs.resolve()]
    following = FolderWatcher(fake_pipeline(index=tmp_path / "other", follow_symlinks=True), [docs])
    assert following.scopes == [docs.resolve(), shared.resolve()]


def test_a_burst_of_saves_is_one_commit(
    copy_corpus: Path, watching: Callable[..., FolderWatcher], fake_pipeline: Factory
) -> None:
    reports: list[IngestReport] = []
    w = watching(copy_corpus, on_report=reports.append, quiet_ms=300)
    reader = fake_pipeline(index=w.pipeline.index_path)
    generation = reader.info().generation
    names = {f"burst-{i}.md" for i in range(8)}
    for i in range(8):
        (copy_corpus / f"burst-{i}.md").write_text(f"Burst note {i} about topic{i}.\n", encoding="utf-8")
    (copy_corpus / "burst-0.md").write_text("Burst note 0, saved again, about topic0.\n", encoding="utf-8")
    (copy_corpus / "retrieval-evaluation.txt").unlink()
    wait_until(lambda: len(reports) >= 2 and names <= stored(reader), "the burst is applied")
    assert [(r.files_added, r.files_removed) for r in reports[1:]] == [(8, 1)]
    assert reader.info().generation == generation + 1 and w.commits == 2  # the initial sync's, then one
    assert "saved again" in texts(reader, "burst note topic0")


def test_temp_files_hidden_folders_and_the_index_never_start_an_ingest(
    copy_corpus: Path, watching: Callable[..., FolderWatcher], fake_pipeline: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = fake_pipeline(index=copy_corpus / "idx")  # the index inside the watched folder
    seen: list[list[str]] = []
    ingest_changes = pipeline.ingest_changes

    def recording(changed: list[str], roots: list[Path], **kwargs: Any) -> IngestReport:
        seen.append(list(changed))
        return ingest_changes(changed, roots, **kwargs)

    monkeypatch.setattr(pipeline, "ingest_changes", recording)
    w = watching(copy_corpus, pipeline=pipeline)
    assert len(seen) == 1  # the initial sync; its commit wrote into idx/, which started nothing
    target = copy_corpus / "transformer-architecture.md"

    # vim's save: a test write, the original renamed to a backup, the new file written, the backup deleted
    (copy_corpus / "4913").write_bytes(b"")
    (copy_corpus / "4913").unlink()
    (copy_corpus / ".transformer-architecture.md.swp").write_bytes(b"b0VIM swap")
    target.rename(copy_corpus / "transformer-architecture.md~")
    target.write_text("Transformers were rewritten by a vim user on Tuesday.\n", encoding="utf-8")
    (copy_corpus / "transformer-architecture.md~").unlink()
    # other editors and tools
    (copy_corpus / ".#notes.md").symlink_to("user@host.1234")  # emacs lock
    (copy_corpus / "#notes.md#").write_text("emacs auto-save", encoding="utf-8")
    (copy_corpus / "notes.md.tmp").write_text("partial", encoding="utf-8")
    (copy_corpus / "~$report.docx").write_bytes(b"owner")
    for folder in (".git", "node_modules", "__pycache__"):
        (copy_corpus / folder).mkdir()
        (copy_corpus / folder / "inside.md").write_text(f"{folder} notes", encoding="utf-8")
    reader = fake_pipeline(index=pipeline.index_path)
    wait_until(lambda: "vim user" in texts(reader, "transformers rewritten vim user"), "the saved file is applied")
    assert [Path(p).name for p in seen[1]] == ["transformer-architecture.md"]

    (copy_corpus / "sentinel.md").write_text("A sentinel about lighthouses.\n", encoding="utf-8")
    wait_until(lambda: top(reader, "sentinel lighthouses") == "sentinel.md", "the sentinel is applied")
    # nothing but the two real files ever reached the pipeline: not the temp files, not the index's own writes
    changes = [[Path(p).name for p in changed] for changed in seen[1:]]
    assert changes == [["transformer-architecture.md"], ["sentinel.md"]]
    assert not [d.path for d in reader.documents() if "/idx/" in d.path or Path(d.path).name == "inside.md"]
    wait_until(lambda: w.commits == 3, "three commits counted")  # counted just after the commit lands


def test_the_filter_decides_by_name_and_place(tmp_path: Path) -> None:
    root, other = tmp_path / "docs", tmp_path / "other"
    watched_file = other / "single.md"
    decide = WatchFilter([root], [watched_file], exclude=root / "idx")
    keep = [root, root / "a.md", root / "sub" / "b.md", root / "notes.tmp.md", root / "swp.md", watched_file]
    drop = [
        root / ".git" / "index",
        root / ".a.md.swp",
        root / "a.md.swo",
        root / "a.md~",
        root / "4913",
        root / ".#a.md",
        root / "#a.md#",
        root / "a.md.tmp",
        root / "file.crdownload",
        root / "a.md___jb_tmp___",
        root / "~$report.docx",
        root / "idx" / "manifest.json",
        root / "node_modules" / "x.md",
        root / "__pycache__" / "m.md",
        other / "beside.md",
        tmp_path / "elsewhere.md",
    ]
    assert [p.name for p in keep if not decide(None, str(p))] == []
    assert [p.name for p in drop if decide(None, str(p))] == []
    assert is_temporary("draft.TMP") and not is_temporary("temporary-notes.md")


def test_paths_that_cannot_be_watched_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = tmp_path / "idx"
    (index / "uploads").mkdir(parents=True)
    with pytest.raises(WatchError, match="no such file or folder"):
        resolve_roots([tmp_path / "missing"], index)
    with pytest.raises(WatchError, match="inside the index folder"):
        resolve_roots([index / "uploads"], index)
    assert resolve_roots([tmp_path, tmp_path / "."], index) == [tmp_path.resolve()]
    assert main(["watch", str(tmp_path / "missing"), "--index", str(index), "-q"]) == 2
    assert "rag: error: cannot watch" in capsys.readouterr().err


def test_the_watcher_waits_while_another_process_writes(
    copy_corpus: Path, tmp_path: Path, fake_pipeline: Factory
) -> None:
    index = tmp_path / "idx"
    watcher = FolderWatcher(fake_pipeline(index=index), [copy_corpus], retry_s=0.1)
    with IndexDir(index).lock():  # as `rag ingest` in another process holds it
        watcher.start()
        assert not watcher.ready.wait(0.5) and watcher.running  # waiting, not failed
    try:
        assert watcher.ready.wait(WAIT_S) and watcher.error is None
        assert len(stored(fake_pipeline(index=index))) == 12
    finally:
        watcher.close(WAIT_S)


# -- failures and stops ------------------------------------------------------------------------------------


def test_an_unreadable_file_is_reported_once_per_version(
    copy_corpus: Path, watching: Callable[..., FolderWatcher], fake_pipeline: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rag.watch")
    w = watching(copy_corpus)
    reader = fake_pipeline(index=w.pipeline.index_path)
    bad = copy_corpus / "broken.txt"

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "broken.txt" in r.message]

    bad.write_bytes(b"\x00\x01binary\x00" * 64)
    wait_until(lambda: len(warnings()) == 1, "the unreadable file is reported")
    for i in range(3):
        if i == 1:
            bad.chmod(0o644)  # an event for the file, the same version: looked at again, not reported again
        (copy_corpus / f"good-{i}.md").write_text(f"Good note {i} about harbour{i}.\n", encoding="utf-8")
        wait_until(lambda i=i: top(reader, f"good note harbour{i}") == f"good-{i}.md", f"good-{i}.md is applied")
    assert len(warnings()) == 1, warnings()
    bad.write_bytes(b"\x00another binary version\x00" * 64)
    wait_until(lambda: len(warnings()) == 2, "a new version of the file is reported again")
    bad.write_text("Now readable: walruses rest on the ice floes.\n", encoding="utf-8")
    wait_until(lambda: top(reader, "walruses rest ice floes") == "broken.txt", "the repaired file is applied")
    assert len(warnings()) == 2


class SlowEmbedder(HashEmbedder):
    """Takes half a second per batch once armed; ``entered`` is set when a slow batch starts."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.entered = threading.Event()

    def embed_documents(self, texts: list[str]) -> Any:
        if self.armed:
            self.entered.set()
            time.sleep(0.5)
        return super().embed_documents(texts)


def test_a_stop_waits_for_the_commit_in_flight(
    copy_corpus: Path, watching: Callable[..., FolderWatcher], fake_pipeline: Factory
) -> None:
    embedder = SlowEmbedder()
    w = watching(copy_corpus, pipeline=fake_pipeline(embedder=embedder))
    embedder.armed = True
    (copy_corpus / "late.md").write_text("Late notes about lighthouses and foghorns.\n", encoding="utf-8")
    assert embedder.entered.wait(WAIT_S)
    w.stop()  # mid-commit
    w.close(WAIT_S)
    assert not w.running and w.error is None
    reader = fake_pipeline(index=w.pipeline.index_path)
    assert "late.md" in stored(reader) and reader.verify() == []


class Lines:
    """A subprocess's stdout lines, read by a thread, so a test can wait for one with a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: [self._queue.put(line) for line in stdout], daemon=True).start()

    def next(self, timeout: float = WAIT_S) -> str:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output line within {timeout:.0f} s")


def test_sigterm_stops_rag_watch_after_the_commit_in_flight(copy_corpus: Path, tmp_path: Path) -> None:
    from watch_child import SlowHashEmbedder

    index, marker = tmp_path / "idx", tmp_path / "embedding-started"
    env = {
        **os.environ,
        "RAG_EMBEDDER": "watch_child:SlowHashEmbedder",
        "RAG_TEST_EMBED_MARKER": str(marker),
        "PYTHONPATH": os.pathsep.join([str(SUPPORT), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    argv = [sys.executable, "-m", "rag", "watch", str(copy_corpus), "--index", str(index), "--json", "-q"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        lines = Lines(proc)
        assert json.loads(lines.next())["files_added"] == 12  # the initial sync's report
        (copy_corpus / "slow.md").write_text("SLOWPOKE notes about glaciers calving.\n", encoding="utf-8")
        wait_until(marker.exists, "the watched commit started")
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(WAIT_S)
        assert status == 0, proc.stderr.read() if proc.stderr else ""
        assert json.loads(lines.next())["files_added"] == 1  # the commit in flight completed and was reported
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with RagPipeline(RagConfig(index=index, quiet=True), embedder=SlowHashEmbedder()) as reader:
        assert top(reader, "notes about glaciers calving") == "slow.md"
        assert reader.verify_report().ok


@pytest.mark.parametrize(("target", "n"), [("embed-batch", 2), ("fsync", 2), ("replace", 1)])
def test_a_kill_during_a_watched_commit_leaves_a_valid_index(
    copy_corpus: Path,
    tmp_path: Path,
    fake_pipeline: Factory,
    watching: Callable[..., FolderWatcher],
    target: str,
    n: int,
) -> None:
    index = tmp_path / "idx"
    fake_pipeline(index=index).ingest([copy_corpus])
    before = fake_pipeline(index=index).info().generation
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, str(CHILD), str(index), str(copy_corpus), target, str(n)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert Lines(proc).next() == "ready\n"
        # one burst with every kind of work: a changed file, a deleted one, new ones of several chunks
        (copy_corpus / "bm25-lexical-search.txt").write_text("Walruses rewrote BM25. " * 40, encoding="utf-8")
        (copy_corpus / "zhongwen-fenci.md").unlink()
        for i in range(3):
            text = " ".join(f"Extra note {i} sentence {j} covers topic {i * 100 + j}." for j in range(60))
            (copy_corpus / f"extra-{i}.txt").write_text(text, encoding="utf-8")
        assert proc.wait(WAIT_S) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    reader = fake_pipeline(index=index)
    report = reader.verify_report()
    assert report.ok, report.problems
    committed = target == "replace"  # killed right after the manifest's rename: the new generation is complete
    assert reader.info().generation == before + (1 if committed else 0)
    if committed:
        assert "Walruses" in texts(reader, "walruses rewrote BM25")
    else:  # the previous content, searchable as it was
        assert "zhongwen-fenci.md" in stored(reader) and "extra-0.txt" not in stored(reader)
        assert top(reader, "BM25 term frequency document length") == "bm25-lexical-search.txt"
        assert "Walruses" not in texts(reader, "walruses rewrote BM25")

    watching(copy_corpus, pipeline=fake_pipeline(index=index))  # a new watcher's initial sync catches up
    assert "Walruses" in texts(reader, "walruses rewrote BM25")
    assert "zhongwen-fenci.md" not in stored(reader) and {"extra-0.txt", "extra-2.txt"} <= stored(reader)
    assert reader.verify() == []


# -- the real default embedder -----------------------------------------------------------------------------


@pytest.mark.slow
def test_watching_the_sample_corpus_with_the_default_embedder(copy_corpus: Path, tmp_path: Path) -> None:
    with RagPipeline(RagConfig(index=tmp_path / "idx", quiet=True)) as pipeline:
        watcher = FolderWatcher(pipeline, [copy_corpus])
        watcher.start()
        try:
            assert watcher.ready.wait(600) and watcher.error is None
            assert pipeline.info().embedder == "e5-multilingual"  # auto, on a corpus with Chinese documents
            note = copy_corpus / "lighthouse.md"
            note.write_text(
                "The Bell Rock Lighthouse, off the coast of Angus in Scotland, was completed in 1810 by Robert "
                "Stevenson. It is the oldest surviving sea-washed lighthouse in the world.\n",
                encoding="utf-8",
            )
            question = "Who built the Bell Rock Lighthouse?"
            wait_until(lambda: top(pipeline, question) == "lighthouse.md", "a new file answers its question", 120)
            note.rename(copy_corpus / "bell-rock.md")
            wait_until(lambda: top(pipeline, question) == "bell-rock.md", "the renamed file answers", 120)
            (copy_corpus / "bell-rock.md").unlink()
            wait_until(lambda: "bell-rock.md" not in stored(pipeline), "the deleted file is gone", 120)
            assert "Bell Rock" not in texts(pipeline, question)
            assert pipeline.verify() == []
        finally:
            watcher.close(120)
