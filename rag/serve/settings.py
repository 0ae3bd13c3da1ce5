"""How the HTTP server protects itself: ``ServerSettings`` (API key, size and concurrency limits, uploads folder,
timeouts, warm-up), read by the app factory, the middleware and the routes from ``app.state.settings``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

API_KEY_ENV = "RAG_API_KEY"


@dataclass(frozen=True)
class ServerSettings:
    """How the HTTP layer protects itself. Sizes in bytes; ``api_key`` None: no authentication.

    ``max_concurrency``: requests that run models or touch the index at once; more get 503 + Retry-After.
    ``upload_dir``: where uploads are kept (default ``<index>/uploads``). ``write_wait_s``: how long a delete
    waits for a running upload job. ``warm_up``: load the models when the server starts (in the background).
    ``mcp``: serve the MCP tools at ``/mcp`` (``mcp_allow_writes``: their write tools too); its Host/Origin checks
    accept ``host`` (the address served, set by ``serve``), loopback names and ``allowed_hosts``.
    ``watch``: files and folders kept in step with the index while serving (``rag serve --watch``).
    """

    api_key: str | None = None
    max_concurrency: int = 16
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024
    retry_after_s: int = 1
    upload_dir: Path | None = None
    write_wait_s: float = 30.0
    shutdown_timeout_s: float = 30.0
    warm_up: bool = True
    model_name: str = "rag"
    max_jobs: int = 1000
    mcp: bool = True
    mcp_allow_writes: bool = False
    host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    watch: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency={self.max_concurrency} must be at least 1")
        if self.max_body_bytes < 1 or self.max_upload_bytes < 1:
            raise ConfigError(
                f"max_body_bytes={self.max_body_bytes} and max_upload_bytes={self.max_upload_bytes} must be positive"
            )
        if self.retry_after_s < 0 or self.write_wait_s < 0 or self.shutdown_timeout_s < 0:
            raise ConfigError("retry_after_s, write_wait_s and shutdown_timeout_s must be >= 0")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("the API key is empty; set a non-empty key or none at all")

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerSettings:
        """Settings with the API key from ``$RAG_API_KEY`` unless ``api_key`` is given (None values ignored)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        if "api_key" not in values:
            values["api_key"] = os.environ.get(API_KEY_ENV) or None
        return cls(**values)
