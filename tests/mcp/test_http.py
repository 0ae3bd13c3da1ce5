"""`/mcp` in `rag serve`: the SDK's streamable-HTTP transport inside the FastAPI app, on a live uvicorn server
(127.0.0.1), talked to by the SDK's ``ClientSession`` over ``streamable_http_client``: behind the API key, with
the Host/Origin checks on, and the write tools only with ``mcp_allow_writes``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from live_server import running
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_support import TOOLS, data, text

from rag.pipeline import RagPipeline
from rag.serve.app import ServerSettings, create_app

KEY = "mcp-test-key"
QUESTION = "When was the Transformer architecture introduced?"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def session(url: str, scenario: Callable[[ClientSession], Awaitable[None]], key: str | None = KEY) -> None:
    async def main() -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else None
        with anyio.fail_after(30):
            async with (
                create_mcp_http_client(headers=headers) as http,
                streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
                ClientSession(read, write) as client,
            ):
                info = await client.initialize()
                assert info.server_info.name == "rag"
                await scenario(client)

    anyio.run(main)


def leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    return [x for e in group.exceptions for x in (leaves(e) if isinstance(e, BaseExceptionGroup) else [e])]


def test_tools_over_http_behind_the_api_key(indexed: Callable[..., RagPipeline], tmp_path: Path) -> None:
    pipeline = indexed()

    async def scenario(client: ClientSession) -> None:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        found = data(await client.call_tool("search", {"query": QUESTION, "k": 3}))
        assert Path(found["passages"][0]["source"]).name == "transformer-architecture.md"
        answer = data(await client.call_tool("ask", {"question": QUESTION}))
        assert "[1]" in answer["answer"] and not answer["refused"]
        doc = data(await client.call_tool("get_document", {"document": found["passages"][0]["document_id"]}))
        assert found["passages"][0]["text"] in doc["text"]
        bad = await client.call_tool("get_document", {"document": "x", "start_line": 0})
        assert bad.is_error and "greater than or equal to 1" in text(bad)
        refused = await client.call_tool("remove_document", {"document": doc["document_id"]})
        assert refused.is_error and "--mcp-allow-writes" in text(refused)

    app = create_app(pipeline, ServerSettings(api_key=KEY, warm_up=False))
    with running(app) as url:
        session(url, scenario)
        with httpx.Client(base_url=url, timeout=10) as http:
            missing = http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            assert missing.status_code == 401 and "missing API key" in missing.json()["error"]["message"]
            wrong = http.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and "invalid API key" in wrong.json()["error"]["message"]
            assert "/mcp" not in http.get("/openapi.json").json()["paths"]
        with pytest.raises(BaseExceptionGroup) as caught:  # anyio's task groups wrap the client's error
            session(url, scenario, key=None)  # the SDK's client without the key gets nowhere
        assert any(isinstance(e, MCPError) for e in leaves(caught.value)), caught.value
    assert len(pipeline.documents()) == 12  # nothing was removed


def test_host_and_origin_checks_stay_on(indexed: Callable[..., RagPipeline]) -> None:
    app = create_app(indexed(), ServerSettings(api_key=KEY, warm_up=False))
    auth = {**MCP_HEADERS, "Authorization": f"Bearer {KEY}"}
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        port = url.rsplit(":", 1)[1]
        ok = http.post("/mcp", json=INITIALIZE, headers={**auth, "Origin": f"http://127.0.0.1:{port}"})
        assert ok.status_code == 200 and ok.headers.get("mcp-session-id")
        rebound = http.post("/mcp", json=INITIALIZE, headers={**auth, "Host": f"evil.example:{port}"})
        assert rebound.status_code == 421  # a DNS-rebinding page: its Host is its own name
        foreign = http.post("/mcp", json=INITIALIZE, headers={**auth, "Origin": "http://evil.example"})
        assert foreign.status_code == 403


def test_writes_over_http_with_mcp_allow_writes(indexed: Callable[..., RagPipeline], copy_corpus: Path) -> None:
    pipeline = indexed()
    (copy_corpus / "zebras.md").write_text("# Zebras\n\nZebras have black and white stripes.\n", encoding="utf-8")

    async def scenario(client: ClientSession) -> None:
        report = data(await client.call_tool("ingest_paths", {"paths": [str(copy_corpus / "zebras.md")]}))
        assert report["files_added"] == 1
        hit = data(await client.call_tool("search", {"query": "zebras stripes", "k": 1}))["passages"][0]
        assert Path(hit["source"]).name == "zebras.md"
        assert data(await client.call_tool("remove_document", {"document": hit["document_id"]}))["removed"]

    app = create_app(pipeline, ServerSettings(api_key=KEY, warm_up=False, mcp_allow_writes=True))
    with running(app) as url:
        session(url, scenario)
    assert "zebras.md" not in {Path(d.path).name for d in pipeline.documents()}


def test_no_mcp(indexed: Callable[..., RagPipeline]) -> None:
    app = create_app(indexed(ingest=False), ServerSettings(warm_up=False, mcp=False))
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        assert http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS).status_code == 404


def test_serve_checks_hosts_for_the_address_it_binds(
    indexed: Callable[..., RagPipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from rag.serve.app import serve

    apps: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: apps.append(self.config.app))
    serve(indexed(ingest=False), host="10.9.8.7", settings=ServerSettings(api_key=KEY, allowed_hosts=("rag.lan",)))
    transport = apps[0].state.mcp
    assert (transport.host, transport.allowed_hosts) == ("10.9.8.7", ("rag.lan",))


def test_cli_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rag.cli.main import main

    seen: dict[str, Any] = {}
    monkeypatch.setattr("rag.serve.app.serve", lambda pipeline, **kwargs: seen.update(kwargs))
    argv = ["serve", "--index", str(tmp_path / "i"), "--mcp-allow-writes", "--allowed-host", "a.lan"]
    assert main([*argv, "--allowed-host", "b.lan", "-q"]) == 0
    settings = seen["settings"]
    assert (settings.mcp, settings.mcp_allow_writes, settings.allowed_hosts) == (True, True, ("a.lan", "b.lan"))
    assert main(["serve", "--index", str(tmp_path / "i"), "--no-mcp", "-q"]) == 0
    assert not seen["settings"].mcp and not seen["settings"].mcp_allow_writes

    stdio: list[tuple[Path, bool, bool]] = []
    monkeypatch.setattr(
        "rag.mcp.run_stdio", lambda p, allow_writes: stdio.append((p.index_path, allow_writes, p.config.quiet))
    )
    assert main(["mcp", "--index", str(tmp_path / "i"), "--allow-writes"]) == 0
    assert main(["mcp", "--index", str(tmp_path / "j")]) == 0
    assert stdio == [(tmp_path / "i", True, True), (tmp_path / "j", False, True)]
