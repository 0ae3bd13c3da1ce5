"""GeneratorSlot: the generator is built once from the settings, on first use, and rebuilt after a reset."""

from __future__ import annotations

import threading
from pathlib import Path

from rag.answer.generators.extractive import ExtractiveGenerator
from rag.answer.slot import GeneratorSlot
from rag.config import RagConfig
from rag.pipeline import RagPipeline


def test_the_generator_is_built_once_on_first_use_even_by_concurrent_callers(tmp_path: Path) -> None:
    slot = GeneratorSlot(lambda: RagConfig(index=tmp_path, generator="extractive", quiet=True))
    assert slot.loaded is None
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(slot.get())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert isinstance(got[0], ExtractiveGenerator)
    assert all(g is got[0] for g in got)
    assert slot.loaded is got[0]


def test_a_given_generator_is_served_and_a_reset_builds_the_configured_one(tmp_path: Path) -> None:
    given = ExtractiveGenerator()
    pipeline = RagPipeline(RagConfig(index=tmp_path, generator="extractive", quiet=True), generator=given)
    assert pipeline.generator() is given
    pipeline.reload_generator()
    rebuilt = pipeline.generator()
    assert rebuilt is not given and isinstance(rebuilt, ExtractiveGenerator)
