"""Decoding that cannot run away: loops are stopped while streaming and cut from the answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rag.answer.generators.chat import ChatGenerator
from rag.answer.generators.runtimes import ChatRuntime
from rag.answer.repetition import guarded, loop_at_end, without_loops
from rag.config import RagConfig
from rag.pipeline import RagPipeline
from rag.testing import HashEmbedder


def test_loops_are_found_at_the_end_only() -> None:
    assert loop_at_end("Run it [1][1][1]") == len("Run it [1]")
    assert without_loops("Run it [1] [1] [1] [1]") == "Run it [1]"
    said = "Restart the server. "
    assert loop_at_end("Do this. " + said * 4) == len("Do this. " + said)
    assert loop_at_end("Defaults to `500`. Defaults to `9`.") is None
    assert loop_at_end("ha ha ha") is None  # short units that are not citations are words, not loops
    assert loop_at_end("| --- | --- | --- |") is None  # table rules are not loops
    assert loop_at_end("") is None


def test_without_loops_keeps_one_copy_and_drops_repeated_lines() -> None:
    assert without_loops("[ [1][1][1][1][1]") == "[ [1]"
    text = "1. Install it [1]\n2. Run `fastapi run` [1]\n3. Install it [2]\n```\nx = 1\nx = 1\n```"
    assert without_loops(text) == "1. Install it [1]\n2. Run `fastapi run` [1]\n```\nx = 1\nx = 1\n```"


def test_guarded_stops_reading_a_looping_stream() -> None:
    consumed: list[str] = []

    def looping() -> Iterator[str]:
        yield "Upgrade with pip "
        while True:
            consumed.append("[1]")
            yield "[1]"

    text = "".join(guarded(looping()))
    assert len(consumed) < 10  # stopped, not read to a token limit
    assert without_loops(text) == "Upgrade with pip [1]"


class LoopingRuntime(ChatRuntime):
    """A model that writes one sentence and then repeats a citation until its token limit."""

    name = "looping"

    def __init__(self) -> None:
        self.tokens = 0

    def render(self, messages: list[dict[str, str]]) -> str:
        return "\n".join(m["content"] for m in messages)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, prompt: str, max_new_tokens: int) -> Iterator[str]:
        pieces = ["The Transformer ", "was introduced in 2017 ", "[1]"]
        for i in range(max_new_tokens):
            self.tokens += 1
            yield pieces[i] if i < len(pieces) else "[1]"


def test_a_looping_model_is_stopped_and_its_answer_reads_clean(tmp_path: Path, corpus_dir: Path) -> None:
    runtime = LoopingRuntime()
    generator = ChatGenerator("looping", lambda: runtime, compress_passages=False)
    config = RagConfig(index=tmp_path / "index", quiet=True)
    pipeline = RagPipeline(config, embedder=HashEmbedder(), generator=generator)
    pipeline.ingest([corpus_dir])
    answer = pipeline.ask("Why did the Transformer replace recurrent networks?")
    assert runtime.tokens < 12  # far from the 200-token limit of an explanation
    assert answer.text.count("[1]") == 1 and "[1][1]" not in answer.text
    assert answer.text.startswith("The Transformer was introduced in 2017")
    events = list(pipeline.ask_stream("Why did the Transformer replace recurrent networks?"))
    assert events[-1].answer.text == answer.text
    pipeline.close()
