"""Reading MCP tool results in tests: structured content, checked against its JSON text fallback."""

from __future__ import annotations

import json
from typing import Any

from mcp.types import CallToolResult, TextContent

TOOLS = {"search", "ask", "get_document", "list_documents", "index_info", "ingest_paths", "remove_document"}
WRITE_TOOLS = {"ingest_paths", "remove_document"}


def data(result: CallToolResult) -> Any:
    """A successful result's structured content; its text fallback must say the same in JSON."""
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    assert json.loads(text(result)) == result.structured_content
    return result.structured_content


def text(result: CallToolResult) -> str:
    """The text of a result (an error's message, or the JSON fallback)."""
    assert result.content and isinstance(result.content[0], TextContent)
    return result.content[0].text
