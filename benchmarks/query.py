"""Query latency over the indexes that ``benchmarks/ingest.py`` built: cold start and warm top-10 retrieval of rag
(hybrid, its default, and dense only), LangChain (FAISS) and LlamaIndex (in-memory vector store), each system in
its own process, one after another.

    .venv-bench/bin/python benchmarks/ingest.py --workdir DIR [--files 60]
    .venv-bench/bin/python benchmarks/query.py --workdir DIR [--systems rag,rag-dense,langchain,llamaindex]

* cold start: wall seconds from the child's process creation (interpreter start, before the library is imported)
  to the first question's top-10 results: imports, index load, model load, one query.
* warm latency: top-10 retrieval of each of the questions below, 3 times each, after the cold query; p50 and p95
  in ms. Every call embeds its question: rag caches query embeddings (repeated questions skip the model), and
  that cache is cleared before each timed call so that all systems do the same work.
* peak RSS: the child's ``ru_maxrss`` at the end.

rag: ``RagPipeline.from_index(path, quiet=True).retrieve(q, k=10)`` (``retrieval="dense"`` for rag-dense);
langchain: ``FAISS.load_local(...).similarity_search(q, k=10)`` with ``HuggingFaceEmbeddings``;
llamaindex: ``load_index_from_storage(...).as_retriever(similarity_top_k=10).retrieve(q)``
with ``HuggingFaceEmbedding``. All with MiniLM from the same local folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _corpus import json_child, peak_rss_mb, run_systems, select_systems, table

SYSTEMS = ("rag", "rag-dense", "langchain", "llamaindex")
INDEX_OF = {"rag": "rag", "rag-dense": "rag", "langchain": "langchain", "llamaindex": "llamaindex"}
K = 10
REPEATS = 3

QUESTIONS = [
    "How do I parse command line arguments?",
    "What does the with statement do?",
    "How do I read a file line by line?",
    "What is the difference between a list and a tuple?",
    "How do I create a virtual environment?",
    "How can I run a shell command and capture its output?",
    "What is a generator and how does yield work?",
    "How do I format a string with variables?",
    "How do I handle exceptions with try and except?",
    "What is the global interpreter lock?",
    "How do I sort a list of dictionaries by a key?",
    "How do I write a class with properties?",
    "What are decorators and how do I write one?",
    "How do I work with dates and times?",
    "How can I serialize an object to JSON?",
    "How do I make an HTTP request with the standard library?",
    "What is the difference between is and ==?",
    "How do I define a function with default arguments?",
    "How do I use regular expressions to find all matches?",
    "How do I start a thread and wait for it to finish?",
    "What does async and await do?",
    "How do I copy a list without changing the original?",
    "How do I write unit tests?",
    "How do I log messages to a file?",
    "What is a lambda expression?",
    "How do I iterate over a dictionary's keys and values?",
    "How do I check the type of an object?",
    "How do I import a module from another directory?",
    "What are the built-in numeric types?",
    "How do I read and write CSV files?",
    "How do I measure how long a piece of code takes to run?",
    "What is a context manager?",
    "How do I get the current working directory?",
    "How are integers divided and what does floor division do?",
    "How do I open a socket and connect to a server?",
    "How do I generate random numbers?",
    "How do I make a deep copy of an object?",
    "What does the __init__ method do?",
    "How do I extend Python with a C module?",
    "How do I compress a file with gzip?",
]


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), without importing numpy before the clock."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def open_rag(index: Path, dense: bool) -> tuple[Callable[[str], int], Callable[[], None]]:
    from rag import RagPipeline

    overrides: dict[str, Any] = {"retrieval": "dense"} if dense else {}
    pipeline = RagPipeline.from_index(index, quiet=True, **overrides)

    def search(q: str) -> int:
        return len(pipeline.retrieve(q, k=K))

    return search, pipeline._queries.clear  # private: forgets the query vectors



def open_langchain(index: Path, model: str) -> tuple[Callable[[str], int], Callable[[], None]]:
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings

    store = FAISS.load_local(str(index), HuggingFaceEmbeddings(model_name=model), allow_dangerous_deserialization=True)

    def search(q: str) -> int:
        return len(store.similarity_search(q, k=K))

    return search, lambda: None


def open_llamaindex(index: Path, model: str) -> tuple[Callable[[str], int], Callable[[], None]]:
    from llama_index.core import Settings, StorageContext, load_index_from_storage
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    Settings.llm = None  # MockLLM: nothing may reach for OpenAI
    embed_model = HuggingFaceEmbedding(model_name=model)
    Settings.embed_model = embed_model
    loaded = load_index_from_storage(StorageContext.from_defaults(persist_dir=str(index)), embed_model=embed_model)
    retriever = loaded.as_retriever(similarity_top_k=K)

    def search(q: str) -> int:
        return len(retriever.retrieve(q))

    return search, lambda: None


def child(system: str, index: Path, model: str) -> None:
    import psutil

    started = psutil.Process().create_time()  # epoch seconds, 10 ms resolution: the process's birth
    with json_child() as result:
        result["system"] = system
        if system in ("rag", "rag-dense"):
            search, clear_cache = open_rag(index, dense=system == "rag-dense")
        elif system == "langchain":
            search, clear_cache = open_langchain(index, model)
        else:
            search, clear_cache = open_llamaindex(index, model)
        hits = search(QUESTIONS[0])
        result["cold_start_s"] = time.time() - started
        result["first_hits"] = hits
        latencies: list[float] = []
        for question in QUESTIONS:
            for _ in range(REPEATS):
                clear_cache()
                t0 = time.perf_counter()
                search(question)
                latencies.append(1000 * (time.perf_counter() - t0))
        result["queries"] = len(latencies)
        result["p50_ms"] = percentile(latencies, 50)
        result["p95_ms"] = percentile(latencies, 95)
        result["peak_rss_mb"] = peak_rss_mb()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, required=True, help="the --workdir of benchmarks/ingest.py")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="default: those whose index is in the workdir")
    ap.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    args = ap.parse_args()
    workdir = args.workdir.resolve()

    if args.system:  # child mode
        child(args.system, workdir / INDEX_OF[args.system], args.model)
        return

    summary_path = workdir / "ingest.json"
    if not summary_path.is_file():
        sys.exit(f"{summary_path} is missing: run benchmarks/ingest.py --workdir {workdir} first")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    built = {name for name, r in summary["results"].items() if "error" not in r and (workdir / name).is_dir()}
    systems = select_systems(args.systems, SYSTEMS)
    missing = [s for s in systems if INDEX_OF[s] not in built]
    if missing:
        print(f"no index for {', '.join(missing)} in {workdir}: skipped", file=sys.stderr)
    systems = [s for s in systems if s not in missing]
    print(
        f"indexes of {summary['files']} files of Python's docs in {workdir}; {len(QUESTIONS)} questions x "
        f"{REPEATS}, top-{K}",
        flush=True,
    )

    results = run_systems(
        __file__, systems, workdir, ["--model", summary["model"]], lambda r: f"cold start {r['cold_start_s']:.2f} s"
    )
    (workdir / "query.json").write_text(json.dumps(results, indent=2), encoding="utf-8")

    rows: list[list[object]] = []
    for name, r in results.items():
        if "error" in r:
            rows.append([name, "-", f"failed: {r['error'][:80]}", "-", "-", "-"])
            continue
        chunks = summary["results"][INDEX_OF[name]]["chunks"]
        rows.append(
            [
                name,
                chunks,
                f"{r['cold_start_s']:.2f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p95_ms']:.1f}",
                f"{r['peak_rss_mb']:.0f}",
            ]
        )
    print()
    print(table(["system", "chunks", "cold start s", "p50 ms", "p95 ms", "peak RSS MB"], rows))
    for name, r in results.items():
        if r.get("network"):
            print(f"- {name}: network attempts: {', '.join(r['network'])}")
        if "error" not in r and r.get("first_hits") != K:
            print(f"- {name}: the first query returned {r.get('first_hits')} results, not {K}")


if __name__ == "__main__":
    main()
