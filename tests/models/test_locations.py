"""Where models load from, without changing process-wide state; the torch thread count set once."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from rag.models import runtime
from rag.models.locations import cache_dir, model_location


def test_a_folder_loads_locally_and_anything_else_is_a_hub_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    folder = tmp_path / "model"
    folder.mkdir()
    local = model_location(str(folder))
    assert (local.path, local.local, local.kwargs()) == (str(folder), True, {"local_files_only": True})
    hub = model_location("sentence-transformers/all-MiniLM-L6-v2")
    assert (hub.local, hub.kwargs()) == (False, {})
    assert "HF_HUB_OFFLINE" not in os.environ  # nothing flipped for the process


def test_home_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "models" / "m").mkdir(parents=True)
    assert model_location("~/models/m").path == str(tmp_path / "models" / "m")


def test_cache_dir_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "explicit"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("RAG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "rag"


def test_torch_threads_are_set_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import torch

    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setattr(runtime, "_threads", None)
    runtime.configure_threads(0)  # 0: leave torch's default
    assert calls == []
    runtime.configure_threads(2)
    runtime.configure_threads(2)
    with caplog.at_level(logging.WARNING, logger="rag.models.runtime"):
        runtime.configure_threads(1)  # a second pipeline asking for another count does not change the first's
    assert calls == [2]
    assert "threads=1 ignored" in caplog.text
