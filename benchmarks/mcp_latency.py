"""Latency of an MCP `search` call: over stdio (`rag mcp`) and over streamable HTTP (`/mcp` of `rag serve`).

    python benchmarks/mcp_latency.py [--calls 20] [--model auto]

Indexes the sample corpus (`corpora/`) in a temporary folder with the default embedder (``auto``: E5 here, the
corpus is partly Chinese), then times ``--calls`` search calls, each with a different question (so every call
embeds its query: the query-vector cache never hits), one after another, made by the SDK's ClientSession:

- ``direct``: ``RagPipeline.retrieve`` in this process, no MCP (the floor);
- ``stdio``: `rag mcp` in a subprocess, as a desktop client launches it;
- ``http``: `rag serve` in a subprocess (127.0.0.1, with an API key), the client on ``/mcp``.

Two untimed calls first load the model and open the index. Prints median, p90 and min per path and the median's
overhead over ``direct``. Client and server share this machine's cores.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpora"
KEY = "benchmark-key"
WARM_UP = ["What is attention?", "什么是向量检索？"]
QUESTIONS = [
    "When was the Transformer architecture introduced?",
    "How many attention heads does the base Transformer model use?",
    "What is BM25?",
    "What do the letters BM stand for?",
    "What does retrieval-augmented generation combine?",
    "How is retrieval quality evaluated?",
    "What is nDCG?",
    "What is subword tokenization?",
    "What is byte-pair encoding?",
    "What is a small language model?",
    "How are language models fine-tuned?",
    "Who wrote the paper Attention Is All You Need?",
    "检索增强生成是哪一年提出的？",
    "中文为什么需要分词？",
    "词嵌入和句子嵌入有什么区别？",
    "向量检索如何找到相似的文档？",
    "什么是提示工程？",
    "小型语言模型有什么优点？",
    "What came before the Transformer?",
    "How does self-attention work?",
    "What is the history of language models?",
    "What is recall at k?",
]
Searcher = Callable[[str], Awaitable[None]]


def rag_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(search: Searcher, calls: int) -> list[float]:
    for q in WARM_UP:
        await search(q)
    seconds = []
    for i in range(calls):
        t0 = time.perf_counter()
        await search(QUESTIONS[i % len(QUESTIONS)])
        seconds.append(time.perf_counter() - t0)
    return seconds


def tool_caller(session: ClientSession, k: int) -> Searcher:
    async def search(query: str) -> None:
        result = await session.call_tool("search", {"query": query, "k": k})
        if result.is_error or not (result.structured_content or {}).get("passages"):
            raise SystemExit(f"search failed: {result.content}")

    return search


@contextlib.asynccontextmanager
async def stdio_session(index: Path, log: Path) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "rag", "mcp", "--index", str(index), "-q"], env=env(), cwd=str(ROOT)
    )
    with log.open("w") as err:
        async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


@contextlib.asynccontextmanager
async def http_session(index: Path, log: Path) -> AsyncIterator[ClientSession]:
    port = free_port()
    args = ["serve", "--index", str(index), "--port", str(port), "--api-key", KEY, "--generator", "extractive", "-q"]
    with log.open("wb") as out:
        server = subprocess.Popen(rag_command(*args), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env())
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"rag serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            await anyio.sleep(0.2)
        async with (
            create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"}) as client,
            streamable_http_client(f"{url}/mcp", http_client=client) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session
    finally:
        server.terminate()
        server.wait(30)


def row(name: str, seconds: list[float], floor: float | None) -> str:
    ms = sorted(s * 1000 for s in seconds)
    median = statistics.median(ms)
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
    overhead = f"{median - floor:+.1f}" if floor is not None else "-"
    return f"{name:<8}{len(ms):>7}{median:>12.1f}{p90:>10.1f}{ms[0]:>10.1f}{overhead:>16}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--model", default="auto", help="embedder for the index (default: auto)")
    parser.add_argument("-k", type=int, default=4)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from rag.config import RagConfig
    from rag.pipeline import RagPipeline

    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "idx"
        pipeline = RagPipeline(RagConfig(index=index, embedder=args.model, quiet=True))
        report = pipeline.ingest([CORPUS])

        async def direct(query: str) -> None:
            if not await anyio.to_thread.run_sync(lambda: pipeline.retrieve(query, args.k)):
                raise SystemExit("retrieve found nothing")

        async def run_all() -> dict[str, list[float]]:
            results = {"direct": await measure(direct, args.calls)}
            async with stdio_session(index, Path(tmp) / "stdio.log") as session:
                results["stdio"] = await measure(tool_caller(session, args.k), args.calls)
            async with http_session(index, Path(tmp) / "http.log") as session:
                results["http"] = await measure(tool_caller(session, args.k), args.calls)
            return results

        results = anyio.run(run_all)
        pipeline.close()

    print(
        f"MCP search latency: {report.files_added} files, {report.chunks_added} chunks, "
        f"embedder {report.model}, k={args.k}"
    )
    print(f"{'path':<8}{'calls':>7}{'median ms':>12}{'p90 ms':>10}{'min ms':>10}{'vs direct ms':>16}")
    floor = statistics.median(results["direct"]) * 1000
    for name, seconds in results.items():
        print(row(name, seconds, None if name == "direct" else floor))


if __name__ == "__main__":
    main()
