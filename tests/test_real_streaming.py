"""ask_stream with the real default models (Qwen2.5-Coder-1.5B-Instruct, the 0.5B under 6 GB of RAM, + auto
embedder) on the sample corpus, in English and Chinese. Marked slow."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import DoneEvent, PassagesEvent, RagConfig, RagPipeline, TokenEvent
from rag.answer.generators.chat import ChatGenerator
from rag.answer.generators.registry import resolve_qwen
from rag.types import Answer, StreamEvent

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).resolve().parents[1] / "corpora"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> RagPipeline:
    p = RagPipeline(RagConfig(index=tmp_path_factory.mktemp("stream") / "index", quiet=True))
    p.ingest([CORPUS])
    return p


def split(events: list[StreamEvent]) -> tuple[PassagesEvent, str, Answer]:
    assert isinstance(events[0], PassagesEvent) and isinstance(events[-1], DoneEvent)
    tokens = [e.text for e in events[1:-1] if isinstance(e, TokenEvent)]
    assert len(tokens) == len(events) - 2 and tokens
    return events[0], "".join(tokens), events[-1].answer


def test_english_answer_streams_from_the_model(pipeline: RagPipeline) -> None:
    passages, streamed, answer = split(list(pipeline.ask_stream("When was the Transformer architecture introduced?")))
    assert isinstance(pipeline.generator(), ChatGenerator)
    assert passages.passages and Path(passages.passages[0].source).name == "transformer-architecture.md"
    assert streamed.strip()  # the model's own words arrived as they were written
    assert answer.generator == resolve_qwen(RagConfig().generator)  # the default: the 1.5B, or the 0.5B under 6 GB
    assert not answer.refused and answer.grounding == "generated"
    assert "2017" in answer.text
    cited = answer.citations[0]
    assert Path(cited.source).name == "transformer-architecture.md" and f"[{cited.number}]" in answer.text
    assert cited == passages.passages[cited.number - 1]
    assert answer.supported and answer.supported[0].passages


def test_chinese_answer_is_written_by_the_model_in_chinese(pipeline: RagPipeline) -> None:
    passages, streamed, answer = split(list(pipeline.ask_stream("检索增强生成是哪一年提出的？")))
    assert answer.language == "zh" and answer.grounding == "generated" and not answer.refused
    assert "2020" in answer.text and "2020" in streamed  # the model's own words, streamed as written
    assert Path(answer.citations[0].source).name == "jiansuo-zengqiang-shengcheng.md"
    assert passages.passages


def test_follow_up_question_with_the_real_models(pipeline: RagPipeline) -> None:
    history = [("What is the Transformer architecture?", "The Transformer is a neural network design. [1]")]
    answer = pipeline.ask("When was it introduced?", history=history)
    assert answer.standalone_question.startswith("When was it introduced? (")
    assert "2017" in answer.text
    assert Path(answer.citations[0].source).name == "transformer-architecture.md"
