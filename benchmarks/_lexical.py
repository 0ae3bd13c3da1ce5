"""Index folders as rag wrote them before the tantivy engine (BM25 in SQLite FTS5, manifest format 2), made from
current ones, so benchmarks can time and score both lexical engines over the same chunks and vectors."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

from tqdm import tqdm

from rag.index.store import FTS5_SCHEMA, FTS5_TABLE
from rag.text.lexical import tokenize


def fts5_twin(src: Path, dst: Path) -> None:
    """``dst``: the index ``src`` with its BM25 rows in SQLite FTS5 instead of tantivy (vectors hard-linked, the
    SQLite file copied, tokens cached per distinct text: benchmark corpora repeat their texts)."""
    manifest = json.loads((src / "manifest.json").read_text(encoding="utf-8"))
    dst.mkdir(parents=True)
    os.link(src / manifest["files"]["vectors"], dst / manifest["files"]["vectors"])
    shutil.copy2(src / manifest["files"]["chunks"], dst / manifest["files"]["chunks"])
    conn = sqlite3.connect(dst / manifest["files"]["chunks"])
    conn.execute(FTS5_SCHEMA)
    n = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    cache: dict[str, str] = {}

    def rows():  # type: ignore[no-untyped-def]
        for cid, text in tqdm(conn.execute("SELECT id, text FROM chunks").fetchall(), total=n, desc="FTS5 rows"):
            tokens = cache.get(text)
            if tokens is None:
                tokens = cache[text] = " ".join(tokenize(text))
            yield cid, tokens

    conn.executemany(f"INSERT INTO {FTS5_TABLE} (rowid, tokens) VALUES (?, ?)", rows())
    conn.commit()
    conn.close()
    manifest["files"].pop("lexical")
    manifest["format_version"] = 2
    manifest["lexical"] = {"tokenizer": "jieba-search+lower/fts5-porter", "version": 1}
    (dst / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
