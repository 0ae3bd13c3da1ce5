"""FAISS index types at 100k and 1M real-embedding-like vectors: build time, single-query latency and
queries/second, recall@10 against exact search, file size. Then (``--pipeline``) warm ``RagPipeline.retrieve``
latency over a full index folder of the largest size (SQLite chunks + FTS5 + vectors), dense and hybrid.

    .venv/bin/python benchmarks/index_types.py [--sizes 100000,1000000] [--types flat,ivf,hnsw] [--pipeline]
        [--real 20000] [--workdir /tmp/rag-bench]

Vectors: ``--real`` chunks of Python's docs are embedded with MiniLM (cached in WORKDIR). Each synthetic vector
is a real one plus noise drawn from the real vectors' covariance (cosine about 0.85 to its source), so the set
keeps the real topic clusters and anisotropy; random vectors would make every index look good or bad for the
wrong reason. Queries: 40 real questions about Python plus real chunk vectors held out of the base set.
ivf and hnsw use rag's own build (nlist, tuned nprobe/efSearch), exactly as ``rag ingest`` would.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _corpus import peak_rss_mb, prechunked, table

from rag.index.vectors import VectorIndex

QUESTIONS = [
    "How do I parse command line arguments?",
    "What does the with statement do?",
    "How do I read a file line by line?",
    "How are exceptions chained?",
    "What is a generator expression?",
    "How do I sort a list of dictionaries by a key?",
    "How do I start a subprocess and read its output?",
    "What is the global interpreter lock?",
    "How do decorators work?",
    "How do I format a string with f-strings?",
    "What does asyncio.gather do?",
    "How do I create a virtual environment?",
    "What is the difference between a list and a tuple?",
    "How do I serialize an object to JSON?",
    "How do I compile a regular expression?",
    "What does the walrus operator do?",
    "How do I define a dataclass?",
    "How is a dictionary ordered?",
    "How do I open a SQLite database?",
    "What does functools.lru_cache do?",
    "How do I measure execution time of small code snippets?",
    "What are type hints?",
    "How do I write unit tests?",
    "How do I log messages to a file?",
    "How does garbage collection work?",
    "What is a context manager?",
    "How do I work with dates and times?",
    "How do I make an HTTP request with the standard library?",
    "What does the pathlib module provide?",
    "How do I use a thread pool?",
    "What are abstract base classes?",
    "How do I pickle an object?",
    "What is the difference between is and ==?",
    "How do I read a CSV file?",
    "What does __init__.py do in a package?",
    "How do I handle keyboard interrupts?",
    "How do I get environment variables?",
    "What is a named tuple?",
    "How do I compress data with gzip?",
    "How does the import system find modules?",
]


def real_vectors(n: int, workdir: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(chunk vectors, chunk texts, question vectors) with MiniLM, cached in ``workdir``."""
    from rag.embed.st import MINILM, SentenceTransformerEmbedder

    cache = workdir / f"real_{n}.npz"
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        return data["vectors"], list(data["texts"]), data["questions"]
    texts = prechunked(n)
    emb = SentenceTransformerEmbedder(MINILM)
    t0 = time.perf_counter()
    vectors = emb.embed_documents(texts)
    print(f"embedded {len(texts)} real chunks in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    questions = emb.embed_queries(QUESTIONS)
    np.savez(cache, vectors=vectors, texts=np.array(texts), questions=questions)
    return vectors, texts, questions


def synthesize(real: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors near real ones (noise from the real covariance); also returns each one's source row."""
    rng = np.random.default_rng(seed)
    centred = real - real.mean(axis=0)
    cov = centred.T @ centred / len(real)
    chol = np.linalg.cholesky(cov + 1e-6 * np.eye(cov.shape[0]))
    source = rng.integers(0, len(real), n)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        rows = source[start : start + 100_000]
        noise = rng.standard_normal((len(rows), real.shape[1])).astype(np.float32) @ chol.T.astype(np.float32)
        block = real[rows] + 0.7 * noise
        out[start : start + len(rows)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out, source


def exact_top(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    from rag.index.vectors import _exact_top_ids

    return _exact_top_ids(base, queries, k)


def bench_type(kind: str, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, workdir: Path) -> list[object]:
    ids = np.arange(len(base), dtype=np.int64)
    t0 = time.perf_counter()
    index = VectorIndex.build(kind, base.shape[1], ids, base)
    build = time.perf_counter() - t0
    path = workdir / f"{kind}_{len(base)}.faiss"
    index.save(path)
    size_mb = path.stat().st_size / 1e6
    path.unlink()
    index.search(queries[:5], 10)  # warm-up
    lat = []
    found = np.empty((len(queries), 10), dtype=np.int64)
    for i, q in enumerate(queries):
        t = time.perf_counter()
        found[i] = index.search(q, 10)[1][0]
        lat.append((time.perf_counter() - t) * 1000)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.tolist(), truth.tolist(), strict=True)])
    lat_a = np.array(lat)
    return [
        f"{len(base):,}",
        kind,
        ", ".join(f"{k}={v}" for k, v in index.params().items()) or "-",
        f"{build:.1f}",
        f"{size_mb:.0f}",
        f"{np.percentile(lat_a, 50):.2f}",
        f"{np.percentile(lat_a, 95):.2f}",
        f"{1000 / lat_a.mean():.0f}",
        f"{recall:.3f}",
    ]


def pipeline_index(folder: Path, base: np.ndarray, source: np.ndarray, texts: list[str], kind: str) -> float:
    """An index folder holding ``base`` as chunk vectors, each chunk the text of its source chunk (one
    document per 50 chunks), written through rag's own store and writer. Returns seconds."""
    from rag.index.folder import IndexDir
    from rag.types import Chunk

    t0 = time.perf_counter()
    index_dir = IndexDir(folder)
    with index_dir.write() as writer:
        store = writer.store()
        ids = np.zeros(len(base), dtype=np.int64)
        per_doc = 50
        for d, start in enumerate(range(0, len(base), per_doc)):
            rows = range(start, min(start + per_doc, len(base)))
            chunks = [
                Chunk(text=texts[source[r]], start=0, end=len(texts[source[r]]), start_line=1, end_line=1) for r in rows
            ]
            chunk_ids = store.allocate_ids("next_chunk_id", len(chunks))
            ids[start : start + len(chunks)] = np.asarray(chunk_ids)
            store.add_document(
                path=f"synthetic/doc-{d}.txt",
                content_hash=f"h{d}",
                mtime=0.0,
                size=0,
                file_type="text",
                language="en",
                title=None,
                metadata={},
                chunks=chunks,
                chunk_ids=list(chunk_ids),
            )
        vectors = VectorIndex.build(kind, base.shape[1], ids, base)
        writer.replace_vectors(vectors)
        writer.commit(
            {
                "embedder": "minilm",
                "dimension": base.shape[1],
                "normalized": True,
                "metric": "inner_product",
                "index_type": vectors.kind,
                "index_policy": kind,
                "index_params": vectors.params(),
                "index_trained_on": len(base),
                "chunker": {"chunk_size": 200, "chunk_overlap": 30, "unit": "embedder tokens"},
            }
        )
    return time.perf_counter() - t0


def bench_pipeline(folder: Path) -> list[list[object]]:
    from rag.pipeline import RagPipeline

    rows = []
    for mode in ("dense", "hybrid"):
        p = RagPipeline.from_index(folder, retrieval=mode, quiet=True)
        p.retrieve(QUESTIONS[0], k=10)  # warm: model loaded, index opened
        lat = []
        for q in QUESTIONS * 2:
            p._queries.clear()  # every query is embedded again: the latency a new question sees
            t = time.perf_counter()
            p.retrieve(q, k=10)
            lat.append((time.perf_counter() - t) * 1000)
        a = np.array(lat)
        rows.append(
            [
                mode,
                p.info().index_type,
                f"{p.info().chunks:,}",
                f"{np.percentile(a, 50):.1f}",
                f"{np.percentile(a, 95):.1f}",
            ]
        )
        p.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--types", default="flat,ivf,hnsw")
    ap.add_argument("--real", type=int, default=20000, help="real chunk vectors to start from")
    ap.add_argument("--held-out", type=int, default=460, help="real chunk vectors kept out of the base, as queries")
    ap.add_argument("--pipeline", action="store_true", help="also time RagPipeline.retrieve at the largest size")
    ap.add_argument("--pipeline-type", default="auto", help="index type of the pipeline index (auto: by size)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "rag-bench")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)
    logging.getLogger("rag.index.vectors").setLevel(logging.DEBUG)
    args.workdir.mkdir(parents=True, exist_ok=True)
    real, texts, questions = real_vectors(args.real + args.held_out, args.workdir)
    held = real[-args.held_out :]
    real, texts = real[: -args.held_out], texts[: -args.held_out]
    queries = np.ascontiguousarray(np.vstack([questions, held]), dtype=np.float32)
    rows: list[list[object]] = []
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        base, source = synthesize(real, n)
        cos = (base[:2000] * real[source[:2000]]).sum(axis=1)
        print(f"{n:,} vectors; median cosine to their real source {np.median(cos):.3f}", file=sys.stderr)
        truth = exact_top(base, queries, 10)
        for kind in args.types.split(","):
            rows.append(bench_type(kind, base, queries, truth, args.workdir))
            print(rows[-1], file=sys.stderr, flush=True)
        if args.pipeline and n == sizes[-1]:
            folder = args.workdir / f"pipeline_{n}"
            if not (folder / "manifest.json").exists():
                from rag.index.vectors import choose_kind

                kind = choose_kind(args.pipeline_type, n)
                seconds = pipeline_index(folder, base, source, texts, kind)
                print(f"pipeline index of {n:,} chunks ({kind}) written in {seconds:.0f} s", file=sys.stderr)
            del base
            prow = bench_pipeline(folder)
    print(
        f"\n{len(queries)} queries (40 real questions + {args.held_out} held-out real chunks); "
        f"latency = one query at a time, top-10; peak RSS {peak_rss_mb():.0f} MB\n"
    )
    print(
        table(
            ["vectors", "type", "parameters", "build s", "file MB", "p50 ms", "p95 ms", "queries/s", "recall@10"], rows
        )
    )
    if args.pipeline:
        print("\nRagPipeline.retrieve(question, k=10), warm model, each question embedded anew:\n")
        print(table(["retrieval", "index type", "chunks", "p50 ms", "p95 ms"], prow))


if __name__ == "__main__":
    main()
