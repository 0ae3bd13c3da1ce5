"""The MCP tools, in process: the SDK's own client (``mcp.Client``, an in-memory ClientSession) against
``create_server`` over a real index of the sample corpus built with the fakes. The transports (stdio, HTTP) are
tested in test_stdio.py and test_http.py."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp_support import TOOLS, WRITE_TOOLS, data, text

from rag.mcp import create_server, transport_security
from rag.pipeline import RagPipeline
from rag.text.paths import display_path, document_id

QUESTION = "When was the Transformer architecture introduced?"


def run(
    pipeline: RagPipeline,
    scenario: Callable[[Client], Awaitable[None]],
    *,
    allow_writes: bool = False,
    write_lock: threading.Lock | None = None,
) -> None:
    async def main() -> None:
        async with Client(create_server(pipeline, allow_writes=allow_writes, write_lock=write_lock)) as client:
            await scenario(client)

    anyio.run(main)


def test_the_tools_are_listed_with_schemas_and_annotations(indexed: Callable[..., RagPipeline]) -> None:
    async def scenario(client: Client) -> None:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        for name, tool in tools.items():
            assert tool.description and len(tool.description) > 80, name  # written for a model to read
            assert tool.output_schema is not None, name  # structured content
            assert tool.annotations is not None
            assert tool.annotations.read_only_hint is (name not in WRITE_TOOLS), name
        assert tools["remove_document"].annotations and tools["remove_document"].annotations.destructive_hint
        assert "Disabled on this server" in (tools["ingest_paths"].description or "")
        assert set(tools["search"].input_schema["required"]) == {"query"}
        assert "Passage" in json.dumps(tools["search"].output_schema)

    run(indexed(), scenario)


def test_search_returns_passages_whose_span_is_their_text(
    indexed: Callable[..., RagPipeline], copy_corpus: Path
) -> None:
    async def scenario(client: Client) -> None:
        found = data(await client.call_tool("search", {"query": QUESTION, "k": 3}))
        assert found["query"] == QUESTION and len(found["passages"]) == 3
        top = found["passages"][0]
        assert Path(top["source"]).name == "transformer-architecture.md"
        assert [p["rank"] for p in found["passages"]] == [1, 2, 3]
        assert top["location"].startswith("line") and top["score"] > 0
        source = (copy_corpus / "transformer-architecture.md").read_text(encoding="utf-8")
        assert source[top["start"] : top["end"]] == top["text"]  # the span is in the file's own offsets
        assert top["document_id"] == document_id(str(copy_corpus / "transformer-architecture.md"))
        for passage in found["passages"]:  # and get_document gives the same text at the same span
            read = data(
                await client.call_tool(
                    "get_document",
                    {"document": passage["document_id"], "start": passage["start"], "end": passage["end"]},
                )
            )
            assert read["text"] == passage["text"]
            assert (read["start_line"], read["end_line"]) == (passage["start_line"], passage["end_line"])

        chinese = data(await client.call_tool("search", {"query": "检索", "k": 5, "filters": {"language": ["zh"]}}))
        zh = {display_path(d.path) for d in pipeline.documents() if d.language == "zh"}
        assert chinese["passages"] and {p["source"] for p in chinese["passages"]} <= zh
        text_only = data(await client.call_tool("search", {"query": QUESTION, "filters": {"file_type": ["text"]}}))
        assert {Path(p["source"]).suffix for p in text_only["passages"]} == {".txt"}

    pipeline = indexed()
    run(pipeline, scenario)


def test_ask_answers_with_citations_or_refuses(indexed: Callable[..., RagPipeline]) -> None:
    async def answered(client: Client) -> None:
        answer = data(await client.call_tool("ask", {"question": QUESTION}))
        assert not answer["refused"] and "[1]" in answer["answer"]
        first = answer["citations"][0]
        assert first["number"] == 1 and Path(first["source"]).name == "transformer-architecture.md"
        assert first["end"] > first["start"] and first["text"]

    async def refused(client: Client) -> None:
        answer = data(await client.call_tool("ask", {"question": QUESTION}))
        assert answer["refused"] and answer["citations"] == [] and answer["grounding"] == "refused"
        assert answer["answer"]  # the refusal, said in words

    run(indexed(), answered)
    run(indexed(ingest=False, min_score=0.999, lexical_relevance=0), refused)  # nothing is that similar


def test_get_document_by_id_or_path_with_line_and_character_ranges(
    indexed: Callable[..., RagPipeline], copy_corpus: Path
) -> None:
    path = copy_corpus / "bm25-lexical-search.txt"
    source = path.read_text(encoding="utf-8").rstrip()
    lines = source.splitlines(keepends=True)

    async def scenario(client: Client) -> None:
        whole = data(await client.call_tool("get_document", {"document": str(path)}))
        assert whole["text"] == source and not whole["truncated"]
        assert (whole["total_chars"], whole["total_lines"]) == (len(source), len(lines))
        assert whole["document_id"] == document_id(str(path)) and whole["file_type"] == "text"

        by_id = data(
            await client.call_tool("get_document", {"document": whole["document_id"], "start_line": 3, "end_line": 5})
        )
        assert by_id["text"] == "".join(lines[2:5])
        assert (by_id["start_line"], by_id["end_line"]) == (3, 5)
        assert by_id["start"] == len("".join(lines[:2]))

        part = data(await client.call_tool("get_document", {"document": str(path), "start": 100, "max_chars": 50}))
        assert part["text"] == source[100:150] and part["truncated"] and part["end"] == 150
        rest = data(await client.call_tool("get_document", {"document": str(path), "start": part["end"]}))
        assert source[:100] + part["text"] + rest["text"] == source and not rest["truncated"]

        for bad, message in [
            ({"document": str(path), "start_line": 2, "start": 5}, "not both"),
            ({"document": str(path), "start_line": 10_000}, "lines 10000-"),
            ({"document": str(path), "start": 10_000_000}, "characters 10000000-"),
            ({"document": str(path), "start": 50, "end": 10}, "characters 50-10"),
            ({"document": "no/such/file.md"}, "no document 'no/such/file.md'"),
            ({"document": "0123456789abcdef"}, "list_documents"),
        ]:
            result = await client.call_tool("get_document", bad)
            assert result.is_error and message in text(result), (bad, text(result))

    run(indexed(), scenario)


def test_list_documents_and_index_info(indexed: Callable[..., RagPipeline]) -> None:
    pipeline = indexed()

    async def scenario(client: Client) -> None:
        listed = data(await client.call_tool("list_documents", {}))
        assert listed["total"] == len(pipeline.documents()) == 12 and len(listed["documents"]) == 12
        assert [d["path"] for d in listed["documents"]] == sorted(d["path"] for d in listed["documents"])
        stored = {document_id(d.path): d for d in pipeline.documents()}
        for entry in listed["documents"]:
            doc = stored[entry["document_id"]]
            assert (entry["chunks"], entry["size"], entry["file_type"]) == (doc.n_chunks, doc.size, doc.file_type)

        markdown = data(await client.call_tool("list_documents", {"path": "*.md", "offset": 2, "limit": 3}))
        assert markdown["total"] == 8 and markdown["offset"] == 2 and len(markdown["documents"]) == 3
        assert all(d["path"].endswith(".md") for d in markdown["documents"])

        info = data(await client.call_tool("index_info", {}))
        expected = pipeline.info()
        assert (info["documents"], info["chunks"], info["embedder"]) == (12, expected.chunks, expected.embedder)
        assert info["path"] == str(pipeline.index_path)

    run(pipeline, scenario)


def test_bad_arguments_are_tool_errors_and_the_server_keeps_serving(indexed: Callable[..., RagPipeline]) -> None:
    async def scenario(client: Client) -> None:
        for name, args, message in [
            ("search", {}, "query"),  # missing
            ("search", {"query": ""}, "at least 1 character"),
            ("search", {"query": "x", "k": 0}, "greater than or equal to 1"),
            ("search", {"query": "x", "k": "many"}, "valid integer"),
            ("search", {"query": "x", "filters": {"colour": "red"}}, "Extra inputs"),
            ("search", {"query": "   "}, "the question is empty"),  # the pipeline's own RagError
            ("search", {"query": "x", "filters": {"meta": {"bad key!": "v"}}}, "metadata filter key"),
            ("ask", {"question": "x" * 9000}, "at most 8000"),
            ("list_documents", {"limit": 0}, "greater than or equal to 1"),
            ("get_document", {"document": 5}, "valid string"),
            ("no_such_tool", {}, "Unknown tool"),
        ]:
            result = await client.call_tool(name, args)
            assert result.is_error, (name, args)
            assert message in text(result), (name, args, text(result))
        assert data(await client.call_tool("search", {"query": QUESTION}))["passages"]  # still serving

    run(indexed(), scenario)


def test_without_an_index_the_tools_say_how_to_make_one(indexed: Callable[..., RagPipeline]) -> None:
    async def scenario(client: Client) -> None:
        for name, args in [("search", {"query": QUESTION}), ("index_info", {}), ("list_documents", {})]:
            result = await client.call_tool(name, args)
            assert result.is_error and "rag ingest" in text(result), (name, text(result))

    run(indexed(ingest=False), scenario)


def test_writes_are_refused_without_the_flag(indexed: Callable[..., RagPipeline], copy_corpus: Path) -> None:
    pipeline = indexed()
    before = [d.path for d in pipeline.documents()]
    (copy_corpus / "new.md").write_text("# Zebras\n\nZebras have black and white stripes.\n", encoding="utf-8")

    async def scenario(client: Client) -> None:
        for name, args in [
            ("ingest_paths", {"paths": [str(copy_corpus / "new.md")]}),
            ("remove_document", {"document": before[0]}),
        ]:
            result = await client.call_tool(name, args)
            assert result.is_error and "--allow-writes" in text(result)

    run(pipeline, scenario)
    assert [d.path for d in pipeline.documents()] == before  # nothing changed


def test_writes_work_with_the_flag(indexed: Callable[..., RagPipeline], copy_corpus: Path) -> None:
    pipeline = indexed()
    new = copy_corpus / "zebras.md"
    new.write_text("# Zebras\n\nZebras have black and white stripes.\n", encoding="utf-8")

    async def scenario(client: Client) -> None:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "Disabled" not in (tools["ingest_paths"].description or "")
        report = data(await client.call_tool("ingest_paths", {"paths": [str(copy_corpus)]}))
        assert (report["files_added"], report["files_unchanged"]) == (1, 12)
        missing = data(await client.call_tool("ingest_paths", {"paths": [str(copy_corpus / "gone.md")]}))
        assert missing["skipped"] == [{"path": str(copy_corpus / "gone.md"), "reason": "no such file or folder"}]
        found = data(await client.call_tool("search", {"query": "zebras stripes", "k": 1}))
        assert Path(found["passages"][0]["source"]).name == "zebras.md"

        removed = data(await client.call_tool("remove_document", {"document": found["passages"][0]["document_id"]}))
        assert removed["removed"] and Path(removed["path"]).name == "zebras.md"
        listed = data(await client.call_tool("list_documents", {}))
        assert "zebras.md" not in {Path(d["path"]).name for d in listed["documents"]}
        again = await client.call_tool("remove_document", {"document": removed["document_id"]})
        assert again.is_error and "no document" in text(again)
        bad = await client.call_tool("ingest_paths", {"paths": []})
        assert bad.is_error and "at least 1 item" in text(bad)

    run(pipeline, scenario, allow_writes=True)
    assert new.exists()  # removing a document leaves its file alone


def test_host_checks_accept_the_bound_address_and_loopback_only() -> None:
    loopback = transport_security("127.0.0.1")
    assert loopback.enable_dns_rebinding_protection
    assert {"127.0.0.1:*", "localhost:*", "[::1]:*"} <= set(loopback.allowed_hosts)
    assert not any("example" in h for h in loopback.allowed_hosts)
    bound = transport_security("10.1.2.3", ["rag.example.org"])
    assert {"10.1.2.3:*", "10.1.2.3", "rag.example.org", "rag.example.org:*"} <= set(bound.allowed_hosts)
    assert "https://rag.example.org:*" in bound.allowed_origins and "http://10.1.2.3:*" in bound.allowed_origins
    wildcard = transport_security("0.0.0.0")
    assert f"{socket.gethostname()}:*" in wildcard.allowed_hosts  # this machine's own name
    assert "0.0.0.0:*" not in wildcard.allowed_hosts


def test_writes_wait_for_the_servers_other_writer(
    indexed: Callable[..., RagPipeline], copy_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.mcp import server

    monkeypatch.setattr(server, "WRITE_WAIT_S", 0.2)
    pipeline = indexed()
    before = [d.path for d in pipeline.documents()]
    (copy_corpus / "zebras.md").write_text("# Zebras\n\nZebras have black and white stripes.\n", encoding="utf-8")
    lock = threading.Lock()

    async def busy(client: Client) -> None:
        for name, args in [
            ("ingest_paths", {"paths": [str(copy_corpus / "zebras.md")]}),
            ("remove_document", {"document": before[0]}),
        ]:
            result = await client.call_tool(name, args)
            assert result.is_error and "busy with another write" in text(result), name

    async def free(client: Client) -> None:
        report = data(await client.call_tool("ingest_paths", {"paths": [str(copy_corpus / "zebras.md")]}))
        assert report["files_added"] == 1

    with lock:  # an upload job holds the lock: the write tools give up with a clear error, nothing changes
        run(pipeline, busy, allow_writes=True, write_lock=lock)
    assert [d.path for d in pipeline.documents()] == before
    run(pipeline, free, allow_writes=True, write_lock=lock)  # released: they write, and give the lock back
    assert lock.acquire(blocking=False)


def test_ask_records_the_question_when_record_questions_is_on(indexed: Callable[..., RagPipeline]) -> None:
    from rag.index.questions import QuestionLog

    pipeline = indexed(record_questions=True)

    async def scenario(client: Client) -> None:
        answer = data(await client.call_tool("ask", {"question": QUESTION}))
        (recorded,) = QuestionLog(pipeline.index_path).all()
        assert answer["question_id"] == recorded.id and recorded.question == QUESTION and recorded.cited

    run(pipeline, scenario)
