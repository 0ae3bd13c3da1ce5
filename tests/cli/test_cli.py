"""The command line, run in-process (rag.cli.main) on the fakes named by class path (RAG_EMBEDDER, RAG_GENERATOR)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rag.cli.main import main
from rag.config import RagConfig


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """RAG_* pointing at the fakes and an index under tmp_path; cwd is an empty folder (no rag.toml)."""
    for f in dataclasses.fields(RagConfig):
        monkeypatch.delenv(f"RAG_{f.name.upper()}", raising=False)
    path = tmp_path / "idx"
    monkeypatch.setenv("RAG_EMBEDDER", "rag.testing:HashEmbedder")
    monkeypatch.setenv("RAG_GENERATOR", "rag.testing:EchoGenerator")
    monkeypatch.setenv("RAG_INDEX", str(path))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    assert main([*argv, "--json", "-q"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


@pytest.fixture
def built(index: Path, corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    report = run_json(capsys, "ingest", str(corpus_dir))
    assert isinstance(report, dict) and report["files_added"] == 12
    return index


def test_ingest_json(index: Path, corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, "ingest", str(corpus_dir))
    assert isinstance(report, dict)
    assert report["files_added"] == 12
    assert report["files_seen"] == 12
    assert report["skipped"] == []
    assert report["chunks_added"] > 12
    assert report["model"] == "rag.testing:HashEmbedder"
    assert report["index"] == str(index)
    assert (index / "manifest.json").is_file()
    again = run_json(capsys, "ingest", str(corpus_dir))
    assert isinstance(again, dict)
    assert again["files_added"] == 0 and again["files_unchanged"] == 12


def test_ingest_text_output_lists_skipped_files(
    index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.txt").write_text("Otters hold hands while they sleep.", encoding="utf-8")
    (docs / "empty.txt").write_bytes(b"")
    assert main(["ingest", str(docs), "-q"]) == 0
    out = capsys.readouterr().out
    assert "1 added" in out
    assert "skipped" in out and "empty.txt" in out and "empty file" in out


def test_ingest_options_reach_the_config(index: Path, corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "ingest", str(corpus_dir), "--chunk-size", "64", "--chunk-overlap", "8")
    info = run_json(capsys, "info")
    assert isinstance(info, dict)
    assert (info["chunk_size"], info["chunk_overlap"]) == (64, 8)


def test_index_option_beats_env(index: Path, corpus_dir: Path, tmp_path: Path, capsys) -> None:
    other = tmp_path / "other-idx"
    report = run_json(capsys, "ingest", str(corpus_dir / "zhongwen-fenci.md"), "--index", str(other))
    assert isinstance(report, dict) and report["index"] == str(other)
    assert (other / "manifest.json").is_file()
    assert not index.exists()


def test_info_json(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = run_json(capsys, "info")
    assert isinstance(info, dict)
    assert info["path"] == str(built)
    assert info["embedder"] == "rag.testing:HashEmbedder"
    assert info["dimension"] == 256
    assert info["documents"] == 12
    assert info["chunks"] == info["vectors"] > 12
    assert info["generation"] == 1
    assert info["format_version"] == 3


def test_info_text(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "rag.testing:HashEmbedder" in out and "documents: 12" in out


def test_search_json(built: Path, corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hits = run_json(capsys, "search", "How many attention heads does the base Transformer use?", "-k", "3")
    assert isinstance(hits, list) and len(hits) == 3
    assert [h["rank"] for h in hits] == [1, 2, 3]
    top = hits[0]["chunk"]
    assert Path(top["source"]).name == "transformer-architecture.md"
    text = (corpus_dir / "transformer-architecture.md").read_text(encoding="utf-8")
    assert text[top["start"] : top["end"]] == top["text"]


def test_search_text(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "jieba 中文分词", "-q"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. [")
    assert "zhongwen-fenci.md" in out


def test_ask_json(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answer = run_json(capsys, "ask", "How many attention heads does the base Transformer use?")
    assert isinstance(answer, dict)
    assert answer["refused"] is False
    assert answer["generator"] == "echo"
    assert answer["citations"]
    first = answer["citations"][0]
    assert Path(first["source"]).name == "transformer-architecture.md"
    assert f"[{first['number']}]" in answer["text"]
    assert {"number", "source", "start", "end", "location", "score", "text"} <= set(first)


def test_ask_text_and_refusal(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "FAISS 是什么？", "-q"]) == 0
    out = capsys.readouterr().out
    assert "[1] " in out and "xiangliang-jiansuo.md" in out
    answer = run_json(capsys, "ask", "量子计算机要冷却到多少度？", "--min-score", "0.99")  # no passage covers it
    assert isinstance(answer, dict)
    assert answer["refused"] is True and answer["citations"] == []
    assert "不知道" in answer["text"]


def test_remove(built: Path, corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["remove", str(corpus_dir / "bm25-lexical-search.txt"), "-q"]) == 0
    assert capsys.readouterr().out.strip() == "removed 1 document(s)"
    info = run_json(capsys, "info")
    assert isinstance(info, dict) and info["documents"] == 11
    assert main(["remove", str(corpus_dir / "bm25-lexical-search.txt"), "-q"]) == 0
    assert capsys.readouterr().out.strip() == "removed 0 document(s)"


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("ingest", "ask", "search", "info", "remove"):
        assert command in out
    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "--help"])
    assert exit_info.value.code == 0
    assert "--min-score" in capsys.readouterr().out


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["ask", "What is BM25?"], ["search", "BM25"], ["info"]])
def test_missing_index_exits_2_with_one_line(
    index: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    capsys.readouterr()
    assert main(command) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("rag: error: no index at")
    assert str(index) in lines[0]
    assert "Traceback" not in captured.err


def test_bad_setting_exits_2(index: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("RAG_TOP_K", "lots")
    assert main(["info"]) == 2
    err = capsys.readouterr().err
    assert "top_k" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_ask_and_search_apply_filters(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answer = run_json(capsys, "ask", "What is FAISS?", "--filter", "path=*bm25-lexical-search.txt")
    assert isinstance(answer, dict)
    sources = {Path(p["chunk"]["source"]).name for p in answer["passages"]}
    assert sources <= {"bm25-lexical-search.txt"}
    assert all(Path(c["source"]).name == "bm25-lexical-search.txt" for c in answer["citations"])
    hits = run_json(capsys, "search", "FAISS 向量", "--filter", "lang=zh", "--filter", "type=markdown")
    assert isinstance(hits, list) and hits
    assert all(h["chunk"]["metadata"]["language"] == "zh" for h in hits)


def test_ingest_metadata_and_bad_filter(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "n.txt").write_text("Team notes about HNSW graphs and FAISS.", encoding="utf-8")
    run_json(capsys, "ingest", str(notes), "--metadata", "team=search")
    hits = run_json(capsys, "search", "HNSW FAISS", "--filter", "meta.team=search")
    assert isinstance(hits, list) and [Path(h["chunk"]["source"]).name for h in hits] == ["n.txt"]
    assert main(["search", "x", "--filter", "colour=red", "-q"]) == 2
    assert "unknown filter key 'colour'" in capsys.readouterr().err


def test_ask_records_the_question_when_record_questions_is_on(
    built: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.index.questions import QuestionLog

    assert run_json(capsys, "ask", "How many attention heads does the base Transformer use?")["question_id"] == ""
    assert not QuestionLog(built).path.exists()  # off by default
    monkeypatch.setenv("RAG_RECORD_QUESTIONS", "true")
    answer = run_json(capsys, "ask", "How many attention heads does the base Transformer use?")
    (recorded,) = QuestionLog(built).all()
    assert answer["question_id"] == recorded.id and recorded.helpful is None
    assert recorded.question == answer["question"] and len(recorded.cited) == len(answer["citations"]) > 0
