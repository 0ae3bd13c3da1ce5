"""Errors for user mistakes. Each message names the offending value and says how to fix it."""

from __future__ import annotations


class RagError(Exception):
    """Base class: a problem the user can fix. The CLI prints the message and exits non-zero."""


class ConfigError(RagError):
    """A setting has a bad value."""


class IndexNotFoundError(RagError):
    """The index folder does not exist or holds no index."""


class IndexFormatError(RagError):
    """The index was written by another format version or is damaged."""


class ModelMismatchError(RagError):
    """The index was built with a different embedding model than the one asked for."""


class DocumentNotFoundError(RagError):
    """No stored document has the path (or id) asked for."""


class QuestionNotFoundError(RagError):
    """Feedback names a question id that was never recorded in this index (``record_questions``)."""


class IndexLockedError(RagError):
    """Another process is writing to the index."""


class LoaderError(RagError):
    """A file cannot be read; the message is the one-line reason shown in the ingest summary."""


class ModelLoadError(RagError):
    """A model could not be loaded (missing package, missing folder, no network for a hub id)."""


class GeneratorError(RagError):
    """The answer generator failed: an HTTP backend refused or timed out, or returned something unreadable."""


class SettingMismatchError(ConfigError):
    """A setting that shapes stored data (chunk size, overlap) differs from the one the index was built with."""
