"""Where the seconds of one `rag ask` go, cold (a fresh process, caches already built) and warm (the same
pipeline asked again, as `rag serve` is).

    python benchmarks/ask_latency.py [--index indexes/default] [--question "..."] [--generator G]

Cold: importing rag and its stack, opening the index, loading the embedder, loading the generator, retrieving,
then the answer streamed: time to the first token (prompt prefill) and the rest (decode). Warm: the generator's
warm-up as `rag serve` runs it when it starts (``Generator.warm_up``: the rules of each language read into the
prompt cache), then new questions, alternating English and Chinese, on the loaded pipeline: first token and total
(the cold question again last: a repeated prompt is nearly free). Peak RSS at the end. Also the wall time of a
whole `rag ask` subprocess, the number a user feels.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

QUESTIONS = ("When was the Transformer architecture introduced?", "检索增强生成是哪一年提出的？")
WARM_QUESTIONS = (
    "检索增强生成是哪一年提出的？",
    "Who proposed retrieval-augmented generation?",
    "FAISS 是哪家公司开源的？",
    "Which company wrote the Transformer paper?",
    "中文文本的词与词之间有空格吗？",
)


def stream_times(pipeline: object, question: str) -> tuple[float, float, str]:
    from rag.types import DoneEvent, TokenEvent

    t0 = time.perf_counter()
    first = None
    text = ""
    for event in pipeline.ask_stream(question):  # type: ignore[attr-defined]
        if isinstance(event, TokenEvent) and first is None:
            first = time.perf_counter() - t0
        if isinstance(event, DoneEvent):
            text = event.answer.text
    return first or 0.0, time.perf_counter() - t0, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=Path("indexes/default"))
    parser.add_argument("--generator", default=None)
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    from rag import RagConfig, RagPipeline

    rows.append(("import rag", time.perf_counter() - t0))
    t = time.perf_counter()
    import numpy  # noqa: F401
    import torch  # noqa: F401

    rows.append(("import numpy + torch", time.perf_counter() - t))
    t = time.perf_counter()
    pipeline = RagPipeline(RagConfig.load(index=args.index, generator=args.generator, quiet=True))
    manifest = pipeline._current().manifest
    rows.append(("open the index", time.perf_counter() - t))
    t = time.perf_counter()
    pipeline._embedders.for_index(manifest).embed_query("warm up")
    rows.append(("load the embedder (+1 query)", time.perf_counter() - t))
    t = time.perf_counter()
    pipeline.generator().load()
    rows.append(("load the generator", time.perf_counter() - t))
    t = time.perf_counter()
    from rag.text.lexical import load_tokenizer

    load_tokenizer()  # as RagPipeline.warm_up (rag serve) does: else the first Chinese question pays for it
    rows.append(("load jieba", time.perf_counter() - t))
    t = time.perf_counter()
    pipeline.retrieve(QUESTIONS[0])
    rows.append(("retrieve (cold)", time.perf_counter() - t))
    first, total, text = stream_times(pipeline, QUESTIONS[0])
    rows.append(("first token (retrieve + prefill)", first))
    rows.append(("rest of the answer (decode + checks)", total - first))
    print(f"cold, in one process ({args.index}, answer: {text!r})\n")
    print("| step | seconds |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")
    print(f"| total | {sum(s for _, s in rows):.2f} |\n")
    from rag.answer.turn import warm_up

    t = time.perf_counter()
    warm_up(pipeline.generator())  # what `rag serve` runs
    print(f"warm-up (`rag serve` runs it once when it starts): {time.perf_counter() - t:.2f} s\n")
    print("| warm (loaded pipeline) | first token s | total s | answer |\n|---|---|---|---|")
    for question in (*WARM_QUESTIONS, QUESTIONS[0]):
        first, total, text = stream_times(pipeline, question)
        print(f"| {question} | {first:.2f} | {total:.2f} | {text[:60]!r} |")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    command = [sys.executable, "-m", "rag", "ask", QUESTIONS[0], "--index", str(args.index), "-q"]
    if args.generator:
        command += ["--generator", args.generator]
    t = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    print(f"`rag ask` as a fresh process: {time.perf_counter() - t:.2f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
