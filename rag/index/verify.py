"""Consistency checks of an index generation: what `rag verify` reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rag.index.folder import TUNED_PREFIX, Snapshot, kept_names


@dataclass(frozen=True)
class VerifyReport:
    """``problems``: the index is damaged (counts, ids or files disagree). ``notes``: harmless findings, such as
    the files an interrupted write left behind (the next writer removes them)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(snapshot: Snapshot, folder: Path) -> VerifyReport:
    """What is found in ``snapshot`` and ``folder``: problems (damage) and notes (leftovers)."""
    problems: list[str] = []
    notes: list[str] = []
    m = snapshot.manifest
    store, vectors = snapshot.store, snapshot.vectors
    integrity = store.db.execute("PRAGMA integrity_check").fetchone()[0]
    if integrity != "ok":
        problems.append(f"SQLite integrity check failed: {integrity}")
    if vectors.dimension != int(m["dimension"]):
        problems.append(f"vectors have dimension {vectors.dimension}, manifest says {m['dimension']}")
    chunk_ids = set(store.chunk_ids())
    vector_ids = {int(i) for i in vectors.ids()}
    if store.lexical is not None:
        lexical_ids = store.lexical.ids()
        if len(store.lexical) != len(chunk_ids):
            problems.append(f"lexical index holds {len(store.lexical)} chunks, the store {len(chunk_ids)}")
    else:  # an index made before the tantivy engine: BM25 rows in SQLite FTS5
        lexical_ids = {r[0] for r in store.db.execute("SELECT rowid FROM chunks_fts")}
    if len(vectors) != len(chunk_ids):
        problems.append(f"{len(vectors)} vectors but {len(chunk_ids)} chunks")
    if missing := chunk_ids - vector_ids:
        problems.append(f"{len(missing)} chunks have no vector (e.g. id {min(missing)})")
    if orphans := vector_ids - chunk_ids:
        problems.append(f"{len(orphans)} vectors have no chunk (e.g. id {min(orphans)})")
    if lexical_ids != chunk_ids:
        problems.append(f"lexical index out of step: {len(lexical_ids ^ chunk_ids)} ids differ from the chunks")
    dangling = store.db.execute(
        "SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)"
    ).fetchone()[0]
    if dangling:
        problems.append(f"{dangling} chunks belong to no document")
    wrong_counts = store.db.execute(
        "SELECT d.path FROM documents d LEFT JOIN chunks c ON c.doc_id = d.id "
        "GROUP BY d.id HAVING count(c.id) != d.n_chunks"
    ).fetchall()
    if wrong_counts:
        problems.append(f"{len(wrong_counts)} documents have a wrong chunk count (e.g. {wrong_counts[0][0]})")
    for key, table in (("documents", "documents"), ("chunks", "chunks")):
        if int(m.get(key, -1)) != store.count(table):
            problems.append(f"manifest counts {m.get(key)} {key}, the store has {store.count(table)}")
    next_id = int(store.db.execute("SELECT value FROM meta WHERE key = 'next_chunk_id'").fetchone()[0] or 1)
    if chunk_ids and max(chunk_ids) >= next_id:
        problems.append(f"chunk id counter ({next_id}) is not above the largest id ({max(chunk_ids)})")
    kept = kept_names(m)
    tuned = m.get("tuned")
    if isinstance(tuned, dict) and not (folder / str(tuned.get("folder", ""))).is_dir():
        problems.append(f"the tuned embedder's folder {tuned.get('folder')!r} is missing (rag tune --apply made it)")
    stray = sorted(
        p.name
        for p in folder.iterdir()
        if p.name.startswith(("vectors.", "chunks.", "lexical.", TUNED_PREFIX)) and p.name not in kept
    )
    if stray:
        notes.append(f"files left by an interrupted write (removed by the next ingest): {', '.join(stray)}")
    return VerifyReport(problems, notes)
