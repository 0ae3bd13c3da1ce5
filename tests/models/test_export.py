"""The onnxruntime-genai export: the builder options the default model is exported with, and the earlier exports'
folders removed once the new one is built (the builder itself is stubbed: these test what rag asks of it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rag.models import convert


def test_the_export_asks_for_last_token_logits_and_int4_embeddings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []

    def builder(command: list[str], progress: Any) -> tuple[int, str]:
        seen.append(command)
        out = Path(command[command.index("-o") + 1])
        out.mkdir(parents=True)
        (out / "genai_config.json").write_text("{}", encoding="utf-8")
        return 0, ""

    monkeypatch.setattr(convert, "_run_child", builder)
    convert.export_onnx(tmp_path / "hf", tmp_path / "out")
    assert seen[0][1:3] == ["-m", "rag.models.onnx_build"]  # the low-memory builder
    options = seen[0][seen[0].index("--extra_options") + 1 :]
    assert options == ["int4_accuracy_level=4", "prune_lm_head=true", "op_types_to_quantize=MatMul/Gather"]
    convert.export_onnx(tmp_path / "hf", tmp_path / "plain", "fp32", None, prune_lm_head=False)
    assert "--extra_options" not in seen[1]


def test_earlier_exports_are_removed_once_the_new_one_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    old = tmp_path / "models" / "model-ort-int4"
    old.mkdir(parents=True)
    (old / "model.onnx.data").write_bytes(b"x" * 16)
    Path(str(old) + ".lock").write_text("", encoding="utf-8")

    def export(hf: Path, out: Path, *args: Any, **kwargs: Any) -> None:
        out.mkdir(parents=True)
        (out / "genai_config.json").write_text("{}", encoding="utf-8")

    monkeypatch.setattr(convert, "export_onnx", export)
    target = convert.onnx_int4(tmp_path / "hf", "model-ort-int4-v2", stale=("model-ort-int4", "never-made"))
    assert (target / "genai_config.json").is_file()
    assert not old.exists() and not Path(str(old) + ".lock").exists()
    assert convert.onnx_int4(tmp_path / "hf", "model-ort-int4-v2") == target  # built once, then reused


def test_a_failed_child_is_reported_with_the_tail_of_its_stderr(tmp_path: Path) -> None:
    """The real child runner: progress lines read from stdout, the error from the last lines of stderr."""
    import sys

    script = (
        "import json, sys; print(json.dumps({'total': 2})); print(json.dumps({'done': 1})); print('noise');"
        "print('first\\nsecond\\nthe reason', file=sys.stderr); sys.exit(3)"
    )
    seen: list[tuple[int, int]] = []
    code, tail = convert._run_child([sys.executable, "-c", script], lambda d, t: seen.append((d, t)))
    assert code == 3 and tail == "first second the reason" and seen == [(1, 2)]


def test_steps_share_one_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    with convert.Steps("preparing x") as steps:
        first = steps.step("joining", 10)
        second = steps.step("exporting", 90)
        first(5, 10)
        assert steps.bar.n == 5
        second(1, 2)
        assert steps.bar.n == 55 and "exporting" in steps.bar.desc
