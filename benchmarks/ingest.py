"""Ingest throughput: rag against LangChain and LlamaIndex on the same corpus, same embedding model (MiniLM),
same chunk size (200 MiniLM tokens, overlap 30), each system in its own process, one after another.

    .venv-bench/bin/python benchmarks/ingest.py [--files 60] [--systems rag,langchain,llamaindex] [--workdir DIR]

The corpus is the first ``--files`` files of Python's documentation sources (0: all 497). Each system:

* rag: ``RagPipeline.ingest([folder])`` with ``embedder="minilm"`` (rag's defaults otherwise: precision auto,
  i.e. bf16 on CPUs with native bf16, batch 32); then a re-ingest of the unchanged folder, and the embedder's own
  throughput on the chunk texts of the built index (``create_embedder("minilm").embed_documents``, model loaded
  and warmed up first).
* langchain: files read as text, ``RecursiveCharacterTextSplitter.from_huggingface_tokenizer`` with MiniLM's
  tokenizer, ``HuggingFaceEmbeddings`` (library defaults), ``FAISS.from_documents``, ``save_local``.
* llamaindex: ``SimpleDirectoryReader``, ``SentenceSplitter`` counting MiniLM tokens, ``HuggingFaceEmbedding``
  (library defaults), ``VectorStoreIndex``, ``storage_context.persist``.

"wall s" runs from the start of reading files to the index saved and includes loading the tokenizer and the
model from disk; torch, transformers and sentence-transformers are imported before the clock starts in every
child. The splitters differ, so the chunk counts differ: compare chunks/s, and see each system's count.
"peak RSS" is the child's ``ru_maxrss`` (for rag taken after the first ingest, before the model-only run).

The indexes stay in WORKDIR (rag/, langchain/, llamaindex/; rebuilt on every run) with the results in
WORKDIR/ingest.json, for ``benchmarks/query.py --workdir WORKDIR``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _corpus import corpus_subset, dir_size_mb, json_child, peak_rss_mb, run_systems, select_systems, table

SYSTEMS = ("rag", "langchain", "llamaindex")
CHUNK_SIZE = 200
CHUNK_OVERLAP = 30


def corpus_files(corpus: Path) -> list[Path]:
    """The corpus files (symlinks into Python's docs), sorted: the same list for every system."""
    return sorted(p for p in corpus.rglob("*.txt"))


def preload() -> None:
    """Import the model stack before the clock starts, so that no system pays for it inside its wall time."""
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401


def param_dtype(model: Any) -> str:
    """The dtype of a torch model's weights, e.g. ``float32``."""
    return str(next(model.parameters()).dtype).removeprefix("torch.")


def ingest_rag(corpus: Path, out: Path, result: dict[str, Any]) -> None:
    from rag import RagConfig, RagPipeline
    from rag.embed.registry import create_embedder

    preload()
    t0 = time.perf_counter()
    pipeline = RagPipeline(
        RagConfig(index=out, embedder="minilm", chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, quiet=True,
                  follow_symlinks=True)  # the corpus folder links into Python's docs
    )
    report = pipeline.ingest([corpus])
    result["seconds"] = time.perf_counter() - t0
    result["chunks"] = report.chunks_added
    result["peak_rss_mb"] = peak_rss_mb()
    result["index_mb"] = dir_size_mb(out)
    if report.skipped:
        result["skipped"] = [f"{s.path}: {s.reason}" for s in report.skipped]

    t0 = time.perf_counter()
    again = pipeline.ingest([corpus])
    result["reingest_seconds"] = time.perf_counter() - t0
    result["reingest_report_seconds"] = again.seconds
    result["reingest_chunks_added"] = again.chunks_added

    store = pipeline._current().store  # the chunk texts exactly as embedded
    texts = [text for doc in pipeline.documents() for _, text in store.chunk_texts_and_ids(doc)]
    pipeline.close()
    embedder = create_embedder("minilm")  # the same defaults as the pipeline's
    embedder.embed_documents(texts[:64])  # loads the model; first-call allocations
    t0 = time.perf_counter()
    embedder.embed_documents(texts)
    result["model_only_seconds"] = time.perf_counter() - t0
    result["model_only_chunks"] = len(texts)
    result["settings"] = (
        f"backend {getattr(embedder, 'backend', '?')}, precision {getattr(embedder, 'dtype', '?')}, "
        f"batch {getattr(embedder, 'batch_size', '?')}, length-sorted batches"
    )


def ingest_langchain(corpus: Path, out: Path, model: str, result: dict[str, Any]) -> None:
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from transformers import AutoTokenizer

    preload()
    t0 = time.perf_counter()
    docs = [
        Document(page_content=p.read_text(encoding="utf-8", errors="replace"), metadata={"source": str(p)})
        for p in corpus_files(corpus)
    ]
    tokenizer = AutoTokenizer.from_pretrained(model)
    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        tokenizer, chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP
    )
    chunks = splitter.split_documents(docs)
    embeddings = HuggingFaceEmbeddings(model_name=model)
    store = FAISS.from_documents(chunks, embeddings)
    store.save_local(str(out))
    result["seconds"] = time.perf_counter() - t0
    result["chunks"] = len(chunks)
    result["peak_rss_mb"] = peak_rss_mb()
    result["index_mb"] = dir_size_mb(out)
    batch = embeddings.encode_kwargs.get("batch_size", "32 (sentence-transformers' default)")
    result["settings"] = (
        f"precision {param_dtype(embeddings._client)}, batch {batch}, encode_kwargs {embeddings.encode_kwargs}"
    )


