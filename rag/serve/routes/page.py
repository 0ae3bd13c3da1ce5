"""The web page: ``GET /`` (``web/index.html``) and its scripts and style under ``/web/`` (the files of
``rag/serve/web``, shipped in the package; no build step, no CDN, so it works offline).

The page is public (its files hold no data; the API calls it makes need the key when the server has one) and
strict: a Content-Security-Policy that allows only this server's own scripts, styles and API (no inline
script, no eval, no plugins, no framing), so even text that slipped into the page as HTML could not run. The
page itself inserts document text and model output as text, never as HTML (see ``web/answer.js``)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import Response
from starlette.exceptions import HTTPException

router = APIRouter(include_in_schema=False)

PAGE = "index.html"
PREFIX = "/web/"  # the page's assets; public, like "/" (see rag.serve.middleware.PUBLIC_PREFIXES)
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def assets() -> dict[str, bytes]:
    """The page's files by name (read once from the package)."""
    folder = resources.files("rag.serve") / "web"
    return {
        f.name: f.read_bytes()
        for f in folder.iterdir()
        if f.is_file() and any(f.name.endswith(suffix) for suffix in MEDIA_TYPES)
    }


def asset_response(name: str) -> Response:
    files = assets()
    if name not in files:
        raise HTTPException(404, f"no such file of the page: {name!r}")
    media_type = MEDIA_TYPES[name[name.rindex(".") :]]
    return Response(files[name], media_type=media_type, headers=HEADERS)


@router.get("/")
async def page() -> Response:
    """The page: ask with sources, upload and manage documents, index info."""
    return asset_response(PAGE)


@router.get(PREFIX + "{name}")
async def asset(name: Annotated[str, PathParam(pattern=r"^[a-z][a-z0-9-]*\.[a-z]+$")]) -> Response:
    """One of the page's scripts or its style sheet."""
    return asset_response(name)
