"""int8 weights and activations for OpenVINO embedders (NNCF post-training quantization), run with VNNI.

``quantize(model, batches)`` returns the OpenVINO model with int8 fake-quantize nodes on the matrix
multiplications (NNCF's transformer preset: SmoothQuant, then bias correction), which OpenVINO's CPU plugin runs as
int8 x int8 -> int32 kernels (AVX-512 VNNI / AVX-VNNI / AMX); the rest (softmax, LayerNorm, GELU) stays in bf16 or
float32 as the compile hint says. The activation ranges come from ``calibration_texts()``: 48 passages and
questions in English and Chinese shipped with rag (paragraphs of the sample corpus in ``corpora/``, a few lines of
code and API prose), so the quantized model is the same on every machine and every run, whatever is ingested.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

log = logging.getLogger(__name__)


def available() -> bool:
    """True when NNCF (the quantizer) is installed."""
    import importlib.util

    return importlib.util.find_spec("nncf") is not None


def calibration_texts() -> list[str]:
    """The calibration passages, in order (English and Chinese)."""
    raw = resources.files("rag.embed").joinpath("calibration.txt").read_text(encoding="utf-8")
    return [p.replace("\\n", "\n") for p in raw.split("\n\n") if p.strip()]


def quantize(model: Any, batches: list[dict[str, Any]]) -> Any:
    """``model`` (an ``openvino.Model``) with int8 weights and activations, calibrated on ``batches`` (input
    dicts of numpy arrays, as the compiled model takes them)."""
    import nncf

    logging.getLogger("nncf").setLevel(logging.WARNING)
    return nncf.quantize(
        model,
        nncf.Dataset(batches),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(batches),  # NNCF counts dataset items (our batches), not texts: every batch is used
    )
