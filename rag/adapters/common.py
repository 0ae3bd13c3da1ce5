"""What both adapters share: the filters they accept, a hit's metadata and citation, the missing-extra error.

Nothing here imports a framework: the metadata is plain ``str``/``int``/``float``/``None`` values, which both
LangChain and LlamaIndex (and the vector stores behind them) accept as they are.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from rag.errors import RagError
from rag.filters import Filters
from rag.text.paths import display_path, document_id
from rag.types import Hit

# What a caller may pass as ``filters``: the dataclass, the HTTP API's mapping ({"path": ..., "language": [...]}),
# or the CLI's KEY=VALUE strings (["path=docs/*", "lang=en", "meta.team=search"]).
# The separator of a chunk's heading path (``rag.ingest.markdown.SEPARATOR``; the stages are out of this layer's reach).
HEADING_SEPARATOR = " › "

FilterSpec = Filters | Mapping[str, Any] | Iterable[str] | str | None


class MissingExtraError(RagError, ImportError):
    """A framework adapter was imported without its framework installed. An ``ImportError`` too, so code that
    probes for optional integrations with ``except ImportError`` keeps working."""


def require(module: str, extra: str, package: str) -> ModuleType:
    """Import ``module`` or raise ``MissingExtraError`` naming the extra (and the package) that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"rag.adapters.{extra} needs the package {package}: pip install 'rag[{extra}]' (or pip install {package})"
        ) from exc


def as_filters(spec: FilterSpec) -> Filters | None:
    """``spec`` as ``Filters`` (``None`` when it filters nothing). Strings are parsed as ``rag search --filter``
    parses them; a mapping as the HTTP API's ``filters`` field. Bad keys raise ``ConfigError`` here, at
    construction, not at the first question."""
    if spec is None or isinstance(spec, Filters):
        return spec or None
    if isinstance(spec, Mapping):
        return Filters.from_mapping(dict(spec)) or None
    items = [spec] if isinstance(spec, str) else list(spec)
    return Filters.parse(items) or None


def citation(hit: Hit) -> str:
    """Where the passage is, ready to show: ``path:12-30`` (lines; ``path:12`` for one line), or
    ``path (p. 3)`` / ``path (slide 2)`` for formats whose place is a page or a section."""
    c = hit.chunk
    source = display_path(c.source)
    if c.section or c.page is not None:
        return f"{source} ({c.location()})"
    lines = str(c.start_line) if c.start_line == c.end_line else f"{c.start_line}-{c.end_line}"
    return f"{source}:{lines}"


def metadata(hit: Hit) -> dict[str, Any]:
    """A hit as flat metadata. ``source`` is the path as the CLI shows it (relative to the working folder when
    under it), ``path`` the path as stored (what ``path=`` filters match); ``start``/``end`` are character offsets
    and ``start_line``/``end_line`` lines of the original file (``page`` for paged formats, ``section`` for slides,
    sheets, chapters); ``heading`` is the section path ("Title › Section"), ``title`` its first part; ``score``
    ranks the hits, ``similarity`` is the question's cosine with the passage."""
    c = hit.chunk
    heading = c.heading or ""
    return {
        "source": display_path(c.source),
        "path": c.source,
        "document_id": document_id(c.source),
        "chunk_id": c.id,
        "start": c.start,
        "end": c.end,
        "start_line": c.start_line,
        "end_line": c.end_line,
        "page": c.page,
        "section": c.section,
        "location": c.location(),
        "heading": heading,
        "title": heading.split(HEADING_SEPARATOR)[0] if heading else "",
        "language": c.metadata.get("language"),
        "file_type": c.metadata.get("file_type"),
        "rank": hit.rank,
        "score": hit.score,
        "similarity": hit.similarity,
        "citation": citation(hit),
    }
