"""The generator factory: ``AnswerSettings.generator`` names a backend.

Registered: ``qwen2.5-1.5b`` (the default: Qwen2.5-Coder-1.5B-Instruct, a chat model run on onnxruntime-genai or
torch; on a machine with under 6 GB of RAM it resolves to the 0.5B when that is installed), ``qwen2.5-0.5b``
(``rag[qwen05b]``: its 0.5B sibling, run the same way), ``qwen2.5-coder-1.5b-instruct`` (the 1.5B whatever the
RAM), ``smollm2`` and ``gemma3`` (small completion models on transformers), ``extractive`` (passage sentences, no
model) and ``openai`` (any OpenAI-compatible server). Anything else is a ``module:Class`` path (a class built with
``from_settings(settings)`` when it has one, else with no arguments) or a local folder of a causal LM. Backends
register here, with ``GENERATORS.register(name, factory)``; tests pass their fakes to ``RagPipeline`` as objects.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rag.answer.generators.base import Generator
from rag.config import AnswerSettings
from rag.embed.hardware import total_memory_bytes
from rag.errors import ModelLoadError
from rag.models.bundled import QWEN_05B
from rag.registry import Registry

if TYPE_CHECKING:
    from rag.answer.generators.runtimes import ChatRuntime

log = logging.getLogger(__name__)

QWEN = "qwen2.5-0.5b"
QWEN_15B = "qwen2.5-1.5b"
FACTOID_PASSAGES = {QWEN: 1, QWEN_15B: 3}  # passages a factoid reads when ``factoid_passages`` is not set
QWEN_15B_ALWAYS = "qwen2.5-coder-1.5b-instruct"  # the 1.5B even on a small machine
DEFAULT = QWEN_15B
SMALL_MACHINE_BYTES = 6 * 1024**3  # under this much RAM the default is the 0.5B (the 1.5B takes about 2.5 GB)


def resolve_qwen(spec: str) -> str:
    """The Qwen model ``spec`` names: ``qwen2.5-1.5b`` is the 0.5B on a machine with under 6 GB of RAM when the
    0.5B's parts are installed (said in one log line), else the 1.5B; the full 1.5B name is always the 1.5B."""
    name = GENERATORS.canonical(spec)
    if name == QWEN_15B_ALWAYS:
        return QWEN_15B
    if name != QWEN_15B:
        return QWEN
    total = total_memory_bytes()
    if total is not None and total < SMALL_MACHINE_BYTES and QWEN_05B.installed():
        log.warning(
            "this machine has %.1f GB of RAM (under 6 GB): answering with %s instead of %s (generator=%s keeps the "
            "1.5B)",
            total / 1024**3,
            QWEN,
            QWEN_15B,
            QWEN_15B_ALWAYS,
        )
        return QWEN
    return QWEN_15B


def _local(spec: str, settings: AnswerSettings) -> Generator:
    from rag.answer.generators.local import LocalGenerator

    return LocalGenerator(spec, temperature=settings.temperature, context_tokens=settings.context_tokens)


def _qwen(spec: str, settings: AnswerSettings) -> Generator:
    from rag.answer.generators.chat import ChatGenerator

    name = resolve_qwen(spec)
    return ChatGenerator(
        name,
        lambda: qwen_runtime(settings.llm_runtime, name),
        context_tokens=settings.context_tokens,
        compress_passages=settings.compress_passages,
        factoid_passages=FACTOID_PASSAGES[name] if settings.factoid_passages is None else settings.factoid_passages,
    )


def qwen_runtime(choice: str = "auto", model: str = QWEN_15B) -> ChatRuntime:
    """Qwen2.5-Coder-Instruct (``model``: ``qwen2.5-0.5b`` or ``qwen2.5-1.5b``) loaded on ``choice``:
    ``onnxruntime`` (int4), ``torch`` (bf16 on CPUs with native bf16, else fp32), or ``auto``: onnxruntime when
    onnxruntime-genai is installed and the export works, else torch (with a warning saying why)."""
    from rag.answer.generators.runtimes import OnnxRuntime, TorchRuntime
    from rag.embed.hardware import default_device, resolve_precision
    from rag.models import convert

    onnx, transformers = (
        (convert.qwen_15b_onnx, convert.qwen_15b_transformers)
        if model == QWEN_15B
        else (convert.qwen_05b_onnx, convert.qwen_05b_transformers)
    )
    if choice in ("auto", "onnxruntime"):
        try:
            return OnnxRuntime(onnx())
        except ModelLoadError as exc:
            if choice == "onnxruntime":
                raise
            log.warning("onnxruntime is not usable for %s (%s); running it on torch", model, exc)
    device = default_device()
    return TorchRuntime(transformers(), dtype=resolve_precision("auto", device), device=device)


def _extractive(spec: str, settings: AnswerSettings) -> Generator:
    from rag.answer.generators.extractive import ExtractiveGenerator

    return ExtractiveGenerator()


def _openai(spec: str, settings: AnswerSettings) -> Generator:
    from rag.answer.generators.openai import OpenAIGenerator

    return OpenAIGenerator.from_settings(settings)


GENERATORS: Registry[Generator, AnswerSettings] = Registry("generator", fallback=_local)
GENERATORS.register(QWEN_15B, _qwen, aliases=("qwen", "qwen2.5"))
GENERATORS.register(QWEN_15B_ALWAYS, _qwen)
GENERATORS.register(QWEN, _qwen, aliases=("qwen2.5-coder-0.5b-instruct",))
GENERATORS.register("smollm2", _local)
GENERATORS.register("gemma3", _local)
GENERATORS.register("extractive", _extractive)
GENERATORS.register("openai", _openai)


def create_generator(settings: AnswerSettings) -> Generator:
    """The backend ``settings.generator`` names, set up from ``settings``; cheap: models load on first use."""
    return GENERATORS.create(settings.generator, settings)


def grounding_mode(generator: Generator, override: str = "auto") -> str:
    """How the pipeline checks this generator's answers: ``override`` unless "auto", else the backend's own."""
    return generator.grounding_mode if override == "auto" else override
