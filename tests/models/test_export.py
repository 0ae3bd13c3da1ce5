"""The onnxruntime-genai export: the builder options the default model is exported with, and the earlier exports'
folders removed once the new one is built (the builder itself is stubbed: these test what rag asks of it)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from rag.models import convert


def test_the_export_asks_for_last_token_logits_and_int4_embeddings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []

    def builder(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        out = Path(command[command.index("-o") + 1])
        out.mkdir(parents=True)
        (out / "genai_config.json").write_text("{}", encoding="utf-8")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(convert.subprocess, "run", builder)
    convert.export_onnx(tmp_path / "hf", tmp_path / "out")
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

    def export(hf: Path, out: Path, *args: Any) -> None:
        out.mkdir(parents=True)
        (out / "genai_config.json").write_text("{}", encoding="utf-8")

    monkeypatch.setattr(convert, "export_onnx", export)
    target = convert.onnx_int4(tmp_path / "hf", "model-ort-int4-v2", stale=("model-ort-int4", "never-made"))
    assert (target / "genai_config.json").is_file()
    assert not old.exists() and not Path(str(old) + ".lock").exists()
    assert convert.onnx_int4(tmp_path / "hf", "model-ort-int4-v2") == target  # built once, then reused
