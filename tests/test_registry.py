"""Backend registries: names and aliases, ``module:Class`` paths, a fallback, and errors that list the choices."""

from __future__ import annotations

import pytest

from rag.answer.generators.base import GenerationRequest, Generator
from rag.answer.generators.extractive import ExtractiveGenerator
from rag.answer.generators.local import LocalGenerator
from rag.answer.generators.openai import OpenAIGenerator
from rag.answer.generators.registry import GENERATORS, create_generator, grounding_mode
from rag.config import AnswerSettings, ModelSettings
from rag.embed.e5 import E5Embedder
from rag.embed.registry import canonical_name, create_embedder
from rag.embed.st import SentenceTransformerEmbedder
from rag.errors import ConfigError, ModelLoadError
from rag.registry import Registry, is_class_path
from rag.testing import EchoGenerator, HashEmbedder


def test_names_aliases_class_paths_and_fallback() -> None:
    registry: Registry[str, int] = Registry("widget", fallback=lambda spec, n: f"folder:{spec}:{n}")
    registry.register("alpha", lambda spec, n: f"alpha:{n}", aliases=("a", "first"))
    assert registry.create("A", 3) == registry.create(" first ", 3) == "alpha:3"
    assert registry.canonical("FIRST") == "alpha" and "a" in registry and "b" not in registry
    assert registry.create("/models/x", 1) == "folder:/models/x:1"
    assert isinstance(registry.create("rag.testing:HashEmbedder", 0), HashEmbedder)


def test_unknown_names_and_bad_class_paths_are_clear_errors() -> None:
    registry: Registry[str, None] = Registry("widget")
    registry.register("alpha", lambda spec, s: "a")
    with pytest.raises(ConfigError, match="unknown widget 'beta'; choose one of alpha"):
        registry.create("beta", None)
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module'"):
        registry.create("no_such_module:Thing", None)
    with pytest.raises(ConfigError, match="has no class 'Nope'"):
        registry.create("rag.testing:Nope", None)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("rag.testing:HashEmbedder", True), ("pkg.mod:Cls", True), ("C:/models", False), ("org/model", False)],
)
def test_class_paths_are_told_from_folders_and_hub_ids(spec: str, expected: bool) -> None:
    assert is_class_path(spec) is expected


def test_embedder_registry_builds_backends_without_loading_weights() -> None:
    settings = ModelSettings(precision="float32", batch_size=7, embed_backend="torch")
    minilm = create_embedder("all-MiniLM-L6-v2", settings)
    assert isinstance(minilm, SentenceTransformerEmbedder) and minilm.model_id == "minilm"
    assert minilm.batch_size == 7 and minilm._model is None  # nothing loaded yet
    assert isinstance(create_embedder("intfloat/multilingual-e5-small"), E5Embedder)
    assert canonical_name(" E5 ") == "e5-multilingual"
    folder = create_embedder("/some/local/folder")
    assert isinstance(folder, SentenceTransformerEmbedder) and folder.model_id == "/some/local/folder"
    assert isinstance(create_embedder("rag.testing:HashEmbedder"), HashEmbedder)
    with pytest.raises(ModelLoadError, match="resolved from the corpus"):
        create_embedder("auto")


def test_generator_registry_and_its_settings() -> None:
    assert isinstance(create_generator(AnswerSettings(generator="extractive")), ExtractiveGenerator)
    local = create_generator(AnswerSettings(generator="smollm2", temperature=0.5))
    assert isinstance(local, LocalGenerator) and local.name == "smollm2" and local._model is None
    remote = create_generator(AnswerSettings(generator="openai", base_url="http://127.0.0.1:9/v1", llm_model="m"))
    assert isinstance(remote, OpenAIGenerator) and remote.name == "openai:m"
    assert isinstance(create_generator(AnswerSettings(generator="rag.testing:EchoGenerator")), EchoGenerator)
    assert {"smollm2", "gemma3", "extractive", "openai"} <= set(GENERATORS.names())
    with pytest.raises(ConfigError, match="base_url"):
        create_generator(AnswerSettings(generator="openai"))


class _Minimal(Generator):
    """Only what a backend must have: a name and generate."""

    def __init__(self) -> None:
        self.fitted = 0

    @property
    def name(self) -> str:
        return "minimal"

    def generate(self, request: GenerationRequest) -> str:
        return f"{len(request.passages)} passages [1]"

    def fit(self, request: GenerationRequest) -> GenerationRequest:
        self.fitted += 1
        return GenerationRequest(request.question, request.passages[:1], request.language, 8)


def test_base_class_defaults_for_optional_capabilities() -> None:
    gen = _Minimal()
    request = GenerationRequest("q?", ["one", "two"], "zh")
    assert gen.supports_language("zh") and gen.rewrite_question("q", []) is None and gen.load() is None
    assert list(gen.stream(request)) == ["2 passages [1]"]  # one piece: the whole answer
    prepared = gen.prepare(request)
    assert prepared.prepared and prepared.passages == ["one"] and prepared.max_new_tokens == 8
    assert gen.prepare(prepared) is prepared and gen.fitted == 1  # fitted once, however often prepared
    assert grounding_mode(gen) == "snap" and grounding_mode(gen, "check") == "check"
    assert grounding_mode(ExtractiveGenerator()) == "check"
