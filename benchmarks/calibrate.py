"""Calibrate the relevance threshold ("no relevant passage") per embedder and question script.

For each corpus, the top-1 cosine similarity of its own questions (answerable: the answer paragraph is in
the corpus) is compared with that of questions from another set over different articles (unanswerable).
Prints, per candidate threshold, the share of answerable questions kept and unanswerable ones refused, and
the threshold that keeps at least --keep (default 0.95) of the answerable questions.

    python benchmarks/calibrate.py [--keep 0.95] [--max-queries 400]

With --coverage: the ``min_coverage`` gate and the ``lexical_relevance`` rescue instead. On each QA set, questions
whose paragraph is in the index (answerable) are compared with those whose paragraph was held out of a second index
(``held_out``): the share of each refused before the model runs (no relevant passage, or gated), per candidate
``min_coverage`` and with the rescue off and at 0.5, exactly as ``rag.answer.turn.plan`` decides.

    python benchmarks/calibrate.py --coverage [--max-queries 200]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from quality import data_root  # type: ignore[import-not-found]

from rag.answer.turn import gated, relevant_hits
from rag.config import RagConfig
from rag.evaluation import BeirSet, build_index, held_out, load_beir
from rag.text.langdetect import detect_language

# (embedder, corpus set, unanswerable questions from)
CASES = [
    ("minilm", "xquad/beir_en", "scifact"),
    ("e5-multilingual", "xquad/beir_en", "scifact"),
    ("e5-multilingual", "xquad/beir_zh", "cmrc2018/beir_trial"),
    ("e5-multilingual", "cmrc2018/beir_trial", "xquad/beir_zh"),
]


def top1(pipeline: object, questions: list[str]) -> np.ndarray:
    return np.array([max((h.similarity for h in pipeline.retrieve(q, k=1)), default=0.0) for q in questions])


COVERAGE_SETS = ["xquad/beir_en", "xquad/beir_zh", "cmrc2018/beir_dev"]


def refused_before_the_model(pipeline: object, questions: list[str], threshold: float, lexical: float) -> float:
    """Share of ``questions`` refused before the model runs, as ``rag.answer.turn.plan`` decides: no relevant hit
    (cosine threshold, or ``lexical`` coverage), or the min_coverage gate at ``threshold``."""
    refused = 0
    for q in questions:
        language = detect_language(q)
        hits = pipeline.retrieve(q, k=4)  # type: ignore[attr-defined]
        relevant = relevant_hits(q, hits, pipeline.min_score(language), lexical)  # type: ignore[attr-defined]
        refused += not relevant or gated(q, language, relevant, threshold)
    return refused / max(1, len(questions))


def coverage(limit: int) -> None:
    root = data_root()
    thresholds = (0.18, 0.2, 0.22, 0.24)
    lexical = (0.0, 0.5)
    print(
        "| set | answerable | removed | "
        + " | ".join(f"t={t}, lexical {r}: refused answerable / removed" for t in thresholds for r in lexical)
    )
    for name in COVERAGE_SETS:
        data = load_beir(root / name)
        removed = held_out(data)
        gone = [x["question"] for x in data.qa if str(x.get("context_id")) in removed][:limit]
        kept_qa = [x for x in data.qa if str(x.get("context_id")) not in removed]
        answerable = [x["question"] for x in kept_qa[:: max(1, len(kept_qa) // limit)][:limit]]
        kept = BeirSet(data.name, {k: v for k, v in data.corpus.items() if k not in removed}, {}, {}, [])
        with tempfile.TemporaryDirectory() as tmp:
            config = RagConfig(index=Path(tmp) / "full", quiet=True)
            full, _ = build_index(data, config)
            partial, _ = build_index(kept, config.replace(index=Path(tmp) / "partial"))
            cells = [
                f"{refused_before_the_model(full, answerable, t, r):.3f} / "
                f"{refused_before_the_model(partial, gone, t, r):.3f}"
                for t in thresholds
                for r in lexical
            ]
            full.close()
            partial.close()
        print(f"| {name} | {len(answerable)} | {len(gone)} | " + " | ".join(cells), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=float, default=0.95)
    parser.add_argument("--max-queries", type=int, default=400)
    parser.add_argument("--coverage", action="store_true", help="calibrate min_coverage instead")
    args = parser.parse_args()
    if args.coverage:
        coverage(min(args.max_queries, 200))
        return 0
    root = data_root()
    for embedder, corpus_name, negative_name in CASES:
        data = load_beir(root / corpus_name)
        negatives = list(load_beir(root / negative_name).queries.values())[: args.max_queries]
        positives = list(data.queries.values())[: args.max_queries]
        with tempfile.TemporaryDirectory() as tmp:
            config = RagConfig(index=Path(tmp) / "i", embedder=embedder, retrieval="dense", quiet=True)
            pipeline, _ = build_index(data, config)
            pos, neg = top1(pipeline, positives), top1(pipeline, negatives)
            pipeline.close()
        language = detect_language(positives[0])
        chosen = float(np.quantile(pos, 1 - args.keep))
        print(f"\n{embedder} on {corpus_name} ({language} questions); unanswerable: {negative_name}")
        print(f"  answerable top-1 cosine: p5 {np.quantile(pos, 0.05):.3f} median {np.median(pos):.3f}")
        print(f"  unanswerable top-1 cosine: median {np.median(neg):.3f} p95 {np.quantile(neg, 0.95):.3f}")
        print("  threshold  kept-answerable  refused-unanswerable")
        for t in sorted({*np.round(np.linspace(pos.min(), np.quantile(pos, 0.5), 8), 3), round(chosen, 3)}):
            print(f"  {t:9.3f}  {np.mean(pos >= t):15.3f}  {np.mean(neg < t):20.3f}")
        print(f"  -> keep {args.keep:.0%} of answerable: threshold {chosen:.3f}, refuses {np.mean(neg < chosen):.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
