"""What an ingest changes: stat first, then content hash; gone documents only with sync."""

from __future__ import annotations

import os
from pathlib import Path

from rag.index.store import StoredDocument
from rag.ingest.discovery import file_hash, find_files
from rag.ingest.plan import is_under, load_items, plan_files


def _stored(path: Path, digest: str, size: int, mtime: float, doc_id: int = 1) -> StoredDocument:
    return StoredDocument(doc_id, str(path), digest, mtime, size, "text", "en", 1)


def test_unchanged_by_stat_or_by_hash_new_and_changed_files(tmp_path: Path) -> None:
    same, touched, edited, new = (tmp_path / n for n in ("same.txt", "touched.txt", "edited.txt", "new.txt"))
    for p in (same, touched, edited, new):
        p.write_text(f"text of {p.name}\n", encoding="utf-8")
    existing = {}
    for i, p in enumerate((same, touched, edited)):
        st = p.stat()
        existing[str(p.resolve())] = _stored(p.resolve(), file_hash(p), st.st_size, st.st_mtime, i)
    os.utime(touched, (1, 1))  # new mtime, same content: the hash decides
    edited.write_text("other text, other hash\n", encoding="utf-8")
    files, skipped = find_files([tmp_path])
    plan = plan_files(files, existing, [tmp_path], sync=False, skipped=skipped)
    assert plan.unchanged == 2 and not plan.gone and not skipped
    todo = {Path(found.path).name: old for found, _, old in plan.todo}
    assert set(todo) == {"edited.txt", "new.txt"}
    assert todo["new.txt"] is None and todo["edited.txt"] is existing[str(edited.resolve())]
    items = list(load_items(plan.todo, 1 << 20, []))
    assert sorted(Path(i.key).name for i in items) == ["edited.txt", "new.txt"]


def test_gone_documents_only_with_sync_and_only_under_the_roots(tmp_path: Path) -> None:
    root, other = tmp_path / "docs", tmp_path / "docs-old"
    root.mkdir()
    other.mkdir()
    existing = {
        str(root / "deleted.txt"): _stored(root / "deleted.txt", "x", 1, 1.0),
        str(other / "elsewhere.txt"): _stored(other / "elsewhere.txt", "y", 1, 1.0, 2),
    }
    files, skipped = find_files([root])
    assert plan_files(files, existing, [root], sync=False, skipped=skipped).gone == []
    gone = plan_files(files, existing, [root], sync=True, skipped=skipped).gone
    assert [Path(d.path).name for d in gone] == ["deleted.txt"]  # docs-old is not under docs
    assert is_under("/a/b/c.txt", ["/a/b"]) and is_under("/a/b", ["/a/b"]) and not is_under("/a/bc", ["/a/b"])


def test_the_automatic_embedder_choice_reads_a_sample_spread_over_the_folder() -> None:
    from rag.ingest.run import spread_first

    items = [f"en/{i}" for i in range(150)] + [f"zh/{i}" for i in range(130)]
    reordered = spread_first(items, 64)
    assert sorted(reordered) == sorted(items)  # nothing lost or repeated
    sample = reordered[:64]
    assert 25 <= sum(1 for x in sample if x.startswith("zh/")) <= 35
    assert spread_first(items[:10], 64) == items[:10]
