"""The benchmark corpus: Python's documentation sources from the Debian package python3.11-doc.

Install it with ``benchmarks/setup.sh`` (or ``apt-get install python3.11-doc``); the reStructuredText sources lie
in /usr/share/doc/python3.11/html/_sources as ``*.rst.txt``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

PYTHON_DOCS = Path("/usr/share/doc/python3.11/html/_sources")


def python_docs(limit_files: int = 0) -> list[Path]:
    """The corpus files, sorted (the first ``limit_files`` when given)."""
    if not PYTHON_DOCS.is_dir():
        sys.exit(f"{PYTHON_DOCS} is missing: run benchmarks/setup.sh (apt-get install python3.11-doc)")
    files = sorted(p for p in PYTHON_DOCS.rglob("*.txt") if p.is_file())
    return files[:limit_files] if limit_files else files


def corpus_subset(folder: Path, limit_files: int) -> Path:
    """A folder of symlinks to the first ``limit_files`` files (keeping relative paths), for a bounded run."""
    folder.mkdir(parents=True, exist_ok=True)
    for src in python_docs(limit_files):
        dst = folder / src.relative_to(PYTHON_DOCS)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            dst.symlink_to(src)
    return folder


def prechunked(n: int, chunk_size: int = 200, overlap: int = 30) -> list[str]:
    """``n`` chunk texts of the corpus, cut by rag's chunker at ``chunk_size`` MiniLM tokens."""
    from rag.embed.st import MINILM, SentenceTransformerEmbedder
    from rag.ingest.chunking import Chunker
    from rag.ingest.loaders import load

    counter = SentenceTransformerEmbedder(MINILM, precision="float32")
    chunker = Chunker(chunk_size, overlap, counter.count_tokens)
    texts: list[str] = []
    for path in python_docs():
        texts += [c.text for c in chunker.split(load(path))]
        if len(texts) >= n:
            break
    return texts[:n]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def dir_size_mb(folder: Path) -> float:
    """Sum of the sizes of the files under ``folder`` (symlinks not followed), in MB."""
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return total / 1e6


def offline_env() -> dict[str, str]:
    """This process's environment for a benchmark child: Hugging Face offline, no RAG_* settings (they would
    change rag's configuration), no tokenizers fork warning."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def run_json_child(argv: list[str], cwd: Path) -> dict[str, Any]:
    """Run ``argv`` (a benchmark in its ``--json`` child mode) to the end and return the JSON object it printed
    as the last line of stdout; its stderr (warnings, logs) passes through. A failed child gives
    ``{"error": ...}`` so that the other systems still run."""
    proc = subprocess.run(argv, cwd=cwd, env=offline_env(), stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit status {proc.returncode}; stdout: {proc.stdout[-500:]!r}"}
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"no JSON on the last line of stdout: {lines[-1][:500]!r}"}
    return result


def select_systems(spec: str, known: tuple[str, ...]) -> list[str]:
    """The comma-separated systems of ``spec``; exits naming the unknown ones."""
    systems = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = sorted(set(systems) - set(known))
    if unknown:
        sys.exit(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return systems


def run_systems(
    script: str, systems: list[str], workdir: Path, extra: list[str], done: Callable[[dict[str, Any]], str]
) -> dict[str, dict[str, Any]]:
    """Run ``script`` in its child mode for each system, one after another (the machine's cores go to one
    system at a time), printing ``done(result)`` after each; returns the results by system."""
    results: dict[str, dict[str, Any]] = {}
    for system in systems:
        argv = [sys.executable, str(Path(script).resolve()), "--system", system, "--json", "--workdir", str(workdir)]
        r = results[system] = run_json_child([*argv, *extra], cwd=workdir)
        print(f"{system}: {done(r) if 'error' not in r else 'failed: ' + r['error']}", flush=True)
    return results


@contextmanager
def json_child() -> Iterator[dict[str, Any]]:
    """Child side of ``run_json_child``: yields the result dict to fill; while the block runs, whatever the
    libraries print to stdout goes to stderr, and at the end the dict is printed as one JSON line on stdout.
    Socket connections and name lookups attempted meanwhile are recorded under ``"network"``."""
    stdout = sys.stdout
    result: dict[str, Any] = {}
    attempts = watch_network()
    with redirect_stdout(sys.stderr):
        yield result
    result["network"] = sorted(set(attempts))
    print(json.dumps(result), file=stdout, flush=True)


def watch_network() -> list[str]:
    """Record every socket connect and name lookup from now on (a Python audit hook; it cannot be removed)."""
    attempts: list[str] = []

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect":
            attempts.append(f"connect {args[1]!r}")
        elif event == "socket.getaddrinfo":
            attempts.append(f"getaddrinfo {args[0]!r}:{args[1]!r}")

    sys.addaudithook(hook)
    return attempts
