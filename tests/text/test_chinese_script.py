"""Traditional and Simplified Chinese: which script a question is in, its Simplified reading, and what that changes
for an answer (the question is matched in both scripts; a refusal is written in the question's script)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rag.answer.turn import REFUSALS, refusal_text
from rag.pipeline import RagPipeline
from rag.text import t2s
from rag.text.langdetect import chinese_script, detect_language, to_simplified

TRADITIONAL_QUESTION = "檢索增強生成是哪一年提出的？"
SIMPLIFIED_QUESTION = "检索增强生成是哪一年提出的？"


@pytest.mark.parametrize(
    ("text", "script"),
    [
        (TRADITIONAL_QUESTION, "Hant"),
        (SIMPLIFIED_QUESTION, "Hans"),
        ("FAISS 是哪家公司開源的？", "Hant"),
        ("中文文本的词与词之间有空格吗？", "Hans"),
        ("后来的里程", "Hans"),  # characters both scripts write decide nothing
        ("Hello", "Hans"),
    ],
)
def test_chinese_script(text: str, script: str) -> None:
    assert chinese_script(text) == script


def test_to_simplified_folds_traditional_only() -> None:
    assert to_simplified(TRADITIONAL_QUESTION) == SIMPLIFIED_QUESTION
    assert to_simplified(SIMPLIFIED_QUESTION) == SIMPLIFIED_QUESTION
    assert to_simplified("What is BM25?") == "What is BM25?"


def test_the_table_is_one_to_one_per_character() -> None:
    assert len(t2s.TRADITIONAL) == len(t2s.SIMPLIFIED) == len(set(t2s.TRADITIONAL))
    assert not set(t2s.TRADITIONAL) & set(t2s.SIMPLIFIED)  # folding twice changes nothing
    assert set(t2s.SHARED) <= set(t2s.SIMPLIFIED)


def test_refusal_follows_the_script() -> None:
    assert detect_language(TRADITIONAL_QUESTION) == "zh"
    assert refusal_text("zh", TRADITIONAL_QUESTION) == REFUSALS["zh-Hant"] == "我不知道：文件中沒有這個問題的答案。"
    assert refusal_text("zh", SIMPLIFIED_QUESTION) == REFUSALS["zh"]
    assert refusal_text("en", "Why?") == REFUSALS["en"]


def test_a_traditional_question_over_simplified_documents(
    fake_pipeline: Callable[..., RagPipeline], corpus_dir: Path
) -> None:
    pipeline = fake_pipeline()
    pipeline.ingest([corpus_dir])
    answer = pipeline.ask(TRADITIONAL_QUESTION)
    assert not answer.refused, answer.text
    assert answer.language == "zh"
    assert Path(answer.citations[0].source).name == "jiansuo-zengqiang-shengcheng.md"
    assert answer.standalone_question == SIMPLIFIED_QUESTION  # what was matched
    refused = pipeline.ask("月球上有多少個國家的國旗？")
    assert refused.refused
    assert refused.text == REFUSALS["zh-Hant"]
