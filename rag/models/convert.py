"""Converted models, made once and cached so later loads take seconds: GGUF -> transformers folder (de-quantised),
transformers folder -> ONNX Runtime GenAI folder (int4 weights)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rag.errors import ModelLoadError
from rag.models.bundled import QWEN_05B, gemma3_gguf, joined_gguf, smollm2_gguf
from rag.models.locations import cache_dir

log = logging.getLogger(__name__)


def converted(gguf: Path, name: str, dtype: str = "float32") -> Path:
    """``gguf`` converted once to a transformers folder ``name`` under the cache (weights de-quantised to
    ``dtype``, memory-mapped safetensors), then reused."""
    target = cache_dir() / "models" / name
    if (target / "config.json").is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():
            return target
        log.warning("converting %s to a transformers model in %s (once; takes a minute)", gguf.name, target)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tmp = target.with_name(target.name + ".tmp")
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True, dtype=getattr(torch, dtype)
        )
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return target


def onnx_int4(hf_folder: Path, name: str) -> Path:
    """``hf_folder`` exported once to an ONNX Runtime GenAI folder ``name`` under the cache: int4 weights
    (MatMulNBits, int8 compute on the CPU), KV cache, the tokenizer and the chat template. The export runs in a
    child process (onnxruntime-genai's model builder) so its memory is returned when it ends."""
    target = cache_dir() / "models" / name
    if (target / "genai_config.json").is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "genai_config.json").is_file():
            return target
        log.warning("exporting %s to ONNX Runtime int4 in %s (once; takes a minute)", hf_folder.name, target)
        tmp = target.with_name(target.name + ".tmp")
        scratch = target.with_name(target.name + ".scratch")
        shutil.rmtree(tmp, ignore_errors=True)
        command = [
            sys.executable, "-m", "onnxruntime_genai.models.builder",
            "-i", str(hf_folder), "-o", str(tmp), "-p", "int4", "-e", "cpu", "-c", str(scratch),
            "--extra_options", "int4_accuracy_level=4",
        ]  # fmt: skip
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # the child's own environment: a local folder, no network
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)
        if done.returncode != 0 or not (tmp / "genai_config.json").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ModelLoadError(f"exporting {hf_folder} to ONNX failed: {' '.join(tail)}")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return target


def qwen_05b_transformers() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct as a transformers folder in bfloat16 (converted from the joined GGUF)."""
    return converted(joined_gguf(QWEN_05B), "qwen2.5-coder-0.5b-instruct-bf16", dtype="bfloat16")


def qwen_05b_onnx() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct for ONNX Runtime GenAI, int4 (exported from the transformers folder)."""
    return onnx_int4(qwen_05b_transformers(), "qwen2.5-coder-0.5b-instruct-ort-int4")


def converted_smollm2() -> Path:
    """SmolLM2-135M-Instruct as a transformers folder (converted from the packaged GGUF on first use)."""
    gguf = smollm2_gguf()
    return converted(gguf, f"smollm2-135m-instruct-{gguf.stat().st_size}")


def converted_gemma3() -> Path:
    gguf = gemma3_gguf()
    return converted(gguf, f"gemma3-270m-{gguf.stat().st_size}")
