"""OpenVINO runtime for the transformer of a sentence-transformers model (the embedder's ``backend``).

On CPUs with native bf16 (AVX512-BF16/AMX) OpenVINO's fused kernels embed MiniLM about 1.4x faster than torch in
bf16, with vectors as close to float32 (benchmarks/embedding.py). ``precision="int8"`` quantizes the model's matrix
multiplications to int8 weights and activations with NNCF (``rag.embed.int8``; VNNI kernels), cached separately.
The torch module is converted once with ``openvino.convert_model`` (dynamic batch and sequence length) and cached
as IR under the rag cache folder; the pooling and normalisation modules of the sentence-transformers pipeline still
run in torch (they are cheap).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from rag.models.locations import cache_dir

log = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def _ir_path(location: str, names: list[str], int8: bool = False) -> Path:
    """Cache file for the converted model: keyed by the model folder (and its config), the input names, the
    OpenVINO and transformers versions and, for the int8 model, NNCF's version and the calibration texts."""
    from importlib.metadata import version

    import openvino

    config = Path(location) / "config.json"
    stamp = config.read_text(encoding="utf-8") if config.is_file() else ""
    # versions from package metadata (importing transformers or nncf takes seconds; the strings are the same)
    parts = [os.path.abspath(location), stamp, ",".join(names), openvino.__version__, version("transformers")]
    if int8:
        from rag.embed.int8 import calibration_texts

        parts += ["int8", version("nncf"), *calibration_texts()]
    key = "\n".join(parts)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return cache_dir() / "openvino" / f"{Path(location).name}-{digest}" / "model.xml"


def precision_hint(precision: str) -> str:
    """OpenVINO's inference precision for a model run in ``precision`` (int8: the ops left in bf16 or f32).

    An int8 model's other ops run in bf16 on CPUs with native bf16, except those with AMX: there OpenVINO's bf16
    path took the int8 E5's agreement with its float32 reference from >= 0.99 to 0.93 (cosine, the model's test
    sentences; tests/embed/test_e5_engines.py), so they stay in f32."""
    from rag.embed.hardware import cpu_has_amx, cpu_has_native_bf16

    if precision == "bfloat16":
        return "bf16"
    return "bf16" if precision == "int8" and cpu_has_native_bf16() and not cpu_has_amx() else "f32"


def cached_ir(location: str, precision: str) -> tuple[Path, tuple[str, ...]] | None:
    """The IR an earlier process converted for the model folder ``location`` in ``precision`` and its input names,
    when it is cached (BERT-like models take token type ids, others not)."""
    for names in (INPUTS, INPUTS[:2]):
        path = _ir_path(location, list(names), precision == "int8")
        if path.is_file() and path.with_suffix(".bin").is_file():
            return path, names
    return None


class OpenVinoTransformer:
    """Runs module 0 (the transformer) of a sentence-transformers model on OpenVINO; the rest in torch."""

    def __init__(self, st_model: Any, location: str, precision: str, threads: int = 0) -> None:
        import openvino as ov

        self._st = st_model
        probe = st_model.preprocess(["probe text", "a second, longer probe text"])
        self.names = [n for n in INPUTS if n in probe]
        int8 = precision == "int8"
        path = _ir_path(location, self.names, int8)
        core = ov.Core()
        if path.is_file():
            model = core.read_model(str(path))
        else:
            log.info("converting %s to OpenVINO%s (once; cached in %s)", location, " int8" * int8, path.parent)
            model = ov.convert_model(
                st_model[0].auto_model,
                example_input={n: probe[n] for n in self.names},
                input=[(n, ov.PartialShape([-1, -1]), ov.Type.i64) for n in self.names],
            )
            if int8:
                from rag.embed.int8 import quantize

                model = quantize(model, self._calibration(), name=Path(location).name)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"tmp-{os.getpid()}.xml")
            ov.save_model(model, str(tmp), compress_to_fp16=False)
            tmp.with_suffix(".bin").replace(path.with_suffix(".bin"))
            tmp.replace(path)
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision_hint(precision)}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core.compile_model(model, "CPU", config)
        self.output = self.compiled.output(0)

    def _calibration(self, batch_size: int = 8) -> list[dict[str, Any]]:
        """rag's calibration texts as this model's inputs (numpy), in batches."""
        from rag.embed.int8 import calibration_texts

        texts = calibration_texts()
        batches = []
        for i in range(0, len(texts), batch_size):
            features = self._st.preprocess(texts[i : i + batch_size])
            batches.append({n: np.asarray(features[n].numpy(), dtype=np.int64) for n in self.names})
        return batches

    def __call__(self, features: dict[str, Any]) -> Any:
        """The sentence embeddings (a torch tensor) of one preprocessed batch."""
        import torch

        request = self.compiled.create_infer_request()  # one per call: safe from several threads
        result = request.infer({n: np.asarray(features[n].numpy(), dtype=np.int64) for n in self.names})
        features = dict(features)
        features["token_embeddings"] = torch.from_numpy(np.array(result[self.output], dtype=np.float32))
        for module in list(self._st)[1:]:
            features = module(features)
        return features["sentence_embedding"]
