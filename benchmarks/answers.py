"""Answer quality of the generator backends on the QA sets: EM, F1, answer contained, faithfulness, citation
accuracy, refusals, seconds per answer.

One index per set (default embedder); every generator answers the same questions (spread over qa.jsonl).
Also the refusal rate on questions whose paragraph was held out of a second index.

    python benchmarks/answers.py [--sets xquad/beir_en,xquad/beir_zh,cmrc2018/beir_dev]
                                 [--generators extractive,qwen2.5-0.5b] [--questions 60]

A generator may carry answer settings after a colon, to compare variants of one backend in the same run, e.g.
``--generators "qwen2.5-0.5b,qwen2.5-0.5b:compress_passages=false,qwen2.5-0.5b:grounding=snap"``
(settings separated by ``+``; any flat ``RagConfig`` name).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

from quality import data_root  # type: ignore[import-not-found]

from rag.config import RagConfig
from rag.evaluation import BeirSet, build_index, held_out, load_beir, score_answers


def variant(spec: str) -> tuple[str, dict[str, str]]:
    """``name:key=value+key=value`` -> (name, {key: value})."""
    name, _, rest = spec.partition(":")
    settings = dict(item.split("=", 1) for item in rest.split("+") if item)
    return name, settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="xquad/beir_en,xquad/beir_zh,cmrc2018/beir_dev")
    parser.add_argument("--generators", default="extractive,qwen2.5-0.5b")
    parser.add_argument("--questions", type=int, default=60)
    args = parser.parse_args()
    root = data_root()
    generators = args.generators.split(",")
    rows = []
    for name in args.sets.split(","):
        data = load_beir(root / name)
        if not data.qa:
            print(f"skipping {name}: no qa.jsonl", file=sys.stderr)
            continue
        removed = held_out(data)
        removed_qa = [q for q in data.qa if str(q.get("context_id")) in removed][: args.questions]
        kept = BeirSet(data.name, {k: v for k, v in data.corpus.items() if k not in removed}, {}, {}, removed_qa)
        with tempfile.TemporaryDirectory() as tmp:
            config = RagConfig(index=Path(tmp) / "full", quiet=True)
            full, _ = build_index(data, config)
            partial, _ = build_index(kept, config.replace(index=Path(tmp) / "partial"))
            full_config, partial_config = full.config, partial.config
            for generator in generators:
                backend, settings = variant(generator)
                for pipeline, base in ((full, full_config), (partial, partial_config)):
                    pipeline.config = base.replace(generator=backend, **settings)
                    pipeline.reload_generator()  # the next ask builds the newly configured backend
                scores = score_answers(full, data, args.questions)
                gone = score_answers(partial, kept, len(removed_qa))
                assert scores is not None and gone is not None
                scores = dataclasses.replace(
                    scores, refusal_when_removed=gone.refusal_rate, removed_questions=gone.questions
                )
                rows.append((name, full.info().embedder, generator, scores))
                print(f"{name} {generator}: {scores}", flush=True)
            full.close()
            partial.close()
    print()
    print(
        "| set | embedder | generator | EM | F1 | contained | faithful | citation acc. | refused (answerable) "
        "| refused (paragraph removed) | s/answer | questions |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, embedder, generator, s in rows:
        print(
            f"| {name} | {embedder} | {generator} | {s.exact_match:.3f} | {s.f1:.3f} | {s.answer_contained:.3f} | "
            f"{s.faithfulness:.3f} | {s.citation_accuracy:.3f} | "
            f"{s.refusal_rate:.3f} | {s.refusal_when_removed:.3f} ({s.removed_questions}) | "
            f"{s.seconds_per_answer:.2f} | {s.questions} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
