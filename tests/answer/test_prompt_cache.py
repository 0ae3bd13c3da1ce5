"""OnnxRuntime's prompt cache: slots of keys and values, each continuing the prompts that share its leading tokens,
so that questions alternating between languages keep each language's rules cached; ``prime`` (a server's
warm-up) reads the rules ahead; the thread pool is always set. A fake onnxruntime-genai stands in for the model in
the unit tests (it records what each generator was fed); the last test runs the real default model and checks that
a cached prefix gives the same answer as a fresh prompt."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rag.answer.generators.runtimes import OnnxRuntime, usable_cpus


class FakeTokenizer:
    eos_token_ids: ClassVar[list[int]] = [0]

    def __init__(self, model: Any) -> None:
        pass

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]  # one token per character

    def apply_chat_template(self, messages: str, add_generation_prompt: bool) -> str:
        return "".join(f"<{m['role']}>{m['content']}" for m in json.loads(messages)) + "<assistant>"

    def create_stream(self) -> Any:
        return types.SimpleNamespace(decode=chr)


class FakeGenerator:
    made: ClassVar[list[FakeGenerator]] = []

    def __init__(self, model: Any, params: Any) -> None:
        self.max_length = params.max_length
        self.tokens: list[int] = []
        self.read = 0
        self.fed: list[list[int]] = []
        self.answer = [ord(c) for c in "ok"] + [0]
        FakeGenerator.made.append(self)

    def append_tokens(self, ids: list[int]) -> None:
        self.fed.append(list(ids))
        self.tokens += ids
        self.read = len(self.tokens)
        self.step = 0

    def rewind_to(self, n: int) -> None:
        # like onnxruntime-genai: only to what the model has read (its last generated token it has not)
        assert n <= self.read, "Cannot rewind to a length greater than the current sequence length"
        self.tokens = self.tokens[:n]
        self.read = n

    def generate_next_token(self) -> None:
        self.read = len(self.tokens)
        self.tokens.append(self.answer[self.step])
        self.step += 1

    def get_next_tokens(self) -> list[int]:
        return [self.tokens[-1]]

    def is_done(self) -> bool:
        return False


class FakeParams:
    def __init__(self, model: Any) -> None:
        self.max_length = 0

    def set_search_options(self, max_length: int, do_sample: bool) -> None:
        self.max_length = max_length


class FakeConfig:
    overlays: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, folder: str) -> None:
        pass

    def overlay(self, text: str) -> None:
        FakeConfig.overlays.append(json.loads(text))


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> OnnxRuntime:
    fake = types.ModuleType("onnxruntime_genai")
    fake.Config, fake.Model, fake.Tokenizer = FakeConfig, lambda config: object(), FakeTokenizer  # type: ignore[attr-defined]
    fake.GeneratorParams, fake.Generator = FakeParams, FakeGenerator  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "onnxruntime_genai", fake)
    FakeGenerator.made.clear()
    FakeConfig.overlays.clear()
    return OnnxRuntime(Path("model"), slots=3)


def _prompt(rules: str, question: str) -> str:
    return f"<system>{rules}<user>Passages: [1] {question}<assistant>"


EN = "Answer from the passages, in English."
ZH = "Answer from the passages, in Chinese."


def test_the_thread_pool_is_set_to_the_usable_cores_unless_given(
    runtime: OnnxRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert FakeConfig.overlays[-1]["model"]["decoder"]["session_options"]["intra_op_num_threads"] == usable_cpus()
    OnnxRuntime(Path("model"), threads=1)
    assert FakeConfig.overlays[-1]["model"]["decoder"]["session_options"]["intra_op_num_threads"] == 1


def test_a_prompt_sharing_the_last_ones_start_prefills_only_the_rest(runtime: OnnxRuntime) -> None:
    first, second = _prompt(EN, "When was it built?"), _prompt(EN, "And who wrote it?")
    assert runtime.generate(first, 8) == "ok"
    assert runtime.last_prefill_tokens == len(first)
    assert runtime.generate(second, 8) == "ok"
    shared = len(f"<system>{EN}<user>Passages: [1] ")
    assert runtime.last_prefill_tokens == len(second) - shared
    (generator,) = FakeGenerator.made  # the same cache, rewound to the shared part, then fed the rest
    assert generator.fed[-1] == [ord(c) for c in second[shared:]]
    assert generator.tokens[: len(second)] == [ord(c) for c in second]


def test_a_prompt_that_continues_the_answer_rewinds_only_to_what_the_model_read(runtime: OnnxRuntime) -> None:
    first = _prompt(EN, "When was it built?")
    assert runtime.generate(first, 8) == "ok"
    follow = first + "ok\x00<user>Is that in the passages?<assistant>"  # the answer and its end token, then more
    assert runtime.generate(follow, 8) == "ok"
    (generator,) = FakeGenerator.made
    assert runtime.last_prefill_tokens == len(follow) - (len(first) + 2)  # "ok" read; the end token fed again
    assert generator.tokens[: len(follow)] == [ord(c) for c in follow]


def test_alternating_languages_keep_each_languages_rules_cached(runtime: OnnxRuntime) -> None:
    for rules in (EN, ZH):
        runtime.prime(_prompt(rules, ""))
    assert len(FakeGenerator.made) == 2  # one slot each, even though both start alike
    prefix = len("<system>Answer from the passages, in English.<user>Passages: [1] ")
    for question, rules in [("When?", EN), ("何时？", ZH), ("By whom?", EN), ("谁？", ZH), ("Why?", EN)]:
        prompt = _prompt(rules, question)
        runtime.generate(prompt, 8)
        assert runtime.last_prefill_tokens == len(prompt) - prefix, (question, runtime.last_prefill_tokens)
    assert len(FakeGenerator.made) == 2


def test_a_slot_in_use_is_not_overwritten_by_prompts_of_other_rules_while_there_is_room(runtime: OnnxRuntime) -> None:
    runtime.generate(_prompt(EN, "When?"), 8)
    runtime.generate(_prompt(EN, "By whom?"), 8)  # the English rules are now this slot's stem
    runtime.generate(_prompt(ZH, "谁？"), 8)
    assert len(FakeGenerator.made) == 2
    english = _prompt(EN, "Why?")
    runtime.generate(english, 8)
    assert runtime.last_prefill_tokens == len(english) - len(f"<system>{EN}<user>Passages: [1] ")


def test_a_prompt_of_other_rules_gets_a_slot_of_its_own_and_leaves_the_primed_ones(runtime: OnnxRuntime) -> None:
    for rules in (EN, ZH):
        runtime.prime(_prompt(rules, ""))
    other = "<system>Shorten it.<user>Question: When?<assistant>"  # shares only "<system>" with the primed ones
    runtime.generate(other, 8)
    assert runtime.last_prefill_tokens == len(other) and len(FakeGenerator.made) == 3
    english = _prompt(EN, "Why?")
    runtime.generate(english, 8)
    assert runtime.last_prefill_tokens == len(english) - len(f"<system>{EN}<user>Passages: [1] ")


def test_the_slots_are_bounded_and_the_least_recently_used_goes(runtime: OnnxRuntime) -> None:
    rules = [f"Rules number {n}." for n in range(4)]
    for r in rules:
        runtime.prime(_prompt(r, ""))
    assert len(runtime._slots) == 3  # the fixture's bound
    prompt = _prompt(rules[0], "Again?")  # its slot was the least recently used, and went
    runtime.generate(prompt, 8)
    assert runtime.last_prefill_tokens == len(prompt) - len("<system>Rules number ")
    assert len(runtime._slots) == 3


def test_a_prompt_too_long_for_every_slot_gets_a_new_one(runtime: OnnxRuntime) -> None:
    runtime.generate(_prompt(EN, "When?"), 8)
    long = _prompt(EN, "x" * 3000)
    runtime.generate(long, 8)
    assert FakeGenerator.made[-1].max_length >= len(long) + 8
    assert runtime.last_prefill_tokens == len(long)


@pytest.mark.slow
def test_the_real_model_answers_the_same_from_a_cached_prefix() -> None:
    pytest.importorskip("onnxruntime_genai")
    from rag.answer.generators.base import GenerationRequest
    from rag.answer.generators.chat import ChatGenerator
    from rag.answer.generators.registry import qwen_runtime
    from rag.answer.shorten import shorten_messages
    from rag.answer.turn import warm_up

    passage = ["The Transformer architecture was introduced in 2017 by researchers at Google."]
    questions = [("When was the Transformer introduced?", "en"), ("Transformer 架构是哪一年提出的？", "zh")]
    fresh = ChatGenerator("qwen2.5-0.5b", lambda: qwen_runtime("onnxruntime", "qwen2.5-0.5b"), factoid_passages=1)
    expected = []
    for question, language in questions:
        expected.append(fresh.generate(GenerationRequest(question, passage, language)))
        fresh.runtime._slots.clear()  # type: ignore[attr-defined]  # no cache: every prompt read whole
    warmed = ChatGenerator("qwen2.5-0.5b", lambda: qwen_runtime("onnxruntime", "qwen2.5-0.5b"), factoid_passages=1)
    warm_up(warmed)  # as `rag serve` does
    runtime = warmed.runtime
    assert len(runtime._slots) == 5  # type: ignore[attr-defined]  # en and zh, short and steps; shortening
    for (question, language), answer in zip(questions, expected, strict=True):
        request = warmed.prepare(GenerationRequest(question, passage, language))
        prompt = warmed._prompt(request)
        assert warmed.generate(request) == answer
        assert 0 < runtime.last_prefill_tokens < runtime.count_tokens(prompt) - 40  # type: ignore[attr-defined]
    assert "2017" in expected[0] and "2017" in expected[1]
    shortening = shorten_messages(questions[0][0], "it was introduced in 2017 by Google researchers")
    warmed.chat(shortening, 8)
    prompt_tokens = runtime.count_tokens(runtime.render(shortening))  # type: ignore[attr-defined]
    assert 0 < runtime.last_prefill_tokens < prompt_tokens - 20  # type: ignore[attr-defined]  # its rules were read
