"""Converted models, made once and cached so later loads take seconds: GGUF -> transformers folder (de-quantised),
transformers folder -> ONNX Runtime GenAI folder (int4 weights).

The Qwen models take the low-memory path: the GGUF written as bf16 safetensors shards tensor by tensor
(``rag.models.gguf_weights``), then onnxruntime-genai's builder run one layer at a time (``rag.models.onnx_build``).
For the 1.5B that is about 2.5 GB at the peak instead of 13.5 GB, with the same ONNX weights byte for byte; one
tqdm bar shows the steps (``Steps``) and the libraries' own output stays out of the terminal."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from rag.errors import ModelLoadError
from rag.models.bundled import QWEN_05B, QWEN_15B, SplitGGUF, gemma3_gguf, joined_gguf, smollm2_gguf
from rag.models.locations import cache_dir

log = logging.getLogger(__name__)

Report = Callable[[int, int], None]  # progress(done, total) of one step


class Steps:
    """One tqdm bar (off when stderr is not a terminal) over a conversion's steps: ``step(name, share)`` gives the
    ``Report`` that moves the bar through that step's share of 100 and shows its name."""

    def __init__(self, title: str) -> None:
        from tqdm import tqdm

        self.title = title
        self.base = 0.0
        self.bar = tqdm(
            total=100, desc=title, disable=None, leave=False, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}"
        )

    def step(self, name: str, share: float) -> Report:
        base = self.base
        self.base += share
        self.bar.set_description_str(f"{self.title}: {name}", refresh=False)

        def report(done: int, total: int) -> None:
            self.bar.set_description_str(f"{self.title}: {name}", refresh=False)
            self.bar.n = min(100.0, base + share * done / max(1, total))
            self.bar.refresh()

        return report

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.bar.close()


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


def converted_qwen(gguf: Path, name: str, progress: Report | None = None) -> Path:
    """The Qwen2 ``gguf`` converted once to a bf16 transformers folder ``name`` under the cache, one tensor at a
    time (``rag.models.gguf_weights``: the files transformers' own conversion writes, in shards), then reused."""

    def build(tmp: Path) -> None:
        # In a child process, as the export: its memory (the mapped GGUF, a shard) is returned when it ends.
        code, tail = _run_child([sys.executable, "-m", "rag.models.gguf_weights", str(gguf), str(tmp)], progress)
        if code != 0:
            raise ModelLoadError(f"converting {gguf} to a transformers folder failed: {tail}")

    return build_once(name, "config.json", build)


def _child_env() -> dict[str, str]:
    """A child's environment: local files only, no progress bars, and this copy of rag importable."""
    here = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONPATH": path}


def _run_child(command: list[str], progress: Report | None) -> tuple[int, str]:
    """``command`` run (``_child_env``) with its stdout read as JSON progress lines (``{"total": n}``,
    ``{"done": k}``) and its stderr kept in a temporary file: the exit status and the last lines of stderr."""
    env = _child_env()
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errors:
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert child.stdout is not None
        total = 0
        for line in child.stdout:
            try:
                message: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            total = int(message.get("total", total))
            if progress is not None and "done" in message:
                progress(int(message["done"]), total)
        code = child.wait()
        errors.seek(0)
        tail = " ".join(errors.read().strip().splitlines()[-3:])
    return code, tail


def export_onnx(
    hf_folder: Path,
    out: Path,
    precision: str = "int4",
    accuracy_level: int | None = 4,
    prune_lm_head: bool = True,
    quantize_embeddings: bool = True,
    progress: Report | None = None,
) -> None:
    """``hf_folder`` exported to an ONNX Runtime GenAI folder ``out`` by onnxruntime-genai's model builder, in a
    child process (so its memory is returned when it ends): weights in ``precision`` (int4: MatMulNBits, whose
    ``accuracy_level`` 4 computes in int8), KV cache, the tokenizer and the chat template. ``prune_lm_head``: the
    output layer (896 x 151,936 for the 0.5B, a quarter of its multiply-adds per token) runs on the last prompt
    token only, not on every one; the prefill is about 1.35x faster with the same answers
    (benchmarks/generators.py). ``quantize_embeddings``: the token embedding table in int4 too (a float32 table is
    545 MB for the 0.5B, 933 MB for the 1.5B): about 290 MB less memory for the 0.5B, the same answers and speed.
    The builder runs through ``rag.models.onnx_build`` (one layer in memory at a time, the same output);
    ``progress(done, total)`` after each layer."""
    scratch = out.with_name(out.name + ".scratch")
    command = [
        sys.executable, "-m", "rag.models.onnx_build",
        "-i", str(hf_folder), "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(scratch),
    ]  # fmt: skip
    options = [f"int4_accuracy_level={accuracy_level}"] if precision == "int4" and accuracy_level is not None else []
    options += ["prune_lm_head=true"] if prune_lm_head else []
    options += ["op_types_to_quantize=MatMul/Gather"] if precision in ("int4", "int8") and quantize_embeddings else []
    if options:
        command += ["--extra_options", *options]
    code, tail = _run_child(command, progress)
    shutil.rmtree(scratch, ignore_errors=True)
    if code != 0 or not (out / "genai_config.json").is_file():
        raise ModelLoadError(f"exporting {hf_folder} to ONNX failed: {tail}")


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


