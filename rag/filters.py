"""Metadata filters, applied inside the searches (before top-k), never to the top-k afterwards."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rag.errors import ConfigError

_META_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Filters:
    """``path``: glob over the source path (relative globs match from the working directory, or any
    trailing part when they start with ``*``); ``file_type``: loader types (``markdown``, ``pdf``...);
    ``language``: chunk languages (``en``, ``zh``...); ``meta``: exact values of metadata given at ingest."""

    path: str | None = None
    file_type: tuple[str, ...] = ()
    language: tuple[str, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.path or self.file_type or self.language or self.meta)

    @classmethod
    def parse(cls, items: Iterable[str]) -> Filters:
        """From ``key=value`` strings: ``path=GLOB``, ``type=a,b``, ``lang=a,b``, ``meta.KEY=VALUE``."""
        path: str | None = None
        types: tuple[str, ...] = ()
        langs: tuple[str, ...] = ()
        meta: dict[str, str] = {}
        for item in items:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not value:
                raise ConfigError(f"filter {item!r} is not KEY=VALUE (keys: path, type, lang, meta.NAME)")
            if key == "path":
                path = value
            elif key in ("type", "file_type"):
                types = tuple(v.strip() for v in value.split(",") if v.strip())
            elif key in ("lang", "language"):
                langs = tuple(v.strip() for v in value.split(",") if v.strip())
            elif key.startswith("meta.") and _META_KEY.match(key[5:]):
                meta[key[5:]] = value
            else:
                raise ConfigError(f"unknown filter key {key!r} in {item!r}; use path, type, lang or meta.NAME")
        return cls(path, types, langs, meta)

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> Filters:
        """From a JSON-style mapping (the HTTP API): {"path": ..., "file_type": [...], "language": [...],
        "meta": {...}}."""
        if not data:
            return cls()
        unknown = set(data) - {"path", "file_type", "language", "meta"}
        if unknown:
            raise ConfigError(f"unknown filter field(s) {sorted(unknown)}; use path, file_type, language, meta")

        def as_tuple(value: Any) -> tuple[str, ...]:
            if value is None:
                return ()
            return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)

        meta = {str(k): str(v) for k, v in (data.get("meta") or {}).items()}
        for key in meta:
            if not _META_KEY.match(key):
                raise ConfigError(f"metadata filter key {key!r} may only use letters, digits, '_', '-', '.'")
        return cls(data.get("path"), as_tuple(data.get("file_type")), as_tuple(data.get("language")), meta)

    def _document_where(self) -> tuple[list[str], list[Any]]:
        """The conditions on documents (path, type, metadata) over ``documents d``, with their parameters."""
        where: list[str] = []
        params: list[Any] = []
        if self.path:
            pattern = self.path
            if pattern.startswith("*") or os.path.isabs(pattern):
                where.append("d.path GLOB ?")
                params.append(pattern)
            else:
                where.append("(d.path GLOB ? OR d.path GLOB ?)")
                params.extend([os.path.join(os.getcwd(), pattern), "*/" + pattern])
        if self.file_type:
            where.append(f"d.file_type IN ({','.join('?' * len(self.file_type))})")
            params.extend(self.file_type)
        for key, value in self.meta.items():
            where.append("json_extract(d.user_meta, ?) = ?")
            params.extend([f'$."{key}"', value])
        return where, params

    def document_sql(self) -> tuple[str, list[Any]] | None:
        """A ``SELECT d.id`` over the documents matching the document-level filters (all but ``language``, a
        chunk's), with its parameters; None when there are none."""
        where, params = self._document_where()
        if not where:
            return None
        return f"SELECT d.id FROM documents d WHERE {' AND '.join(where)}", params

    def sql(self) -> tuple[str, list[Any]]:
        """A ``SELECT c.id`` over chunks/documents matching the filters, with its parameters."""
        where, params = self._document_where()
        if self.language:
            where.append(f"c.language IN ({','.join('?' * len(self.language))})")
            params.extend(self.language)
        clause = " AND ".join(where) or "1"
        return f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {clause}", params
