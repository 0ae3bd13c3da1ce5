"""Load on `rag serve`: N concurrent clients (asyncio + httpx) on loopback for a bounded time, per concurrency level.

    python benchmarks/serve_load.py [--real] [--seconds 10] [--levels 1,8,32] [--endpoint ask|search|chat]
                                    [--max-concurrency N] [--stream]

Builds a temporary index of the sample corpus, starts `rag serve` on 127.0.0.1 (a free port) in a subprocess,
and for each level runs that many clients, each sending one request after another until the time is up. With
the fakes by default (hash embedder, echo generator: measures the HTTP layer, retrieval and grounding); `--real`
uses the default models (the first start converts the default generator once, a few minutes). Prints one row per
level: successful requests per second, p50/p95/p99 latency of those, 503 answers (the server's concurrency limit,
Retry-After) and other errors. Client and server share this machine's cores, so numbers are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpora"
QUESTIONS = [
    "When was the Transformer architecture introduced?",
    "How many attention heads does the base Transformer model use?",
    "What is BM25?",
    "What does retrieval-augmented generation combine?",
    "How is retrieval quality evaluated?",
    "What is subword tokenization?",
    "检索增强生成是哪一年提出的？",
    "What is a small language model?",
]
START_TIMEOUT_S = 300.0  # --real converts the generator once; the fakes start in seconds
REQUEST_TIMEOUT_S = 120.0


@dataclass
class Level:
    concurrency: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # successful requests only
    busy: int = 0  # 503 from the concurrency limit
    errors: int = 0  # anything else that was not 200, and transport errors

    def row(self) -> str:
        ok = len(self.latencies)
        rate = ok / self.seconds if self.seconds else 0.0
        if ok >= 2:
            cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
            p50, p95, p99 = (cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000)
        else:
            p50 = p95 = p99 = (self.latencies[0] * 1000) if ok else float("nan")
        return (
            f"{self.concurrency:>11}{ok:>9}{rate:>10.1f}{p50:>10.1f}{p95:>10.1f}{p99:>10.1f}{self.busy:>8}"
            f"{self.errors:>8}"
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rag_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag", *args]


def build_index(index: Path, real: bool) -> None:
    model = [] if real else ["--model", "hash"]
    subprocess.run(
        rag_command("ingest", str(CORPUS), "--index", str(index), "-q", *model),
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


def start_server(index: Path, port: int, real: bool, max_concurrency: int | None, log: Path) -> subprocess.Popen[bytes]:
    args = ["serve", "--index", str(index), "--host", "127.0.0.1", "--port", str(port), "-q"]
    if not real:
        args += ["--generator", "echo"]
    if max_concurrency is not None:
        args += ["--max-concurrency", str(max_concurrency)]
    env = {k: v for k, v in os.environ.items() if k != "RAG_API_KEY"}
    with open(log, "wb") as out:
        return subprocess.Popen(rag_command(*args), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)


def wait_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            health = httpx.get(f"{url}/health", timeout=2).json()
            if health["index_loaded"] and health["models_loaded"]:
                return
        time.sleep(0.2)
    raise SystemExit(f"the server was not ready after {START_TIMEOUT_S:.0f} s; log: {log}")


def request_for(endpoint: str, question: str, stream: bool) -> tuple[str, dict[str, object]]:
    if endpoint == "search":
        return "/search", {"query": question}
    if endpoint == "chat":
        return "/v1/chat/completions", {
            "model": "rag",
            "stream": stream,
            "messages": [{"role": "user", "content": question}],
        }
    return "/ask", {"question": question, "stream": stream}


async def client_loop(
    http: httpx.AsyncClient, level: Level, deadline: float, endpoint: str, stream: bool, offset: int
) -> None:
    i = offset
    while time.perf_counter() < deadline:
        path, body = request_for(endpoint, QUESTIONS[i % len(QUESTIONS)], stream)
        i += 1
        t0 = time.perf_counter()
        try:
            async with http.stream("POST", path, json=body) as r:
                await r.aread()  # the whole answer (every event, when streamed)
                status = r.status_code
        except httpx.HTTPError:
            level.errors += 1
            continue
        if status == 200:
            level.latencies.append(time.perf_counter() - t0)
        elif status == 503:
            level.busy += 1
            await asyncio.sleep(0.05)  # a polite client backs off (the server says Retry-After: 1)
        else:
            level.errors += 1


async def run_level(url: str, concurrency: int, seconds: float, endpoint: str, stream: bool) -> Level:
    level = Level(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=REQUEST_TIMEOUT_S) as http:
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(client_loop(http, level, deadline, endpoint, stream, n) for n in range(concurrency)))
        level.seconds = time.perf_counter() - start  # includes the last requests that were in flight at the deadline
    return level


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # graceful: in-flight requests finish
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", action="store_true", help="the default models instead of the fakes")
    parser.add_argument("--seconds", type=float, default=10.0, help="per concurrency level (default 10)")
    parser.add_argument("--levels", default="1,8,32", help="comma-separated client counts (default 1,8,32)")
    parser.add_argument("--endpoint", choices=["ask", "search", "chat"], default="ask")
    parser.add_argument("--stream", action="store_true", help="streamed answers (ask, chat)")
    parser.add_argument("--max-concurrency", type=int, help="the server's limit (default: the server's own, 16)")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if not levels or min(levels) < 1 or args.seconds <= 0:
        parser.error("levels must be positive integers and --seconds positive")

    with tempfile.TemporaryDirectory() as tmp:
        index, log = Path(tmp) / "index", Path(tmp) / "server.log"
        t0 = time.perf_counter()
        build_index(index, args.real)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(index, port, args.real, args.max_concurrency, log)
        try:
            wait_ready(url, server, log)
            setup_s = time.perf_counter() - t0
            asyncio.run(run_level(url, 1, min(2.0, args.seconds), args.endpoint, args.stream))  # warm-up, not shown
            results = [asyncio.run(run_level(url, n, args.seconds, args.endpoint, args.stream)) for n in levels]
        finally:
            stop(server)
    real = "default models (the default generator, auto embedder)"
    generator = real if args.real else "fakes (hash embedder, echo generator)"
    print(
        f"rag serve, POST {request_for(args.endpoint, '', args.stream)[0]}{' (streamed)' if args.stream else ''}, "
        f"{generator}; server limit {args.max_concurrency or 16}; {args.seconds:.0f} s per level; "
        f"{os.cpu_count()} CPUs shared by clients and server; setup {setup_s:.1f} s"
    )
    print(f"{'concurrency':>11}{'ok':>9}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'503':>8}{'errors':>8}")
    for level in results:
        print(level.row())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
