"""`rag mcp` with the real default embedder on real files: an agent (the SDK's ClientSession over stdio) indexes
three files of the sample corpus (English and Chinese) through `ingest_paths`, then searches them. Marked slow."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp_support import data

import rag

pytestmark = pytest.mark.slow

ROOT = Path(rag.__file__).resolve().parent.parent
FILES = ["transformer-architecture.md", "bm25-lexical-search.txt", "zhongwen-fenci.md"]


def test_an_agent_indexes_and_searches_real_files(tmp_path: Path, corpus_dir: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "rag", "mcp", "--index", str(tmp_path / "idx"), "--allow-writes", "-q"],
        env={"PYTHONPATH": str(ROOT), **{k: v for k, v in os.environ.items() if k.startswith(("HF_", "XDG_"))}},
    )

    async def main() -> None:
        with (tmp_path / "stderr.txt").open("w") as err, anyio.fail_after(600):
            async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                report = data(await session.call_tool("ingest_paths", {"paths": [str(corpus_dir / f) for f in FILES]}))
                assert report["files_added"] == 3 and report["skipped"] == []
                info = data(await session.call_tool("index_info", {}))
                assert info["embedder"] == "e5-multilingual" and info["documents"] == 3  # a third is Chinese

                english = data(await session.call_tool("search", {"query": "When was the Transformer introduced?"}))
                top = english["passages"][0]
                assert Path(top["source"]).name == "transformer-architecture.md" and "2017" in top["text"]
                assert top["text"] == (corpus_dir / FILES[0]).read_text(encoding="utf-8")[top["start"] : top["end"]]
                chinese = data(await session.call_tool("search", {"query": "中文为什么需要分词？", "k": 2}))
                assert Path(chinese["passages"][0]["source"]).name == "zhongwen-fenci.md"
                bm25 = data(await session.call_tool("search", {"query": "What does BM stand for in BM25?", "k": 1}))
                assert "Best Matching" in bm25["passages"][0]["text"]

    anyio.run(main)
