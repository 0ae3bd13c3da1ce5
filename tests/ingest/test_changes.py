"""``RagPipeline.ingest_changes``: what a watcher's changed paths do to the index (no watcher here): the same files
as a folder walk of the roots, ``sync`` limited to the changed paths, one commit at most."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from rag.pipeline import RagPipeline

Factory = Callable[..., RagPipeline]


def names(p: RagPipeline, root: Path) -> set[str]:
    """The stored documents, as paths relative to ``root``."""
    return {Path(d.path).relative_to(root.resolve()).as_posix() for d in p.documents()}


def generation(p: RagPipeline) -> int:
    return p.info().generation


def test_changed_files_and_folders_are_applied_and_nothing_else(tmp_path: Path, fake_pipeline: Factory) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("Alpha notes about apples.\n", encoding="utf-8")
    (docs / "sub" / "b.md").write_text("Beta notes about bananas.\n", encoding="utf-8")
    outside = tmp_path / "outside.md"
    outside.write_text("Not watched at all.\n", encoding="utf-8")
    p = fake_pipeline()
    first = p.ingest_changes([docs], [docs])  # the roots themselves: a full sync
    assert (first.files_added, names(p, docs)) == (2, {"a.md", "sub/b.md"})

    # new files: one plain, one hidden, one in a hidden folder, one of an unsupported type, one outside the root
    (docs / "c.md").write_text("Gamma notes about cherries.\n", encoding="utf-8")
    (docs / ".hidden.md").write_text("hidden\n", encoding="utf-8")
    (docs / ".git").mkdir()
    (docs / ".git" / "HEAD.md").write_text("ref\n", encoding="utf-8")
    (docs / "data.bin").write_bytes(b"\x00\x01")
    changed = [docs / "c.md", docs / ".hidden.md", docs / ".git" / "HEAD.md", docs / "data.bin", outside]
    report = p.ingest_changes(changed, [docs])
    assert (report.files_seen, report.files_added, report.skipped) == (1, 1, [])
    assert names(p, docs) == {"a.md", "sub/b.md", "c.md"}

    # a folder moved away and another moved in: the old one's documents go, the new one's come (vectors reused)
    before = generation(p)
    shutil.move(docs / "sub", docs / "renamed")
    report = p.ingest_changes([docs / "sub", docs / "renamed"], [docs])
    assert (report.files_added, report.files_removed, report.chunks_embedded) == (1, 1, 0)
    assert names(p, docs) == {"a.md", "renamed/b.md", "c.md"}
    assert generation(p) == before + 1  # one commit for both

    # unchanged paths, paths gone that were never stored: no commit
    report = p.ingest_changes([docs / "a.md", docs / "never-there.md"], [docs])
    assert (report.files_unchanged, report.files_removed) == (1, 0)
    assert generation(p) == before + 1
    assert p.verify() == []


def test_a_gone_path_removes_only_documents_under_it(tmp_path: Path, fake_pipeline: Factory) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("keep.md", "gone.md", "also-gone.md"):
        (docs / name).write_text(f"Text of {name}.\n", encoding="utf-8")
    p = fake_pipeline()
    p.ingest([docs])
    (docs / "gone.md").unlink()
    (docs / "also-gone.md").unlink()
    # only gone.md was reported: also-gone.md stays until a change (or the initial sync) names it
    report = p.ingest_changes([docs / "gone.md"], [docs])
    assert report.files_removed == 1 and names(p, docs) == {"keep.md", "also-gone.md"}
    report = p.ingest_changes([docs], [docs])
    assert report.files_removed == 1 and names(p, docs) == {"keep.md"}


def test_the_index_folder_inside_a_root_is_left_out(tmp_path: Path, fake_pipeline: Factory) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Alpha.\n", encoding="utf-8")
    p = fake_pipeline(index=docs / "idx")
    p.ingest_changes([docs], [docs])
    assert (docs / "idx" / "manifest.json").is_file()  # a supported suffix: ingested unless left out
    report = p.ingest_changes([docs, docs / "idx" / "manifest.json"], [docs])
    assert report.files_seen == 1 and names(p, docs) == {"a.md"}


def test_a_watched_file_root(tmp_path: Path, fake_pipeline: Factory) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    note = docs / "note.md"
    note.write_text("A note about owls.\n", encoding="utf-8")
    (docs / "other.md").write_text("Another file beside it.\n", encoding="utf-8")
    p = fake_pipeline()
    p.ingest_changes([note], [note])
    p.ingest_changes([docs / "other.md"], [note])  # beside the watched file, not under it: ignored
    assert names(p, docs) == {"note.md"}
    note.unlink()
    assert p.ingest_changes([note], [note]).files_removed == 1
    assert names(p, docs) == set()


def test_links_follow_the_rules_of_a_walk_of_the_root(tmp_path: Path, fake_pipeline: Factory) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "inside.md").write_text("A note kept inside the watched folder.\n", encoding="utf-8")
    (tmp_path / "secret.md").write_text("A file outside the watched folder.\n", encoding="utf-8")
    (docs / "sub" / "to-inside.md").symlink_to(docs / "inside.md")  # outside sub/, inside the root: followed
    (docs / "sub" / "to-outside.md").symlink_to(tmp_path / "secret.md")
    p = fake_pipeline()
    walk = fake_pipeline(index=tmp_path / "walk").ingest([docs])
    report = p.ingest_changes([docs / "sub" / "to-inside.md", docs / "sub" / "to-outside.md"], [docs])
    assert [(Path(s.path).name, s.reason) for s in report.skipped] == [
        (Path(s.path).name, s.reason) for s in walk.skipped
    ]
    assert [Path(s.path).name for s in report.skipped] == ["to-outside.md"]
    assert names(p, docs) == {"inside.md"}  # stored under the link's target, as a walk stores it
