"""OpenVINO runtime for the transformer of a sentence-transformers model (the embedder's ``backend``).

On CPUs with native bf16 (AVX512-BF16/AMX) OpenVINO's fused kernels embed MiniLM about 1.4x faster than torch in
bf16, with vectors as close to float32 (benchmarks/embedding.py). The torch module is converted once with
``openvino.convert_model`` (dynamic batch and sequence length) and cached as IR under the rag cache folder; the
pooling and normalisation modules of the sentence-transformers pipeline still run in torch (they are cheap).
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


def _ir_path(location: str, names: list[str]) -> Path:
    """Cache file for the converted model: keyed by the model folder (and its config), the input names and the
    OpenVINO and transformers versions."""
    import openvino
    import transformers

    config = Path(location) / "config.json"
    stamp = config.read_text(encoding="utf-8") if config.is_file() else ""
    key = "\n".join([os.path.abspath(location), stamp, ",".join(names), openvino.__version__, transformers.__version__])
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return cache_dir() / "openvino" / f"{Path(location).name}-{digest}" / "model.xml"


class OpenVinoTransformer:
    """Runs module 0 (the transformer) of a sentence-transformers model on OpenVINO; the rest in torch."""

    def __init__(self, st_model: Any, location: str, precision: str, threads: int = 0) -> None:
        import openvino as ov

        self._st = st_model
        probe = st_model.preprocess(["probe text", "a second, longer probe text"])
        self.names = [n for n in INPUTS if n in probe]
        path = _ir_path(location, self.names)
        core = ov.Core()
        if path.is_file():
            model = core.read_model(str(path))
        else:
            log.info("converting %s to OpenVINO (once; cached in %s)", location, path.parent)
            model = ov.convert_model(
                st_model[0].auto_model,
                example_input={n: probe[n] for n in self.names},
                input=[(n, ov.PartialShape([-1, -1]), ov.Type.i64) for n in self.names],
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"tmp-{os.getpid()}.xml")
            ov.save_model(model, str(tmp), compress_to_fp16=False)
            tmp.with_suffix(".bin").replace(path.with_suffix(".bin"))
            tmp.replace(path)
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bfloat16" else "f32"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core.compile_model(model, "CPU", config)
        self.output = self.compiled.output(0)

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
