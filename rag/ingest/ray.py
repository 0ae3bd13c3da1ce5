"""Scale-out ingest on Ray: reading, chunking and embedding run in model actors over a Ray cluster
(Ray Data ``map_batches``); the calling process receives each document's chunks and vectors as a stream and
writes the usual index (same format, same crash safety) through ``RagPipeline``.

- ``address="local"`` starts a private local Ray instance for this ingest (usage stats and dashboard off, a
  1 GiB object store); any other value (``auto``, ``ray://head:10001``) joins that cluster.
- On a cluster, every node needs ``rag`` installed (the same version, e.g. a Ray ``runtime_env`` or image) and
  the files at the same paths (a shared filesystem): the workers open the paths the driver found.
- Actors: one per GPU when the cluster has GPUs, else one per CPU (less a quarter for Ray Data's own tasks);
  each actor runs torch on the CPUs Ray gave it. ``workers`` overrides the count.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import LoaderError, RagError
from rag.ingest.chunking import Chunker
from rag.ingest.loaders import LoadOptions, load
from rag.ingest.plan import Item
from rag.text.langdetect import detect_language
from rag.text.paths import display_path
from rag.types import Chunk, Document, SkippedFile

if TYPE_CHECKING:
    from rag.config import ModelSettings
    from rag.embed.base import Embedder
    from rag.index.policy import Chunking
    from rag.index.store import StoredDocument
    from rag.ingest.plan import Todo

log = logging.getLogger(__name__)

LOCAL = "local"
LOCAL_OBJECT_STORE = 1 << 30  # bytes: enough for the stream of batches in flight on a laptop
DOCS_PER_BATCH = 16


class ChunkEmbedActor:
    """A Ray actor: loads the embedder once, then turns batches of file paths into chunks and vectors."""

    def __init__(
        self,
        spec: str,
        options: dict[str, Any],
        chunk_size: int,
        overlap: int,
        max_bytes: int,
        load_options: dict[str, Any] | None = None,
    ) -> None:
        from rag.config import ModelSettings
        from rag.embed.registry import create_embedder
        from rag.models.runtime import configure_threads

        settings = ModelSettings(**options)
        configure_threads(settings.threads)  # this actor's own process: the CPUs Ray gave it
        self.embedder = create_embedder(spec, settings)
        self.chunker = Chunker(chunk_size, overlap, self.embedder.count_tokens, self.embedder.max_tokens)
        self.max_bytes = max_bytes
        self.load_options = LoadOptions(**(load_options or {}))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        """One row per file, then one per attachment of an e-mail (``parent`` is the file's path; a skipped
        attachment is a row with its ``error``)."""
        keys = ("path", "parent", "digest", "children", "error", "file_type", "language", "meta", "chunks")
        out: dict[str, list[Any]] = {k: [] for k in keys}
        texts: list[str] = []
        counts: list[int] = []

        def row(key: str, parent: str, doc: Document | None, error: str) -> None:
            chunks = self.chunker.split(doc) if doc is not None else []
            out["path"].append(key)
            out["parent"].append(parent)
            digest = hashlib.sha256(doc.text.encode("utf-8")).hexdigest() if doc is not None and key != parent else ""
            out["digest"].append(digest)
            children = [c.path for c in doc.attachments] if doc is not None and key == parent else []
            out["children"].append(json.dumps(children, ensure_ascii=False))
            out["error"].append(error)
            out["file_type"].append(doc.file_type if doc else "")
            out["language"].append(detect_language(doc.text[:20_000]) if doc else "")
            out["meta"].append(json.dumps(doc.metadata if doc else {}, ensure_ascii=False, default=str))
            out["chunks"].append(json.dumps([_chunk_row(c) for c in chunks], ensure_ascii=False))
            texts.extend(c.indexed for c in chunks)
            counts.append(len(chunks))

        for path in batch["path"]:
            path = str(path)
            try:
                doc = load(path, max_bytes=self.max_bytes, options=self.load_options)
            except LoaderError as exc:
                row(path, path, None, str(exc))
                continue
            row(path, path, doc, "")
            for child in doc.attachments:
                row(child.path, path, child, "")
            for skipped in doc.skipped:
                row(skipped.path, path, None, skipped.reason)
        vectors = self.embedder.embed_documents(texts) if texts else np.zeros((0, self.embedder.dimension), np.float32)
        out["vectors"] = []
        start = 0
        for n in counts:
            out["vectors"].append(np.ascontiguousarray(vectors[start : start + n], dtype=np.float32).tobytes())
            start += n
        return out


def _chunk_row(chunk: Chunk) -> dict[str, Any]:
    row = asdict(chunk)
    for unused in ("id", "source", "metadata"):
        row.pop(unused, None)
    return row


def connect(address: str) -> bool:
    """Join the Ray cluster at ``address`` or start a local instance; True when this call started Ray."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as exc:
        raise RagError("rag ingest --ray needs Ray: pip install 'rag[ray]' (or pip install 'ray[data]')") from exc
    if ray.is_initialized():
        return False
    if address in ("", LOCAL):
        log.info("starting a local Ray instance")
        ray.init(
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE,
            log_to_driver=False,
            configure_logging=False,
        )
    else:
        log.info("joining the Ray cluster at %s", address)
        _check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RagError(
                f"cannot reach a Ray cluster at {address!r}: {exc}. Start one with `ray start --head` "
                "or leave the address out to start a local instance"
            ) from exc
    return True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, with a clear message, when a ``host:port`` or ``ray://host:port`` address does not answer
    (Ray itself retries for minutes). ``auto`` is left to Ray, which fails fast when no cluster runs here."""
    import socket

    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise RagError(
            f"cannot reach a Ray cluster at {address!r} ({exc}). Check the address (ray start --head prints it), "
            "or leave it out to start a local Ray instance"
        ) from exc


def ray_items(
    todo: list[Todo],
    embedder: Embedder,
    chunking: Chunking,
    models: ModelSettings,
    *,
    max_bytes: int,
    load_options: LoadOptions | None = None,
    attached: dict[str, list[StoredDocument]] | None = None,
    quiet: bool,
    skipped: list[SkippedFile],
    address: str,
    workers: int = 0,
) -> Iterator[Item]:
    """The documents of ``todo``, read, chunked and embedded on Ray, as ingest items (streamed); an e-mail's
    attachments follow it, replacing or dropping those it had before (``attached``, as in ``load_items``)."""
    if not todo:
        return
    started = connect(address)
    import ray

    if quiet:  # Ray Data reports progress through its loggers and bars
        ray.data.DataContext.get_current().enable_progress_bars = False
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.WARNING)

    try:
        resources = ray.cluster_resources()
        gpus, cpus = float(resources.get("GPU", 0)), float(resources.get("CPU", 1))
        if gpus >= 1:
            actors, per_actor = workers or int(gpus), {"num_gpus": 1}
        else:
            actors = workers or max(1, int(cpus * 0.75))
            per_actor = {"num_cpus": 1}
        options = {
            "threads": 0 if gpus >= 1 else 1,
            "precision": models.precision,
            "batch_size": models.batch_size,
            "embed_backend": models.embed_backend,
        }
        log.info("ray ingest: %d files, %d actors (%s)", len(todo), actors, per_actor)
        by_path = {str(found.path): (found, digest, old) for found, digest, old in todo}
        ds = ray.data.from_items([{"path": p} for p in by_path], override_num_blocks=max(1, min(len(todo), 4 * actors)))
        ds = ds.map_batches(
            ChunkEmbedActor,
            fn_constructor_kwargs={
                "spec": embedder.model_id,
                "options": options,
                "chunk_size": chunking.size,
                "overlap": chunking.overlap,
                "max_bytes": max_bytes,
                "load_options": asdict(load_options or LoadOptions()),
            },
            batch_size=DOCS_PER_BATCH,
            concurrency=actors,
            batch_format="numpy",
            **per_actor,
        )
        dim = embedder.dimension
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for i, key in enumerate(batch["path"]):
                key, parent = str(key), str(batch["parent"][i])
                found, digest, old = by_path[parent]
                before = {d.path: d for d in (attached or {}).get(parent, [])}
                if batch["error"][i]:
                    skipped.append(SkippedFile(display_path(key), str(batch["error"][i])))
                    continue
                chunks = [Chunk(**row) for row in json.loads(batch["chunks"][i])]
                vectors = np.frombuffer(batch["vectors"][i], dtype=np.float32).reshape(len(chunks), dim)
                meta = json.loads(batch["meta"][i])
                doc = Document(path=key, text="", file_type=str(batch["file_type"][i]), metadata=meta)
                language = str(batch["language"][i])
                if key != parent:  # an attachment of the e-mail at ``parent``
                    child_digest, size = str(batch["digest"][i]), sum(len(c.text) for c in chunks)
                    yield Item(key, child_digest, found.mtime, size, before.get(key), doc, chunks, vectors, language)
                    continue
                now = set(json.loads(batch["children"][i]))
                drop = tuple(d for k, d in before.items() if k not in now)
                yield Item(parent, digest, found.mtime, found.size, old, doc, chunks, vectors, language, drop)
    finally:
        if started:
            ray.shutdown()