def onnx_int4(hf_folder: Path, name: str, stale: tuple[str, ...] = (), progress: Report | None = None) -> Path:
    """``hf_folder`` exported once to an ONNX Runtime GenAI folder ``name`` under the cache: int4 weights (the
    embedding table too) with int8 compute on the CPU (accuracy level 4), the output layer on the last prompt token
    only. The folders of earlier exports of the same model (``stale``, under the cache) are removed once it is
    built."""

    def build(tmp: Path) -> None:
        log.info("exporting %s to ONNX Runtime int4", hf_folder.name)
        export_onnx(hf_folder, tmp, "int4", 4, progress=progress)
        for old in stale:  # only after a successful export: a failed one leaves the earlier exports usable
            folder = cache_dir() / "models" / old
            if folder.is_dir():
                log.info("removing the earlier export %s", folder)
                shutil.rmtree(folder, ignore_errors=True)
                Path(str(folder) + ".lock").unlink(missing_ok=True)

    return build_once(name, "genai_config.json", build)


# The export folders' names; "-v2": the output layer on the last prompt token, and int4 embeddings (export_onnx).
# The low-memory path makes the same files (byte for byte), so the names stay.
QWEN_05B_ONNX = "qwen2.5-coder-0.5b-instruct-ort-int4"
QWEN_15B_ONNX = "qwen2.5-coder-1.5b-instruct-ort-int4"
QWEN_05B_BF16 = "qwen2.5-coder-0.5b-instruct-bf16"
QWEN_15B_BF16 = "qwen2.5-coder-1.5b-instruct-bf16"
# Minutes a first conversion takes, for the one-line notice (measured on 2 shared cores: the 1.5B 1.5 to 4 minutes,
# the 0.5B 1 to 2).
MINUTES = {QWEN_05B.name: 1, QWEN_15B.name: 3}


def _current_export(hf_folder: Path, base: str, progress: Report | None = None) -> Path:
    """The current ("-v2") export of ``hf_folder``, the earlier ones (``base``, ``base``-lastlogits) removed."""
    return onnx_int4(hf_folder, f"{base}-v2", stale=(base, f"{base}-lastlogits"), progress=progress)


def _ready(name: str, marker: str) -> bool:
    return (cache_dir() / "models" / name / marker).is_file()


def _notice(label: str, model: SplitGGUF, what: str = "") -> None:
    minutes = MINUTES.get(model.name, 3)
    log.warning("preparing the generator %s%s once (about %d minute%s)", label, what, minutes, "s" * (minutes != 1))


def qwen_onnx(model: SplitGGUF, label: str, bf16: str, base: str) -> Path:
    """``model`` for ONNX Runtime GenAI, int4: on first use joined, written as a bf16 transformers folder and
    exported, under one progress bar and after one notice line; later, the cached folder."""
    if _ready(f"{base}-v2", "genai_config.json"):
        return cache_dir() / "models" / f"{base}-v2"
    made = _ready(bf16, "config.json")  # by a torch run
    if not made and not model.installed():
        joined_gguf(model)  # refused with the pip line, before any notice
    _notice(label, model)
    with Steps(f"preparing {label}") as steps:
        if made:
            hf_folder = cache_dir() / "models" / bf16
        else:
            gguf = joined_gguf(model, progress=steps.step("joining the parts", 10))
            hf_folder = converted_qwen(gguf, bf16, progress=steps.step("de-quantising", 35))
        return _current_export(hf_folder, base, progress=steps.step("exporting to int4", 100 - steps.base))


def qwen_transformers(model: SplitGGUF, label: str, bf16: str) -> Path:
    """``model`` as a bf16 transformers folder (the torch runtime's), made once like ``qwen_onnx``'s first steps."""
    if _ready(bf16, "config.json"):
        return cache_dir() / "models" / bf16
    if not model.installed():
        joined_gguf(model)  # refused with the pip line, before any notice
    _notice(label, model, " for torch")
    with Steps(f"preparing {label}") as steps:
        gguf = joined_gguf(model, progress=steps.step("joining the parts", 20))
        return converted_qwen(gguf, bf16, progress=steps.step("de-quantising", 80))


def qwen_05b_transformers() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct (``rag[qwen05b]``) as a transformers folder in bfloat16."""
    return qwen_transformers(QWEN_05B, "qwen2.5-0.5b", QWEN_05B_BF16)


def qwen_05b_onnx() -> Path:
    """Qwen2.5-Coder-0.5B-Instruct for ONNX Runtime GenAI, int4."""
    return qwen_onnx(QWEN_05B, "qwen2.5-0.5b", QWEN_05B_BF16, QWEN_05B_ONNX)


def qwen_15b_transformers() -> Path:
    """Qwen2.5-Coder-1.5B-Instruct (the default generator) as a transformers folder in bfloat16."""
    return qwen_transformers(QWEN_15B, "qwen2.5-1.5b", QWEN_15B_BF16)


def qwen_15b_onnx() -> Path:
    """Qwen2.5-Coder-1.5B-Instruct (the default generator) for ONNX Runtime GenAI, int4."""
    return qwen_onnx(QWEN_15B, "qwen2.5-1.5b", QWEN_15B_BF16, QWEN_15B_ONNX)


def converted_smollm2() -> Path:
    """SmolLM2-135M-Instruct as a transformers folder (converted from the packaged GGUF on first use)."""
    gguf = smollm2_gguf()
    return converted(gguf, f"smollm2-135m-instruct-{gguf.stat().st_size}")


def converted_gemma3() -> Path:
    gguf = gemma3_gguf()
    return converted(gguf, f"gemma3-270m-{gguf.stat().st_size}")
