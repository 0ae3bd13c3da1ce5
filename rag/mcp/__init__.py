"""`rag mcp` and `/mcp` in `rag serve`: the pipeline as Model Context Protocol tools for agents (official SDK).

``create_server(pipeline, allow_writes=False)`` builds the ``MCPServer``; ``run_stdio`` serves it over stdio;
``HttpTransport`` (``rag.mcp.http``) is its streamable-HTTP ASGI app (the SDK's, from ``http_app``), which
``rag.serve`` mounts. The tools return the dataclasses of ``rag.mcp.results``.
"""

from rag.mcp.http import PATH, HttpTransport, http_app, transport_security
from rag.mcp.server import create_server, run_stdio

__all__ = ["PATH", "HttpTransport", "create_server", "http_app", "run_stdio", "transport_security"]
