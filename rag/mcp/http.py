"""The MCP server over streamable HTTP, as ``rag serve`` mounts it at ``PATH``: the SDK's ASGI app
(``http_app``) with DNS-rebinding protection for the address the server binds (``transport_security``), wrapped in
``HttpTransport``, which the app's lifespan runs."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

PATH = "/mcp"  # where rag serve mounts the streamable-HTTP transport


def _names_for(host: str) -> list[str]:
    """The Host names clients may use for a server bound to ``host``: loopback names always; for a wildcard
    address (0.0.0.0, ::) this machine's names and addresses too."""
    names = ["127.0.0.1", "localhost", "::1"]
    host = host.strip().strip("[]")
    try:
        wildcard = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        wildcard = host == ""
    if not wildcard:
        names.append(host)
        return names
    hostname = socket.gethostname()
    names += [hostname, socket.getfqdn()]
    try:
        names += [str(info[4][0]) for info in socket.getaddrinfo(hostname, None)]
    except OSError:
        log.warning("could not look up this machine's addresses (%s); MCP accepts its names only", hostname)
    return names


def transport_security(host: str, allowed_hosts: Iterable[str] = ()) -> TransportSecuritySettings:
    """DNS-rebinding protection for the HTTP transport: the Host header must name the address the server is bound
    to (or a loopback name, or one of ``allowed_hosts``: a DNS name or proxy clients use), any port; a browser's
    Origin must be one of those hosts."""
    hosts: list[str] = []
    for name in [*_names_for(host), *allowed_hosts]:
        name = name.strip().strip("[]")
        if not name:
            continue
        shown = f"[{name}]" if ":" in name else name  # an IPv6 address
        for h in (shown, f"{shown}:*"):
            if h not in hosts:
                hosts.append(h)
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def http_app(
    server: MCPServer, *, host: str = "127.0.0.1", allowed_hosts: Iterable[str] = (), max_body_bytes: int | None = None
) -> Starlette:
    """The SDK's streamable-HTTP ASGI app for ``server``, answering at ``PATH``, with Host/Origin checks for a
    server bound to ``host``. Its session manager (``server.session_manager.run()``) must run while it serves."""
    extra = {"max_request_body_size": max_body_bytes} if max_body_bytes else {}
    return server.streamable_http_app(
        streamable_http_path=PATH, transport_security=transport_security(host, allowed_hosts), host=host, **extra
    )


class HttpTransport:
    """``server`` over streamable HTTP, as an ASGI app to mount at ``PATH`` in another app (``rag serve``).

    ``run()`` belongs in that app's lifespan: it builds the SDK's app (``http_app``) and runs its session manager
    until the lifespan ends. The SDK's manager runs once only, so each lifespan gets a fresh app and manager (tests
    start one app many times); requests go to the current one, and get 503 while none runs."""

    def __init__(
        self,
        server: MCPServer,
        *,
        host: str = "127.0.0.1",
        allowed_hosts: Iterable[str] = (),
        max_body_bytes: int | None = None,
    ) -> None:
        self.server = server
        self.host = host
        self.allowed_hosts = tuple(allowed_hosts)
        self.max_body_bytes = max_body_bytes
        self._app: Starlette | None = None

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        app = http_app(
            self.server, host=self.host, allowed_hosts=self.allowed_hosts, max_body_bytes=self.max_body_bytes
        )
        async with self.server.session_manager.run():
            self._app = app
            try:
                yield
            finally:
                self._app = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            error = {"message": "the MCP transport is not running (the app's lifespan has not started)"}
            response = JSONResponse({"error": {**error, "type": "unavailable", "code": 503}}, status_code=503)
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)
