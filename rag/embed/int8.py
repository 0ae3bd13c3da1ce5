"""int8 weights and activations for OpenVINO embedders (NNCF post-training quantization), run with VNNI.

``quantize(model, batches)`` returns the OpenVINO model with int8 fake-quantize nodes on the matrix
multiplications (NNCF's transformer preset: SmoothQuant, then bias correction), which OpenVINO's CPU plugin runs as
int8 x int8 -> int32 kernels (AVX-512 VNNI / AVX-VNNI / AMX); the rest (softmax, LayerNorm, GELU) stays in bf16 or
float32 as the compile hint says. The activation ranges come from ``calibration_texts()``: 48 passages and
questions in English and Chinese shipped with rag (paragraphs of the sample corpus in ``corpora/``, a few lines of
code and API prose), so the quantized model is the same on every machine and every run, whatever is ingested.

Quantizing is a one-off preparation step, so the user sees one bar named after it (``int8 NAME``, counting the
calibration batches NNCF reads) and none of NNCF's own output: its rich progress bars ("Statistics collection",
"Applying Fast Bias correction"), which it writes to stdout where they would also break ``--json`` output, its log
lines and its warnings. With rag logging at DEBUG (``-v``) NNCF speaks for itself.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
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


# NNCF's transformer preset reads the calibration set twice (SmoothQuant's statistics, then the quantizers').
PASSES = 2


@contextlib.contextmanager
def nncf_silenced() -> Iterator[None]:
    """NNCF's progress bars, log lines and warnings kept off the terminal, unless rag logs at DEBUG."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        nncf_log.setLevel(level)


def quantize(model: Any, batches: list[dict[str, Any]], name: str = "embedder") -> Any:
    """``model`` (an ``openvino.Model``) with int8 weights and activations, calibrated on ``batches`` (input
    dicts of numpy arrays, as the compiled model takes them); ``name`` labels the progress bar."""
    from tqdm import tqdm

    bar = tqdm(
        total=PASSES * len(batches),
        unit="batch",
        desc=f"int8 {name}",
        disable=None if log.isEnabledFor(logging.INFO) else True,  # -q: no bar; not a terminal: none either
        leave=False,
    )

    def counted(batch: dict[str, Any]) -> dict[str, Any]:
        if bar.total is not None and bar.n >= bar.total:
            bar.total += len(batches)  # a preset that reads it once more
        bar.update(1)
        return batch

    with nncf_silenced(), bar:
        import nncf

        return nncf.quantize(
            model,
            nncf.Dataset(batches, counted),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(batches),  # NNCF counts dataset items (our batches), not texts: every batch is used
        )
