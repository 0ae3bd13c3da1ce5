"""Which passage a factoid question reads first: retrieval's rank order against ``rag.answer.select.read_first``.

A factoid question reads only its first passage (``factoid_passages = 1``). For the factoid questions of each QA
set (spread over qa.jsonl), the share whose passage read first holds a reference answer, with the top 4 hits in
rank order and after ``read_first``; also the share with a reference answer in any of the 4 (the ceiling). No
generator runs: seconds per set, after the index is built.

    python benchmarks/select_passage.py [--sets xquad/beir_en,xquad/beir_zh,cmrc2018/beir_dev] [--questions 300]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from quality import data_root  # type: ignore[import-not-found]

from rag.answer.prompting import answer_form
from rag.answer.select import read_first
from rag.config import RagConfig
from rag.evaluation import build_index, flatten_answers, load_beir
from rag.text.langdetect import detect_language


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="xquad/beir_en,xquad/beir_zh,cmrc2018/beir_dev")
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    rows = []
    for name in args.sets.split(","):
        data = load_beir(data_root() / name)
        step = max(1, len(data.qa) // args.questions)
        sample = data.qa[::step][: args.questions]
        with tempfile.TemporaryDirectory() as tmp:
            pipeline, _ = build_index(data, RagConfig(index=Path(tmp) / "index", quiet=True))
            factoids = ranked = chosen = anywhere = 0
            for item in sample:
                question = item["question"]
                if answer_form(question, detect_language(question)) != "short":
                    continue
                hits = pipeline.retrieve(question, args.k)
                if not hits:
                    continue
                references = flatten_answers(item["answers"])

                def holds(text: str, references: list[str] = references) -> bool:
                    return any(r in text for r in references)

                factoids += 1
                ranked += holds(hits[0].chunk.text)
                chosen += holds(read_first(question, hits)[0].chunk.text)
                anywhere += any(holds(h.chunk.text) for h in hits)
            pipeline.close()
        rows.append((name, factoids, ranked / factoids, chosen / factoids, anywhere / factoids))
        print(rows[-1], flush=True)
    print()
    print(f"| set | factoids | answer in the passage read first: rank order | read_first | in any of {args.k} |")
    print("|---|---|---|---|---|")
    for name, n, ranked_share, chosen_share, any_share in rows:
        print(f"| {name} | {n} | {ranked_share:.3f} | {chosen_share:.3f} | {any_share:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
