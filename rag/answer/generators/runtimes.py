"""Where a chat model runs: ONNX Runtime GenAI (int4 weights, the fastest on a CPU) or transformers (torch, bf16
on CPUs with native bf16, fp16 on CUDA, else fp32). Both render the model's own chat template, count tokens with
its tokenizer, and stream text as it is decoded; a runtime is loaded once and shared by the threads that ask.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path

from rag.errors import ModelLoadError

log = logging.getLogger(__name__)


class ChatRuntime(ABC):
    """A loaded chat model: template, tokenizer and greedy decoding."""

    name: str = ""
    context_tokens: int = 4096  # the window rag uses (the model's may be larger; longer prompts are slower)

    @abstractmethod
    def render(self, messages: list[dict[str, str]]) -> str:
        """The messages in the model's chat template, ready for the assistant's turn."""

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    @abstractmethod
    def stream(self, prompt: str, max_new_tokens: int) -> Iterator[str]:
        """The continuation of ``prompt``, piece by piece, greedy, until end of turn or ``max_new_tokens``."""

    def generate(self, prompt: str, max_new_tokens: int) -> str:
        return "".join(self.stream(prompt, max_new_tokens))


class OnnxRuntime(ChatRuntime):
    """onnxruntime-genai over an exported folder (``rag.models.convert.onnx_int4``)."""

    name = "onnxruntime"

    def __init__(self, folder: Path, threads: int = 0) -> None:
        try:
            import onnxruntime_genai as og
        except ImportError as exc:
            raise ModelLoadError(
                "the onnxruntime runtime needs onnxruntime-genai: pip install onnxruntime-genai"
            ) from exc
        t0 = time.perf_counter()
        config = og.Config(str(folder))
        if threads > 0:  # this model's own thread pool (0: onnxruntime's default, all cores)
            config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
        self._og = og
        self._model = og.Model(config)
        self._tokenizer = og.Tokenizer(self._model)
        self._lock = threading.Lock()  # one generation at a time: a second one would only halve the speed
        log.info("loaded %s on onnxruntime-genai in %.1f s", folder.name, time.perf_counter() - t0)

    def render(self, messages: list[dict[str, str]]) -> str:
        as_json = json.dumps(messages, ensure_ascii=False)
        return str(self._tokenizer.apply_chat_template(as_json, add_generation_prompt=True))

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text))

    def stream(self, prompt: str, max_new_tokens: int) -> Iterator[str]:
        og = self._og
        ids = self._tokenizer.encode(prompt)
        with self._lock:
            params = og.GeneratorParams(self._model)
            params.set_search_options(max_length=len(ids) + max_new_tokens, do_sample=False)
            generator = og.Generator(self._model, params)
            generator.append_tokens(ids)
            decoder = self._tokenizer.create_stream()
            while not generator.is_done():
                generator.generate_next_token()
                piece = decoder.decode(int(generator.get_next_tokens()[0]))
                if piece:
                    yield piece


class TorchRuntime(ChatRuntime):
    """transformers on torch over a model folder."""

    name = "torch"

    def __init__(self, folder: Path, dtype: str = "float32", device: str = "cpu") -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        t0 = time.perf_counter()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self._model = AutoModelForCausalLM.from_pretrained(
                str(folder), dtype=getattr(torch, dtype), local_files_only=True
            ).to(device)
        except Exception as exc:
            raise ModelLoadError(f"could not load {folder} with transformers: {exc}") from exc
        self._model.eval()
        self.name = f"torch-{dtype}"
        log.info("loaded %s on torch (%s, %s) in %.1f s", folder.name, dtype, device, time.perf_counter() - t0)

    def render(self, messages: list[dict[str, str]]) -> str:
        return str(self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def stream(self, prompt: str, max_new_tokens: int) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        inputs = self._tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self._model.device)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self._model.generate(
                        **inputs,
                        max_new_tokens=max_new_tokens,
                        do_sample=False,
                        streamer=streamer,
                        pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
                    )
            except Exception as exc:  # noqa: BLE001 -- re-raised in the consuming thread below
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True, name="rag-generate")
        thread.start()
        yield from streamer
        thread.join()
        if failure:
            raise failure[0]


RuntimeFactory = Callable[[], ChatRuntime]


def lazily(factory: RuntimeFactory) -> Callable[[], ChatRuntime]:
    """``factory`` called once, on first use, by whichever thread gets there first."""
    lock = threading.Lock()
    loaded: list[ChatRuntime] = []

    def get() -> ChatRuntime:
        if not loaded:
            with lock:
                if not loaded:
                    loaded.append(factory())
        return loaded[0]

    return get
