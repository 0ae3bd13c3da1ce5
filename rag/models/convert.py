"""GGUF -> transformers folder, converted once (de-quantised) and cached, so later loads take seconds."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from rag.models.bundled import gemma3_gguf, smollm2_gguf
from rag.models.locations import cache_dir

log = logging.getLogger(__name__)


def converted(gguf: Path, name: str) -> Path:
    """``gguf`` converted once to a transformers folder ``name`` under the cache, then reused."""
    target = cache_dir() / "models" / name
    if (target / "config.json").is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():
            return target
        log.warning("converting %s to a transformers model in %s (once; takes a minute)", gguf.name, target)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tmp = target.with_name(target.name + ".tmp")
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        os.replace(tmp, target)
    return target


def converted_smollm2() -> Path:
    """SmolLM2-135M-Instruct as a transformers folder (converted from the packaged GGUF on first use)."""
    gguf = smollm2_gguf()
    return converted(gguf, f"smollm2-135m-instruct-{gguf.stat().st_size}")


def converted_gemma3() -> Path:
    gguf = gemma3_gguf()
    return converted(gguf, f"gemma3-270m-{gguf.stat().st_size}")
