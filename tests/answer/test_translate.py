"""A question in the index's smaller language is also searched translated into its main one, and both fused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.answer.generators.base import GenerationRequest, Generator
from rag.answer.translate import target_language, translated
from rag.config import RagConfig
from rag.pipeline import RagPipeline
from rag.retrieve.search import fuse
from rag.testing import HashEmbedder
from rag.types import Chunk, Hit


def test_target_language_is_the_main_one_when_the_question_is_in_the_minority() -> None:
    assert target_language("zh", {"en": 156, "zh": 124}) == "en"
    assert target_language("en", {"en": 156, "zh": 124}) is None
    assert target_language("en", {"zh": 30}) == "zh"
    assert target_language("zh", {"zh": 3}) is None
    assert target_language("zh", {}) is None


class Translator(Generator):
    """A chat model that knows one translation, and answers with the first passage."""

    def __init__(self, reply: str) -> None:
        self.reply, self.asked = reply, []

    @property
    def name(self) -> str:
        return "translator"

    def chat(self, messages: list[dict[str, str]], max_new_tokens: int) -> str | None:
        self.asked.append(messages)
        return self.reply

    def generate(self, request: GenerationRequest) -> str:
        return request.passages[0].splitlines()[-1] + " [1]"


def test_translated_keeps_one_line_and_refuses_a_runaway_reply() -> None:
    assert translated("升级？", "en", Translator("Translation: How do I upgrade?\nmore")) == "How do I upgrade?"
    assert translated("升级？", "en", Translator("x" * 500)) is None


def hit(cid: int, similarity: float) -> Hit:
    return Hit(Chunk(f"c{cid}", 0, 1, 1, 1, id=cid), score=0.0, similarity=similarity, rank=1)


def test_fuse_ranks_chunks_found_by_both_searches_first() -> None:
    fused = fuse([[hit(1, 0.9), hit(2, 0.8)], [hit(3, 0.7), hit(2, 0.85)]], k=3)
    assert [h.chunk.id for h in fused] == [2, 1, 3]
    assert fused[0].similarity == 0.85 and [h.rank for h in fused] == [1, 2, 3]


def test_a_chinese_question_over_english_files_finds_them_through_its_translation(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "upgrade.md").write_text("# Upgrading\n\nRun `pip install --upgrade fastapi` to upgrade.\n")
    (docs / "cors.md").write_text("# CORS\n\nUse CORSMiddleware to allow other origins.\n")
    (docs / "zh.md").write_text("# 介绍\n\n这是一个中文文档，讲的是别的事情。\n")
    generator = Translator("How do I upgrade with pip install --upgrade?")
    config: Any = RagConfig(index=tmp_path / "index", quiet=True, min_score=-1.0, min_coverage=0.0)
    pipeline = RagPipeline(config, embedder=HashEmbedder(), generator=generator)
    pipeline.ingest([docs])
    alone = pipeline.retrieve("怎么升级？", k=1)
    assert not alone or not alone[0].chunk.source.endswith("upgrade.md")  # the Chinese words find nothing English
    found = pipeline.retrieve("怎么升级？", k=2, across_languages=True)
    assert found[0].chunk.source.endswith("upgrade.md")
    answer = pipeline.ask("怎么升级？")
    assert generator.asked and "English" in generator.asked[-1][0]["content"]
    assert answer.citations and answer.citations[0].source.endswith("upgrade.md")
    off = RagPipeline(config.replace(translate_questions=False), embedder=HashEmbedder(), generator=generator)
    assert not off.retrieve("怎么升级？", k=1, across_languages=True)[0].chunk.source.endswith("upgrade.md")
    pipeline.close()
    off.close()
