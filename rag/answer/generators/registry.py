"""The generator factory: ``AnswerSettings.generator`` names a backend.

Registered: ``smollm2`` (default) and ``gemma3`` (local transformers models), ``extractive`` (passage sentences,
no model) and ``openai`` (any OpenAI-compatible server). Anything else is a ``module:Class`` path (a class built with
``from_settings(settings)`` when it has one, else with no arguments) or a local folder of a causal LM. Backends
register here, with ``GENERATORS.register(name, factory)``; tests pass their fakes to ``RagPipeline`` as objects.
"""

from __future__ import annotations

from rag.answer.generators.base import Generator
from rag.config import AnswerSettings
from rag.registry import Registry


def _local(spec: str, settings: AnswerSettings) -> Generator:
    from rag.answer.generators.local import LocalGenerator

    return LocalGenerator(spec, temperature=settings.temperature, context_tokens=settings.context_tokens)


def _extractive(spec: str, settings: AnswerSettings) -> Generator:
    from rag.answer.generators.extractive import ExtractiveGenerator

    return ExtractiveGenerator()


def _openai(spec: str, settings: AnswerSettings) -> Generator:
    from rag.answer.generators.openai import OpenAIGenerator

    return OpenAIGenerator.from_settings(settings)


GENERATORS: Registry[Generator, AnswerSettings] = Registry("generator", fallback=_local)
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
