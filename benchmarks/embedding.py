"""Embedding throughput of MiniLM on pre-chunked text: rag's encoder against sentence-transformers' own
``encode`` in float32 (what LangChain's HuggingFaceEmbeddings and LlamaIndex call), in one process.

    .venv/bin/python benchmarks/embedding.py [--chunks 1000]

Prints chunks/second, CPU-seconds per 1,000 chunks, the ratio against the baseline, and the cosine of each
vector to the float32 one (bf16 must stay close for retrieval quality to hold; check with benchmarks/quality.py).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
from _corpus import prechunked, table

from rag.embed import openvino as openvino_backend
from rag.embed.hardware import cpu_has_native_bf16
from rag.embed.st import MINILM, SentenceTransformerEmbedder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=1000)
    ap.add_argument("--batch-sizes", default="16,32,64")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    texts = prechunked(args.chunks)
    print(f"{len(texts)} chunks of Python's docs (200 MiniLM tokens), torch threads {torch.get_num_threads()}, "
          f"native bf16: {cpu_has_native_bf16()}")
    rows: list[list[object]] = []
    ref: np.ndarray | None = None
    base_rate = 0.0

    def run(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        nonlocal ref, base_rate
        fn(texts[:64])  # warm-up: first-call allocations
        t0, c0 = time.perf_counter(), time.process_time()
        vecs = np.asarray(fn(texts), dtype=np.float32)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        if ref is None:
            ref, base_rate = vecs, len(texts) / wall
        cos = (vecs * ref).sum(axis=1)
        rate = len(texts) / wall
        rows.append([name, f"{rate:.1f}", f"{1000 * cpu / len(texts):.1f}", f"{rate / base_rate:.2f}x",
                     f"{cos.min():.4f}", f"{cos.mean():.5f}"])
        print(rows[-1], flush=True)

    st = SentenceTransformerEmbedder(MINILM, precision="float32")
    st_model = st._load()
    run("sentence-transformers encode, fp32, batch 32 (baseline)",
        lambda t: st_model.encode(t, batch_size=32, convert_to_numpy=True))
    fp32 = SentenceTransformerEmbedder(MINILM, precision="float32", batch_size=32, backend="torch")
    run("rag, torch fp32, batch 32", fp32.embed_documents)
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        emb = SentenceTransformerEmbedder(MINILM, precision="bfloat16", batch_size=bs, backend="torch")
        run(f"rag, torch bf16, batch {bs}", emb.embed_documents)
    if openvino_backend.available():
        ov = SentenceTransformerEmbedder(MINILM, precision="float32", backend="openvino")
        run("rag, OpenVINO fp32, batch 32", ov.embed_documents)
        ov = SentenceTransformerEmbedder(MINILM, precision="bfloat16", backend="openvino")
        run("rag, OpenVINO bf16, batch 32", ov.embed_documents)
    auto = SentenceTransformerEmbedder(MINILM)
    auto._load()
    run(f"rag default (auto: {auto.backend} {auto.dtype}, batch 32)", auto.embed_documents)
    print()
    print(table(["encoder", "chunks/s", "CPU-s / 1k chunks", "vs baseline", "min cos to fp32", "mean cos"], rows))


if __name__ == "__main__":
    main()
