"""What a user's terminal and shell see of `rag`: a pipe closed early ends quietly, `rag ask` leaves standard
input unread (a shell loop's next lines), and the libraries underneath stay quiet unless -v. Each runs `python -m
rag` in a subprocess on an index built with the fakes."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from careless_generator import LIBRARY_WARNING, PYTHON_WARNING

import rag
from rag.cli.main import main
from rag.config import RagConfig

ROOT = Path(rag.__file__).resolve().parent.parent
SUPPORT = Path(__file__).resolve().parent.parent / "support"
QUESTION = "When was the Transformer architecture introduced?"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the subprocesses: the fakes, and an index of the sample corpus built with them."""
    index = tmp_path_factory.mktemp("terminal") / "idx"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(SUPPORT)]),
        RAG_EMBEDDER="rag.testing:HashEmbedder",
        RAG_GENERATOR="careless_generator:CarelessGenerator",
        RAG_INDEX=str(index),
    )
    names = [f"RAG_{f.name.upper()}" for f in dataclasses.fields(RagConfig)]
    saved = {n: os.environ.pop(n) for n in names if n in os.environ}
    try:
        os.environ["RAG_EMBEDDER"] = env["RAG_EMBEDDER"]
        assert main(["ingest", str(ROOT / "corpora"), "--index", str(index), "-q"]) == 0
    finally:
        os.environ.pop("RAG_EMBEDDER", None)
        os.environ.update(saved)
    return env


def rag_command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "rag", *argv]


@pytest.mark.parametrize("argv", [("search", QUESTION), ("ask", QUESTION, "--stream"), ("info",)])
def test_a_pipe_closed_early_ends_quietly(env: dict[str, str], argv: tuple[str, ...]) -> None:
    proc = subprocess.Popen(
        rag_command(*argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before rag writes a line, as `| head -0` (or a fast `head`) leaves it
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 141), err
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err


def test_ask_leaves_stdin_unread(env: dict[str, str], tmp_path: Path) -> None:
    """`while read q; do rag ask "$q"; done < questions.txt`: the file's offset is shared with every `rag ask`, so
    whatever one reads (itself, a library, a child process) the loop never sees."""
    questions = tmp_path / "questions.txt"
    questions.write_text("second question?\nthird question?\n", encoding="utf-8")
    with questions.open("rb") as stdin:
        done = subprocess.run(rag_command("ask", QUESTION), stdin=stdin, capture_output=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr.decode()
        assert os.lseek(stdin.fileno(), 0, os.SEEK_CUR) == 0  # not one byte read
    assert "[1]" in done.stdout.decode()


def test_chat_still_reads_stdin(env: dict[str, str]) -> None:
    plain = {**env, "RAG_GENERATOR": "rag.testing:EchoGenerator"}
    done = subprocess.run(
        rag_command("chat"), input=QUESTION + "\n", capture_output=True, text=True, env=plain, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "[1]" in done.stdout


def test_library_noise_only_with_verbose(env: dict[str, str]) -> None:
    quiet = subprocess.run(
        rag_command("ask", QUESTION), stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=120
    )
    assert quiet.returncode == 0, quiet.stderr
    assert LIBRARY_WARNING not in quiet.stderr and PYTHON_WARNING not in quiet.stderr
    loud = subprocess.run(
        rag_command("ask", QUESTION, "-v"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert loud.returncode == 0, loud.stderr
    assert LIBRARY_WARNING in loud.stderr and PYTHON_WARNING in loud.stderr