def ingest_llamaindex(corpus: Path, out: Path, model: str, result: dict[str, Any]) -> None:
    from functools import partial

    from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from transformers import AutoTokenizer

    Settings.llm = None  # MockLLM: nothing may reach for OpenAI
    preload()
    t0 = time.perf_counter()
    docs = SimpleDirectoryReader(input_files=[str(p) for p in corpus_files(corpus)]).load_data()
    tokenizer = AutoTokenizer.from_pretrained(model)
    # Token counts without [CLS]/[SEP], as rag's chunker and LangChain's splitter count them.
    splitter = SentenceSplitter(
        chunk_size=CHUNK_SIZE,
        chunk_overlap=CHUNK_OVERLAP,
        tokenizer=partial(tokenizer.encode, add_special_tokens=False),
    )
    nodes = splitter.get_nodes_from_documents(docs)
    embed_model = HuggingFaceEmbedding(model_name=model)
    Settings.embed_model = embed_model
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    index.storage_context.persist(persist_dir=str(out))
    result["seconds"] = time.perf_counter() - t0
    result["chunks"] = len(nodes)
    result["peak_rss_mb"] = peak_rss_mb()
    result["index_mb"] = dir_size_mb(out)
    result["settings"] = (
        f"precision {param_dtype(embed_model._model)}, batch {embed_model.embed_batch_size} (embed_batch_size), "
        f"normalize {embed_model.normalize}, metadata in embedded text: {nodes[0].get_metadata_str('embed')!r}"
        if nodes
        else ""
    )


def child(system: str, corpus: Path, out: Path, model: str) -> None:
    if out.exists():
        shutil.rmtree(out)
    with json_child() as result:
        result["system"] = system
        if system == "rag":
            ingest_rag(corpus, out, result)
        elif system == "langchain":
            ingest_langchain(corpus, out, model, result)
        else:
            ingest_llamaindex(corpus, out, model, result)
        import torch

        result["torch_threads"] = torch.get_num_threads()
        result["chunks_per_s"] = result["chunks"] / result["seconds"]


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def report(results: dict[str, dict[str, Any]]) -> str:
    base = results.get("langchain", {}).get("chunks_per_s")
    rows: list[list[object]] = []
    for name, r in results.items():
        if "error" in r:
            rows.append([name, f"failed: {r['error'][:80]}"] + ["-"] * 10)
            continue
        rate = r["chunks_per_s"]
        model_rate = r["model_only_chunks"] / r["model_only_seconds"] if "model_only_seconds" in r else None
        rows.append(
            [
                name,
                r["chunks"],
                fmt(r["seconds"], ".2f"),
                fmt(rate),
                f"{rate / base:.2f}x" if base else "-",
                fmt(r["peak_rss_mb"], ".0f"),
                fmt(r["index_mb"], ".2f"),
                fmt(r.get("reingest_seconds"), ".3f"),
                f"{r['seconds'] / r['reingest_seconds']:.0f}x" if "reingest_seconds" in r else "-",
                fmt(model_rate),
                f"{rate / model_rate:.2f}" if model_rate else "-",
            ]
        )
    headers = [
        "system",
        "chunks",
        "wall s",
        "chunks/s",
        "vs LangChain",
        "peak RSS MB",
        "index MB",
        "re-ingest s",
        "first / re-ingest",
        "model-only chunks/s",
        "ingest / model-only",
    ]
    return table(headers, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=60, help="first N files of the corpus (0: all)")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--workdir", type=Path, help="where the corpus links, indexes and ingest.json go (default: new)")
    ap.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.system:  # child mode
        child(args.system, args.corpus, args.workdir / args.system, args.model)
        return

    systems = select_systems(args.systems, SYSTEMS)
    from rag.models.bundled import minilm_path

    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="rag-bench-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = corpus_subset(workdir / f"corpus-{args.files or 'all'}", args.files)
    files = corpus_files(corpus)
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    model = str(minilm_path())
    print(
        f"corpus: {len(files)} files of Python's docs ({size_mb:.1f} MB), chunks of {CHUNK_SIZE} MiniLM tokens "
        f"(overlap {CHUNK_OVERLAP}); workdir {workdir}",
        flush=True,
    )

    results = run_systems(
        __file__,
        systems,
        workdir,
        ["--corpus", str(corpus), "--model", model],
        lambda r: f"{r['chunks']} chunks in {r['seconds']:.2f} s",
    )

    (workdir / "ingest.json").write_text(
        json.dumps(
            {"files": len(files), "corpus": str(corpus), "corpus_mb": size_mb, "model": model, "results": results},
            indent=2,
        ),
        encoding="utf-8",
    )
    print()
    print(report(results))
    print()
    for name, r in results.items():
        if "error" not in r:
            print(f"- {name}: {r.get('settings', '')}; torch threads {r.get('torch_threads')}")
            if r.get("network"):
                print(f"  network attempts: {', '.join(r['network'])}")
            if r.get("skipped"):
                print(f"  skipped: {'; '.join(r['skipped'])}")
    print(f"\nindexes and ingest.json in {workdir}; next: benchmarks/query.py --workdir {workdir}")


if __name__ == "__main__":
    main()
