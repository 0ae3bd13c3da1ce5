"""Converted models, made once and cached so later loads take seconds: GGUF -> transformers folder (de-quantised),
transformers folder -> ONNX Runtime GenAI folder (int4 weights)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from rag.errors import ModelLoadError
from rag.models.bundled import QWEN_05B, QWEN_15B, gemma3_gguf, joined_gguf, smollm2_gguf
from rag.models.locations import cache_dir

log = logging.getLogger(__name__)


def build_once(name: str, marker: str, build: Callable[[Path], None]) -> Path:
    """The cache folder ``models/name``, made once: ``build(tmp)`` fills a temporary folder, which replaces the
    target only when ``marker`` exists in it. A lock keeps two processes from building at once; a failed or killed
    build leaves no target (a stale temporary folder is removed by the next build)."""
    target = cache_dir() / "models" / name
    if (target / marker).is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / marker).is_file():
            return target
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            build(tmp)
            if not (tmp / marker).is_file():
                raise ModelLoadError(f"building {target} made no {marker}")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return target


def converted(gguf: Path, name: str, dtype: str = "float32") -> Path:
    """``gguf`` converted once to a transformers folder ``name`` under the cache (weights de-quantised to
    ``dtype``, memory-mapped safetensors), then reused."""

    def build(tmp: Path) -> None:
        log.warning("converting %s to a transformers model (once; takes a minute)", gguf.name)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True, dtype=getattr(torch, dtype)
        )
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))

    return build_once(name, "config.json", build)


def export_onnx(
    hf_folder: Path,
    out: Path,
    precision: str = "int4",
    accuracy_level: int | None = 4,
    prune_lm_head: bool = True,
    quantize_embeddings: bool = True,
) -> None:
    """``hf_folder`` exported to an ONNX Runtime GenAI folder ``out`` by onnxruntime-genai's model builder, in a
    child process (so its memory is returned when it ends): weights in ``precision`` (int4: MatMulNBits, whose
    ``accuracy_level`` 4 computes in int8), KV cache, the tokenizer and the chat template. ``prune_lm_head``: the
    output layer (896 x 151,936 for the 0.5B, a quarter of its multiply-adds per token) runs on the last prompt
    token only, not on every one; the prefill is about 1.35x faster with the same answers
    (benchmarks/generators.py). ``quantize_embeddings``: the token embedding table in int4 too (a float32 table is
    545 MB for the 0.5B, 933 MB for the 1.5B): about 290 MB less memory for the 0.5B, the same answers and speed."""
    scratch = out.with_name(out.name + ".scratch")
    command = [
        sys.executable, "-m", "onnxruntime_genai.models.builder",
        "-i", str(hf_folder), "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(scratch),
    ]  # fmt: skip
    options = [f"int4_accuracy_level={accuracy_level}"] if precision == "int4" and accuracy_level is not None else []
    options += ["prune_lm_head=true"] if prune_lm_head else []
    options += ["op_types_to_quantize=MatMul/Gather"] if precision in ("int4", "int8") and quantize_embeddings else []
    if options:
        command += ["--extra_options", *options]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # the child's own environment: a local folder, no network
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    shutil.rmtree(scratch, ignore_errors=True)
    if done.returncode != 0 or not (out / "genai_config.json").is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ModelLoadError(f"exporting {hf_folder} to ONNX failed: {' '.join(tail)}")


def requantized_gguf(gguf_file: Path, out: Path, kind: str = "q8_0") -> None:
    """``gguf_file`` rewritten to ``out`` with its matrices in ``kind`` (``q8_0``, ``q4_0`` or ``f16``; vectors in
    f32) and the same metadata (tokenizer, chat template): the tensor types OpenVINO GenAI's GGUF reader loads, so
    ``LLMPipeline`` can run the bundled Q4_K_M/Q6_K model without an exporter. Only the ``gguf`` package."""
    import gguf
    import numpy as np
    from tqdm import tqdm

    types = {"q8_0": (gguf.GGMLQuantizationType.Q8_0, 7), "q4_0": (gguf.GGMLQuantizationType.Q4_0, 2)}
    types["f16"] = (gguf.GGMLQuantizationType.F16, 1)
    if kind not in types:
        raise ModelLoadError(f"cannot requantize to {kind!r}: one of {', '.join(types)}")
    target, file_type = types[kind]
    reader = gguf.GGUFReader(str(gguf_file))
    writer = gguf.GGUFWriter(str(out), str(reader.fields["general.architecture"].contents()))
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        kind_of = field.types[0]
        sub = field.types[-1] if kind_of == gguf.GGUFValueType.ARRAY else None
        value = file_type if field.name == "general.file_type" else field.contents()
        writer.add_key_value(field.name, value, kind_of, sub_type=sub)
    for tensor in tqdm(reader.tensors, desc=f"requantizing {gguf_file.name} to {kind}", unit="tensor"):
        shape = [int(n) for n in reversed(tensor.shape.tolist())]
        weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(shape).astype(np.float32)
        if len(shape) < 2:
            writer.add_tensor(tensor.name, weights)
        elif target == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(tensor.name, weights.astype(np.float16))
        else:
            writer.add_tensor(tensor.name, gguf.quants.quantize(weights, target), raw_dtype=target)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def onnx_int4(hf_folder: Path, name: str, stale: tuple[str, ...] = ()) -> Path:
    """``hf_folder`` exported once to an ONNX Runtime GenAI folder ``name`` under the cache: int4 weights (the
    embedding table too) with int8 compute on the CPU (accuracy level 4), the output layer on the last prompt token
    only. The folders of earlier exports of the same model (``stale``, under the cache) are removed once it is
    built."""

    def build(tmp: Path) -> None:
        log.warning("exporting %s to ONNX Runtime int4 (once; takes a minute)", hf_folder.name)
        export_onnx(hf_folder, tmp, "int4", 4)
        for old in stale:  # only after a successful export: a failed one leaves the earlier exports usable
            folder = cache_dir() / "models" / old
            if folder.is_dir():
                log.info("removing the earlier export %s", folder)
                shutil.rmtree(folder, ignore_errors=True)
                Path(str(folder) + ".lock").unlink(missing_ok=True)

    return build_once(name, "genai_config.json", build)


# The export folders' names; "-v2": the output layer on the last prompt token, and int4 embeddings (export_onnx).
QWEN_05B_ONNX = "qwen2.5-coder-0.5b-instruct-ort-int4"
QWEN_15B_ONNX = "qwen2.5-coder-1.5b-instruct-ort-int4"


def _current_export(hf_folder: Path, base: str) -> Path:
    """The current ("-v2") export of ``hf_folder``, the earlier ones (``base``, ``base``-lastlogits) removed."""
    return onnx_int4(hf_folder, f"{base}-v2", stale=(base, f"{base}-lastlogits"))


def qwen_05b_transformers() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct as a transformers folder in bfloat16 (converted from the joined GGUF)."""
    return converted(joined_gguf(QWEN_05B), "qwen2.5-coder-0.5b-instruct-bf16", dtype="bfloat16")


def qwen_05b_onnx() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct for ONNX Runtime GenAI, int4 (exported from the transformers folder)."""
    return _current_export(qwen_05b_transformers(), QWEN_05B_ONNX)


def qwen_15b_transformers() -> Path:
    """Qwen2.5-Coder-1.5B-Instruct (optional, ``rag[qwen15b]``) as a transformers folder in bfloat16."""
    return converted(joined_gguf(QWEN_15B), "qwen2.5-coder-1.5b-instruct-bf16", dtype="bfloat16")


def qwen_15b_onnx() -> Path:
    """Qwen2.5-Coder-1.5B-Instruct for ONNX Runtime GenAI, int4 (exported from the transformers folder)."""
    return _current_export(qwen_15b_transformers(), QWEN_15B_ONNX)


def converted_smollm2() -> Path:
    """SmolLM2-135M-Instruct as a transformers folder (converted from the packaged GGUF on first use)."""
    gguf = smollm2_gguf()
    return converted(gguf, f"smollm2-135m-instruct-{gguf.stat().st_size}")


def converted_gemma3() -> Path:
    gguf = gemma3_gguf()
    return converted(gguf, f"gemma3-270m-{gguf.stat().st_size}")
