"""Where a chat model runs: ONNX Runtime GenAI (int4 weights, the fastest on a CPU), OpenVINO GenAI (an OpenVINO
IR folder, e.g. int4/int8 weights; measured in benchmarks/generators.py) or transformers (torch, bf16 on CPUs with
native bf16, fp16 on CUDA, else fp32). All render the model's own chat template, count tokens with
its tokenizer, and stream text as it is decoded; a runtime is loaded once and shared by the threads that ask.

On a CPU the prompt costs more than the answer, so ``OnnxRuntime`` keeps the keys and values of recent prompts in a
few cache slots and reads only the part of a new prompt that no slot holds: the rules of each language and answer
form, read ahead by ``prime`` when a server warms up, are read once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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

    def prime(self, prompt: str) -> None:
        """Read ``prompt`` into the prompt cache ahead of the questions that start with it (default: no cache)."""
        return None


class OnnxRuntime(ChatRuntime):
    """onnxruntime-genai over an exported folder (``rag.models.convert.onnx_int4``)."""

    name = "onnxruntime"

    def __init__(self, folder: Path, threads: int = 0, slots: int = 6) -> None:
        """``slots``: how many prompt caches are kept (one generator each, about 50 MB of keys and values for the
        0.5B): the rules of each language and answer form stay cached while questions alternate between them, and
        the other prompts (shortening an answer, rewriting a follow-up) have slots of their own."""
        try:
            import onnxruntime_genai as og
        except ImportError as exc:
            raise ModelLoadError(
                "the onnxruntime runtime needs onnxruntime-genai: pip install onnxruntime-genai"
            ) from exc
        t0 = time.perf_counter()
        config = og.Config(str(folder))
        # This model's own thread pool, always set: left to onnxruntime-genai, it ran one thread on a 2-core machine
        # (half the prefill speed of two: benchmarks/generators.py, runtime onnxruntime@1 against onnxruntime).
        threads = threads or usable_cpus()
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
        self._og = og
        self._model = og.Model(config)
        self._tokenizer = og.Tokenizer(self._model)
        self._lock = threading.Lock()  # one generation at a time: a second one would only halve the speed
        self._eos = {int(t) for t in self._tokenizer.eos_token_ids}
        self._slots: list[_CacheSlot] = []  # most recently used last
        self._max_slots = max(1, slots)
        self.last_prefill_tokens = 0
        log.info("loaded %s on onnxruntime-genai in %.1f s", folder.name, time.perf_counter() - t0)

    def render(self, messages: list[dict[str, str]]) -> str:
        as_json = json.dumps(messages, ensure_ascii=False)
        return str(self._tokenizer.apply_chat_template(as_json, add_generation_prompt=True))

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text))

    def stream(self, prompt: str, max_new_tokens: int) -> Iterator[str]:
        """Greedy decoding with prefix caching: each slot keeps the key/value cache of the last prompt it read,
        and a new prompt continues the slot that shares the most leading tokens with it (the system rules, most
        of the time), prefilling only the rest."""
        ids = [int(t) for t in self._tokenizer.encode(prompt)]
        with self._lock:
            slot = self._resume(ids, max_new_tokens)
            decoder = self._tokenizer.create_stream()
            for _ in range(max_new_tokens):
                slot.generator.generate_next_token()
                token = int(slot.generator.get_next_tokens()[0])
                slot.cached.append(token)
                slot.pending = 1  # the model has not read its last token yet: a later prompt may not rewind past it
                if token in self._eos or slot.generator.is_done():
                    break
                piece = decoder.decode(token)
                if piece:
                    yield piece

    def prime(self, prompt: str) -> None:
        """Read ``prompt`` into a cache slot now, generating nothing, so that a later prompt starting the same
        way (the rules of a language and answer form, ``ChatGenerator.warm_up``) only prefills what follows."""
        ids = [int(t) for t in self._tokenizer.encode(prompt)]
        with self._lock:
            self._resume(ids, 1, fresh=True)

    def _resume(self, ids: list[int], max_new_tokens: int, fresh: bool = False) -> _CacheSlot:
        """A slot whose cache holds ``ids``: the one sharing the most leading tokens with it among those where
        the shared part is worth keeping (``MIN_SHARED`` tokens or more) and covers what earlier prompts in the slot
        had in common (so the rules of another language do not overwrite a slot's own), rewound there and fed the
        rest; else (or when ``fresh``) a new slot while there is room; else the one sharing the most (the least
        recently used on a tie), overwritten."""
        fits = [slot for slot in self._slots if len(ids) + max_new_tokens <= slot.max_length]
        shared = {id(slot): slot.common_prefix(ids) for slot in fits}
        keeps = [] if fresh else [slot for slot in fits if shared[id(slot)] >= max(slot.stem, MIN_SHARED)]
        full = len(self._slots) >= self._max_slots
        candidates = keeps or (fits if full else [])
        best = max(candidates, key=lambda slot: shared[id(slot)], default=None)
        if best is None:
            if full:
                self._slots.pop(0)  # the least recently used: its generator (and cache memory) goes with it
            best = self._new_slot(len(ids) + max_new_tokens)
            common = 0
        else:
            common = shared[id(best)]
            self._slots.remove(best)
            best.generator.rewind_to(common)
            best.stem = common
        self._slots.append(best)
        best.generator.append_tokens(ids[common:])
        best.cached = list(ids)
        best.pending = 0
        self.last_prefill_tokens = len(ids) - common
        return best

    def _new_slot(self, needed: int) -> _CacheSlot:
        og = self._og
        max_length = max(SLOT_TOKENS, needed)
        params = og.GeneratorParams(self._model)
        params.set_search_options(max_length=max_length, do_sample=False)
        return _CacheSlot(og.Generator(self._model, params), max_length)


SLOT_TOKENS = 2048  # a slot's cache length: the prompt budget (1,536) and the longest answer (256) fit
MIN_SHARED = 16  # leading tokens a prompt must share with a slot to continue it (the chat template's start is 3)


class _CacheSlot:
    """One onnxruntime-genai generator, the tokens whose keys and values it holds, and ``stem``: how many leading
    tokens the last two prompts it read had in common (the part worth keeping; 0 for a new slot)."""

    def __init__(self, generator: Any, max_length: int) -> None:
        self.generator = generator
        self.max_length = max_length
        self.cached: list[int] = []
        self.stem = 0
        self.pending = 0  # trailing tokens of ``cached`` generated but not yet read by the model (0 or 1)

    def common_prefix(self, ids: list[int]) -> int:
        """How many leading tokens of ``ids`` the cache holds, leaving at least one of ``ids`` to feed."""
        limit = min(len(self.cached) - self.pending, len(ids) - 1)
        common = 0
        while common < limit and self.cached[common] == ids[common]:
            common += 1
        return common


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


class OpenVinoRuntime(ChatRuntime):
    """OpenVINO GenAI's ``LLMPipeline`` over an OpenVINO IR folder (``openvino_model.xml`` with its tokenizer and
    detokenizer IRs, as ``optimum-cli export openvino --task text-generation-with-past`` writes them), or over a
    ``.gguf`` file whose tensors its GGUF reader knows (Q8_0, Q4_0, F16; not Q4_K/Q6_K), built into a model on
    each load."""

    name = "openvino"

    def __init__(self, folder: Path, threads: int = 0, properties: dict[str, str] | None = None) -> None:
        """``properties``: OpenVINO CPU plugin settings, e.g. ``KV_CACHE_PRECISION`` or
        ``DYNAMIC_QUANTIZATION_GROUP_SIZE`` (compared in benchmarks/generators.py)."""
        try:
            import openvino_genai as ov_genai
        except ImportError as exc:
            raise ModelLoadError(
                "the openvino runtime needs openvino-genai: pip install 'openvino-genai==2026.4.*'"
            ) from exc
        is_gguf = folder.suffix == ".gguf" and folder.is_file()
        if not is_gguf and not (folder / "openvino_model.xml").is_file():
            raise ModelLoadError(f"{folder} holds no openvino_model.xml: export it with optimum-cli export openvino")
        t0 = time.perf_counter()
        settings: dict[str, Any] = {**(properties or {}), **({"INFERENCE_NUM_THREADS": threads} if threads else {})}
        try:
            self._pipe = ov_genai.LLMPipeline(str(folder), "CPU", **settings)
        except RuntimeError as exc:
            raise ModelLoadError(f"OpenVINO GenAI could not load {folder}: {exc}") from exc
        self._genai = ov_genai
        self._tokenizer = self._pipe.get_tokenizer()
        self._lock = threading.Lock()  # one generation at a time, as for onnxruntime
        log.info("loaded %s on OpenVINO GenAI in %.1f s", folder.name, time.perf_counter() - t0)

    def render(self, messages: list[dict[str, str]]) -> str:
        return str(self._tokenizer.apply_chat_template(messages, add_generation_prompt=True))

    def count_tokens(self, text: str) -> int:
        return int(self._tokenizer.encode(text, add_special_tokens=False).input_ids.get_shape()[1])

    def stream(self, prompt: str, max_new_tokens: int) -> Iterator[str]:
        """``LLMPipeline.generate`` in a thread, its streamer callback feeding a one-piece queue this iterator
        reads (so the model runs at most a token ahead); when the caller stops reading, the queue is drained and
        the next callback stops the generation."""
        import queue

        config = self._genai.GenerationConfig()
        config.max_new_tokens = max_new_tokens
        config.do_sample = False
        config.apply_chat_template = False  # the prompt is already rendered
        pieces: queue.Queue[str | None] = queue.Queue(maxsize=1)
        stop = threading.Event()
        failure: list[BaseException] = []
        running, stopped = self._genai.StreamingStatus.RUNNING, self._genai.StreamingStatus.STOP

        def on_piece(piece: str) -> Any:
            pieces.put(piece)
            return stopped if stop.is_set() else running

        def run() -> None:
            try:
                self._pipe.generate(prompt, config, on_piece)
            except Exception as exc:  # noqa: BLE001 -- re-raised in the consuming thread below
                failure.append(exc)
            finally:
                pieces.put(None)

        with self._lock:
            thread = threading.Thread(target=run, daemon=True, name="rag-generate")
            thread.start()
            finished = False
            try:
                while (piece := pieces.get()) is not None:
                    if piece:
                        yield piece
                finished = True
            finally:
                stop.set()
                while not finished and pieces.get() is not None:  # unblocks the callback, which now answers STOP
                    pass
                thread.join()
        if failure:
            raise failure[0]


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it, else all of them)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


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
