"""What the machine computes well: native bf16 on the CPU, a CUDA device, and the precision to run models in."""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

from rag.config import PRECISIONS
from rag.errors import ModelLoadError


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return frozenset(flags)


def total_memory_bytes() -> int | None:
    """The machine's physical memory in bytes (``sysconf``: Linux, macOS), or None where it cannot be read."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _is_arm() -> bool:
    return platform.machine().lower() in ("aarch64", "arm64")


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (x86 ``avx512_bf16``/``amx_bf16``, Arm ``bf16``).

    Read from /proc/cpuinfo (Linux); other systems report False and stay in float32. Without native support
    torch emulates bf16, which is slower than float32.
    """
    if _is_arm():
        return "bf16" in _cpu_flags()
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_amx() -> bool:
    """True on x86 CPUs with AMX tiles (Intel Sapphire Rapids and later)."""
    return "amx_tile" in _cpu_flags()


def cpu_has_int8_dot() -> bool:
    """True when the CPU has int8 dot-product instructions OpenVINO's int8 kernels use (x86 AVX-512 VNNI, AVX-VNNI
    or AMX-INT8; Arm ``asimddp``/``i8mm``): there int8 weights and activations beat bf16 and float32."""
    if _is_arm():
        return bool(_cpu_flags() & {"asimddp", "i8mm"})
    return bool(_cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def resolve_precision(precision: str, device: str) -> str:
    """The dtype to run a model in: ``auto`` picks float16 on CUDA, bfloat16 on a CPU with native bf16,
    float32 otherwise. Explicit values are checked and returned."""
    if precision not in PRECISIONS:
        raise ModelLoadError(f"precision={precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "float16"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
