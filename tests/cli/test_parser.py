"""The parser assembled from the command modules: help for every command, the shared options declared once and
accepted by every command that reads an index, dispatch, exit codes, and a `rag --help` that imports no models."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rag.cli.main import build_parser, main
from rag.config import RagConfig

COMMANDS = ("ingest", "ask", "chat", "search", "eval", "info", "verify", "compact", "remove", "tune", "serve")
COMMANDS += ("mcp", "watch")
# The positionals each command needs before its options parse.
POSITIONALS: dict[str, list[str]] = {
    "ingest": ["docs"],
    "ask": ["a question"],
    "search": ["a query"],
    "eval": ["beir-folder"],
    "remove": ["docs/a.txt"],
    "watch": ["docs"],
}
CLI_SOURCES = Path(__file__).resolve().parents[2] / "rag" / "cli"


@pytest.fixture
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No RAG_* variables, cwd an empty folder (no rag.toml); returns a path where no index is."""
    for f in dataclasses.fields(RagConfig):
        monkeypatch.delenv(f"RAG_{f.name.upper()}", raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path / "elsewhere"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_the_commands_in_their_order() -> None:
    assert tuple(subcommands(build_parser())) == COMMANDS


def test_rag_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: rag ")
    assert "{" + ",".join(COMMANDS) + "}" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: rag {command} ")
    for option in ("--index", "--config", "--json", "--quiet", "--verbose"):
        assert option in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_the_config_options_and_dispatches(command: str) -> None:
    argv = [command, *POSITIONALS.get(command, []), "--index", "some/idx", "--config", "rag.toml", "--json", "-q"]
    args = build_parser().parse_args(argv)
    assert (args.index, args.config, args.json, args.quiet, args.verbose) == (
        Path("some/idx"),
        Path("rag.toml"),
        True,
        True,
        False,
    )
    assert args.command == command
    assert callable(args.func)


@pytest.mark.parametrize("command", ["ask", "chat", "search", "serve"])
def test_the_relevance_options_are_the_same_everywhere(command: str) -> None:
    args = build_parser().parse_args([command, *POSITIONALS.get(command, []), "-k", "7", "--min-score", "0.25"])
    assert (args.top_k, args.min_score) == (7, 0.25)


@pytest.mark.parametrize("command", ["ask", "chat", "serve"])
def test_the_generator_options_are_the_same_everywhere(command: str) -> None:
    argv = [command, *POSITIONALS.get(command, []), "--generator", "openai", "--base-url", "http://h/v1"]
    args = build_parser().parse_args([*argv, "--model", "m", "--timeout", "5", "--grounding", "check"])
    assert (args.generator, args.base_url, args.llm_model, args.request_timeout, args.grounding) == (
        "openai",
        "http://h/v1",
        "m",
        5.0,
        "check",
    )
    assert getattr(args, "stream", None) is (None if command == "serve" else False)


@pytest.mark.parametrize("command", ["ingest", "watch"])
def test_the_reading_options_are_the_same_for_ingest_and_watch(command: str) -> None:
    from rag.cli.options import open_pipeline

    argv = [command, "docs", "--ocr", "never", "--follow-symlinks", "--max-file-mb", "3"]
    args = build_parser().parse_args([*argv, "--index", "nowhere"])
    settings = open_pipeline(args).config.ingest
    assert (settings.ocr, settings.follow_symlinks, settings.max_file_mb) == ("never", True, 3.0)


def test_model_names_the_embedder_for_ingest_and_eval_and_the_llm_elsewhere() -> None:
    parser = build_parser()
    assert parser.parse_args(["ingest", "docs", "--model", "minilm"]).embedder == "minilm"
    assert parser.parse_args(["eval", "beir", "--model", "minilm"]).embedder == "minilm"
    assert parser.parse_args(["ask", "q", "--model", "gpt"]).llm_model == "gpt"


def _options_declared(source: str) -> list[tuple[str, str]]:
    """(option string, dest) of every option of every ``add_argument`` call in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            flags = [flag for flag in strings if flag.startswith("-")]
            dests = [
                k.value.value
                for k in node.keywords
                if k.arg == "dest" and isinstance(k.value, ast.Constant) and isinstance(k.value.value, str)
            ]
            if flags:
                dest = dests[0] if dests else max(flags, key=len).lstrip("-").replace("-", "_")
                found += [(flag, dest) for flag in flags]
    return found


def test_no_option_is_declared_twice() -> None:
    """Each option is spelled out in one place; ``--model`` is two options (the embedder for ingest and eval, the
    LLM for the generator group), each declared once."""
    declared = [o for path in sorted(CLI_SOURCES.glob("*.py")) for o in _options_declared(path.read_text())]
    assert ("--index", "index") in declared and ("-k", "top_k") in declared
    assert sorted(o for o in set(declared) if declared.count(o) > 1) == []
    assert {dest for flag, dest in declared if flag == "--model"} == {"embedder", "llm_model"}


# -- --index reaches every command that reads an index ---------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info"], "no index at {}: run `rag ingest"),
        (["verify"], "no index at {}: run `rag ingest"),
        (["search", "BM25"], "no index at {}: run `rag ingest"),
        (["ask", "What is BM25?"], "no index at {}: run `rag ingest"),
        (["chat"], "no index at {}: run `rag ingest"),
        (["compact"], "no index at {}: nothing to compact"),
        (["remove", "docs/a.txt"], "no index at {}: nothing to remove"),
    ],
)
def test_index_option_reaches_every_command_that_reads_an_index(
    no_settings: Path,
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("What is BM25?\n"))  # for chat
    assert main([*argv, "--index", str(no_settings), "-q"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"rag: error: {message.format(no_settings)}")
    assert len(captured.err.strip().splitlines()) == 1


def test_index_option_reaches_ingest(no_settings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(tmp_path / "missing.txt"), "--index", str(no_settings), "-q", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["index"] == str(no_settings)
    assert [s["reason"] for s in report["skipped"]] == ["no such file or folder"]


# Both names of the function that runs the server: whichever the CLI calls, no test starts a real one.
SERVE_TARGETS = ("rag.serve.serve", "rag.serve.app.serve")


def test_index_option_reaches_serve(no_settings: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_serve(pipeline: Any, **kwargs: Any) -> None:
        seen.update(kwargs, index=pipeline.index_path, top_k=pipeline.config.top_k)

    for target in SERVE_TARGETS:
        monkeypatch.setattr(target, fake_serve)
    argv = ["serve", "--index", str(no_settings), "--port", "9124", "-k", "3", "--max-body-kb", "2", "-q"]
    assert main(argv) == 0
    assert (seen["index"], seen["host"], seen["port"], seen["top_k"]) == (no_settings, "127.0.0.1", 9124, 3)
    assert (seen["settings"].max_body_bytes, seen["log_level"]) == (2048, "warning")


def test_serve_refuses_a_public_address_without_a_key(
    no_settings: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the server must not start")

    for target in SERVE_TARGETS:
        monkeypatch.setattr(target, never)
    assert main(["serve", "--host", "0.0.0.0", "--index", str(no_settings)]) == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in capsys.readouterr().err


# -- exit codes ----------------------------------------------------------------------------------------------


def test_verify_exits_1_on_damage_and_0_with_only_notes(
    no_settings: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.index.verify import VerifyReport
    from rag.pipeline import RagPipeline

    damaged = VerifyReport(["chunk 3 has no vector", "orphan vector 9"], ["files left by an interrupted write: x"])
    monkeypatch.setattr(RagPipeline, "verify_report", lambda self: damaged)
    assert main(["verify", "--index", str(no_settings), "-q"]) == 1
    assert capsys.readouterr().out == (
        "problem: chunk 3 has no vector\nproblem: orphan vector 9\nnote: files left by an interrupted write: x\n"
    )
    assert main(["verify", "--index", str(no_settings), "-q", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {
        "ok": False,
        "problems": ["chunk 3 has no vector", "orphan vector 9"],
        "notes": ["files left by an interrupted write: x"],
    }
    leftovers = VerifyReport([], ["files left by an interrupted write (removed by the next ingest): vectors.3.faiss"])
    monkeypatch.setattr(RagPipeline, "verify_report", lambda self: leftovers)
    assert main(["verify", "--index", str(no_settings), "-q"]) == 0
    assert capsys.readouterr().out == f"index is consistent\nnote: {leftovers.notes[0]}\n"
    monkeypatch.setattr(RagPipeline, "verify_report", lambda self: VerifyReport())
    assert main(["verify", "--index", str(no_settings), "-q"]) == 0
    assert capsys.readouterr().out == "index is consistent\n"


def test_keyboard_interrupt_exits_130(
    no_settings: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.pipeline import RagPipeline

    def interrupted(self: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(RagPipeline, "info", interrupted)
    assert main(["info", "--index", str(no_settings), "-q"]) == 130
    assert capsys.readouterr().err == "rag: interrupted\n"


def test_bad_metadata_is_an_error(no_settings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "docs", "--metadata", "team", "--index", str(no_settings), "-q"]) == 2
    assert capsys.readouterr().err == "rag: error: --metadata 'team' is not KEY=VALUE\n"


# -- `rag --help` stays instant ---------------------------------------------------------------------------------

HEAVY = ("numpy", "torch", "fastapi", "transformers", "uvicorn")
STAGES = ("rag.ingest", "rag.index", "rag.retrieve", "rag.answer", "rag.embed", "rag.models", "rag.pipeline")


def test_help_imports_no_models_servers_or_stages() -> None:
    script = (
        "import sys\n"
        "from rag.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m.startswith({STAGES!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "[]"
