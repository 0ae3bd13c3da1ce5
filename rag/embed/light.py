"""Questions embedded without torch: the bundled MiniLM's cached OpenVINO IR, its Rust tokenizer and numpy pooling.

Importing sentence-transformers takes seconds (it pulls in transformers, torch and their dependencies), which is
most of a cold ``rag search`` over a MiniLM index. Embedding a question needs none of it once the transformer has
been converted to OpenVINO (by the first ingest): ``tokenizers`` cuts the text as the model's fast tokenizer does,
the IR runs on OpenVINO (its compiled form cached beside it), and mean pooling plus normalisation are a few numpy
lines. The vectors are the full engine's (same IR, same precision; cosine above 0.9999 in the tests). Only used when
the IR is already cached: otherwise the embedder loads fully and converts it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

BATCH = 32  # texts per inference: one call with thousands padded to the longest took 9.6 GB for 3,000 sentences


class LightQueryEngine:
    """Embeds short texts with the cached IR at ``ir`` for the sentence-transformers folder ``folder`` (mean
    pooling, normalised, ``max_seq_length`` from its config)."""

    def __init__(self, folder: Path, ir: Path, names: tuple[str, ...], precision_hint: str, threads: int = 0) -> None:
        import openvino as ov
        from tokenizers import Tokenizer

        config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self.max_length = int(config.get("max_seq_length") or 256)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.no_padding()
        self.names = names
        settings: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": precision_hint,
            "CACHE_DIR": str(ir.parent / "compiled"),
        }
        if threads > 0:
            settings["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(str(ir), "CPU", settings)
        self.output = self.compiled.output(0)

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        """Normalised sentence vectors of ``texts``: in length-sorted batches of ``BATCH`` (each padded to its
        longest), so that many texts at once (``prime_queries``, ``rag tune``) cost no more memory than a batch."""
        encodings = self.tokenizer.encode_batch(texts)
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        batches = [self._batch([encodings[i] for i in order[s : s + BATCH]]) for s in range(0, len(order), BATCH)]
        stacked = np.concatenate(batches)
        out = np.empty_like(stacked)
        out[order] = stacked  # back to the order of ``texts``
        return out

    def _batch(self, encodings: list[Any]) -> NDArray[np.float32]:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = e.attention_mask
            types[row, : len(e.ids)] = e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        request = self.compiled.create_infer_request()  # one per call: safe from several threads
        tokens = np.asarray(request.infer({n: feeds[n] for n in self.names})[self.output], dtype=np.float32)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def mean_pooled(folder: Path) -> bool:
    """Whether the sentence-transformers folder is transformer -> mean pooling -> normalise (what the engine does)."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
    return kinds == ["Transformer", "Pooling", "Normalize"] and modes == ["pooling_mode_mean_tokens"]
