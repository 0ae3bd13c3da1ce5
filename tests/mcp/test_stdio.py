"""`rag mcp` over stdio: the server in a subprocess (``python -m rag mcp``, as a desktop client launches it) and
the SDK's ``ClientSession`` over ``stdio_client``, on a real index built with the fakes."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp_support import TOOLS, data, text
from noisy_generator import NOISE

import rag
from rag.pipeline import RagPipeline

ROOT = Path(rag.__file__).resolve().parent.parent
SUPPORT = Path(__file__).resolve().parent.parent / "support"
QUESTION = "When was the Transformer architecture introduced?"
WAIT_S = 60.0


def run_stdio(index: Path, args: list[str], scenario: Callable[[ClientSession], Awaitable[None]], errlog: Path) -> None:
    """Start `rag mcp --index INDEX ARGS...`, initialize a session and run ``scenario`` on it."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "rag", "mcp", "--index", str(index), *args],
        env={
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(SUPPORT)]),
            "RAG_GENERATOR": "noisy_generator:NoisyGenerator",
        },
        cwd=str(index.parent),
    )

    async def main() -> None:
        with errlog.open("w", encoding="utf-8") as err, anyio.fail_after(WAIT_S):
            async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as session:
                info = await session.initialize()
                assert info.server_info.name == "rag"
                await scenario(session)

    anyio.run(main)


def test_search_ask_and_errors_over_stdio(indexed: Callable[..., RagPipeline], tmp_path: Path) -> None:
    pipeline = indexed()

    async def scenario(session: ClientSession) -> None:
        assert {t.name for t in (await session.list_tools()).tools} == TOOLS
        found = data(await session.call_tool("search", {"query": QUESTION, "k": 2}))
        assert Path(found["passages"][0]["source"]).name == "transformer-architecture.md"
        answer = data(await session.call_tool("ask", {"question": QUESTION}))  # the generator prints to stdout
        assert "[1]" in answer["answer"] and answer["citations"][0]["number"] == 1
        bad = await session.call_tool("search", {"query": QUESTION, "k": -1})
        assert bad.is_error and "greater than or equal to 1" in text(bad)
        refused = await session.call_tool("ingest_paths", {"paths": [str(tmp_path)]})
        assert refused.is_error and "--allow-writes" in text(refused)
        assert data(await session.call_tool("index_info", {}))["documents"] == 12  # still serving

    errlog = tmp_path / "stderr.txt"
    run_stdio(pipeline.index_path, [], scenario, errlog)
    log = errlog.read_text(encoding="utf-8")
    assert "MCP server on stdio" in log and "writes off" in log  # logs go to stderr
    assert NOISE in log and f"{NOISE} (fd 1)" in log  # stray stdout writes were diverted, the protocol survived
    assert len(pipeline.documents()) == 12


def test_writes_over_stdio_with_allow_writes(
    indexed: Callable[..., RagPipeline], tmp_path: Path, copy_corpus: Path
) -> None:
    pipeline = indexed()
    (copy_corpus / "zebras.md").write_text("# Zebras\n\nZebras have black and white stripes.\n", encoding="utf-8")

    async def scenario(session: ClientSession) -> None:
        report = data(await session.call_tool("ingest_paths", {"paths": ["corpus"]}))  # relative to the server's cwd
        assert report["files_added"] == 1 and report["files_unchanged"] == 12
        hit = data(await session.call_tool("search", {"query": "zebras stripes", "k": 1}))["passages"][0]
        assert Path(hit["source"]).name == "zebras.md"
        assert data(await session.call_tool("remove_document", {"document": hit["source"]}))["removed"]

    run_stdio(pipeline.index_path, ["--allow-writes"], scenario, tmp_path / "stderr.txt")
    assert "zebras.md" not in {Path(d.path).name for d in pipeline.documents()}
    assert len(pipeline.documents()) == 12
