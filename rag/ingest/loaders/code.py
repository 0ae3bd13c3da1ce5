"""Source code and config loader: the text as-is, with the language in ``metadata["language"]``."""

from __future__ import annotations

import logging
import os

from rag.ingest.loaders.text import read_text
from rag.types import Document

logger = logging.getLogger(__name__)

LANGUAGES: dict[str, str] = {
    ".py": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".cc": "cpp",
    ".go": "go",
    ".rs": "rust",
    ".rb": "ruby",
    ".php": "php",
    ".cs": "csharp",
    ".kt": "kotlin",
    ".swift": "swift",
    ".scala": "scala",
    ".sh": "shell",
    ".bash": "shell",
    ".sql": "sql",
    ".r": "r",
    ".lua": "lua",
    ".pl": "perl",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".ini": "ini",
    ".cfg": "ini",
    ".xml": "xml",
    ".css": "css",
    ".scss": "scss",
}
# Files recognised by their whole (lower-cased) name because they have no suffix.
NAMED_FILES: dict[str, str] = {
    "makefile": "make",
    "gnumakefile": "make",
    "dockerfile": "dockerfile",
}
SUFFIXES: frozenset[str] = frozenset(LANGUAGES)
NAMES: frozenset[str] = frozenset(NAMED_FILES)


def language_of(path: str) -> str:
    """Language name for a path, from its suffix or its special file name."""
    name = os.path.basename(path).lower()
    if name in NAMED_FILES:
        return NAMED_FILES[name]
    return LANGUAGES.get(os.path.splitext(name)[1], "text")


def load_code(data: bytes, path: str) -> Document:
    """The decoded source text, unchanged apart from LF newlines."""
    text = read_text(data, path)
    return Document(path=path, text=text, file_type="code", metadata={"language": language_of(path)})
