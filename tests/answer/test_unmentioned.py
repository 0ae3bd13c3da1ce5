"""A how-to or why question naming a specific thing no document mentions is refused, naming it (``rag.text.specific``,
``LexicalIndex.mentions``, ``rag.answer.turn.plan``); common words, typos, near forms, factoids and a switched-off
setting are not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rag.index.lexical import LexicalIndex
from rag.pipeline import RagPipeline
from rag.text.specific import specific_words

DOCS = {
    "build.md": "# Building the stubs\n\nRun `make stubs` to build the generated stubs, then `make install`.\n"
    "The Makefile calls camlidl on each interface file and compiles the stubs with the C compiler.\n",
    "serve.md": "# Serving\n\nStart the server with `uvicorn main:app --reload`. Behind a proxy, pass "
    "`--forwarded-allow-ips` with the proxy's address so that redirects keep the right scheme.\n",
}


def test_specific_words_are_rare_latin_script_names() -> None:
    assert specific_words("How do I build the project with dune?") == ["dune"]
    assert specific_words("How do I serve a gRPC service?") == ["gRPC"]
    assert specific_words("FastAPI 怎么开启 HTTP/3（QUIC）支持？") == ["FastAPI", "QUIC"]
    # common words, function words, short words and Chinese words are never specific
    assert specific_words("How do I upgrade and install the server on a new machine?") == []
    assert specific_words("怎么关掉这个转换？") == []


@pytest.fixture
def lexical(tmp_path: Path) -> LexicalIndex:
    writer = LexicalIndex.open(tmp_path / "lex", writable=True)
    writer.add((n, n, "en", text) for n, text in enumerate(DOCS.values()))
    writer.commit()
    return LexicalIndex.open(tmp_path / "lex")


@pytest.mark.parametrize("word", ["camlidl", "Makefile", "uvicorn", "--forwarded-allow-ips", "forwarded", "compilers"])
def test_words_the_documents_hold_or_nearly_hold_are_mentioned(lexical: LexicalIndex, word: str) -> None:
    assert lexical.mentions(word)


@pytest.mark.parametrize("word", ["dune", "gRPC", "debcargo", "QUIC"])
def test_words_no_document_holds_are_not_mentioned(lexical: LexicalIndex, word: str) -> None:
    assert not lexical.mentions(word)


def test_a_typo_of_a_document_word_counts_as_mentioned(lexical: LexicalIndex) -> None:
    assert lexical.mentions("uvicron")  # one transposition from "uvicorn"
    assert lexical.mentions("camlidls")


@pytest.fixture
def pipeline(tmp_path: Path, fake_pipeline: Callable[..., RagPipeline]) -> RagPipeline:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    made = fake_pipeline(min_score=0.0)
    made.ingest([folder])
    return made


def test_a_how_to_question_naming_an_unmentioned_tool_is_refused_naming_it(pipeline: RagPipeline) -> None:
    answer = pipeline.ask("How do I build the generated stubs with dune?")
    assert answer.refused and answer.grounding == "refused"
    assert answer.text == "I don't know: the documents do not mention \u201cdune\u201d."
    assert answer.passages and answer.passages[0].chunk.source.endswith("build.md")  # what was found is still shown


def test_the_same_question_about_what_the_documents_hold_is_answered(pipeline: RagPipeline) -> None:
    answer = pipeline.ask("How do I build the generated stubs with make?")
    assert not answer.refused and answer.citations


def test_a_chinese_question_is_refused_in_chinese(pipeline: RagPipeline) -> None:
    answer = pipeline.ask("怎么用 dune 构建生成的 stubs？")
    assert answer.refused and answer.text == "我不知道：文档中没有提到 \u201cdune\u201d。"


def test_the_rule_can_be_switched_off(tmp_path: Path, fake_pipeline: Callable[..., RagPipeline]) -> None:
    folder = tmp_path / "docs2"
    folder.mkdir()
    (folder / "build.md").write_text(DOCS["build.md"], encoding="utf-8")
    made = fake_pipeline(index=tmp_path / "idx2", min_score=0.0, refuse_unmentioned=False)
    made.ingest([folder])
    assert not made.ask("How do I build the generated stubs with dune?").refused
