"""The default generator: the 1.5B, except on a machine with under 6 GB of RAM where the 0.5B is installed (the RAM
reading and the installed parts are faked here; no model is loaded: generators load on first use)."""

from __future__ import annotations

import logging

import pytest

from rag.answer.generators import registry
from rag.answer.generators.registry import create_generator, resolve_qwen
from rag.config import AnswerSettings
from rag.models.bundled import SplitGGUF

GB = 1024**3


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Set ``ram`` (bytes or None) and ``small_installed`` (the 0.5B's parts) for the test."""
    state: dict[str, object] = {"ram": 32 * GB, "small_installed": True}
    monkeypatch.setattr(registry, "total_memory_bytes", lambda: state["ram"])
    monkeypatch.setattr(SplitGGUF, "installed", lambda self: bool(state["small_installed"]))
    return state


def test_the_default_setting_is_the_15b(machine: dict[str, object]) -> None:
    assert AnswerSettings().generator == "qwen2.5-1.5b"
    assert create_generator(AnswerSettings()).name == "qwen2.5-1.5b"


def test_under_6_gb_the_default_is_the_05b_with_one_notice(
    machine: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    machine["ram"] = 4 * GB
    with caplog.at_level(logging.WARNING, logger=registry.__name__):
        assert create_generator(AnswerSettings()).name == "qwen2.5-0.5b"
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1 and "4.0 GB of RAM (under 6 GB)" in notices[0] and "qwen2.5-0.5b" in notices[0]
    assert "qwen2.5-coder-1.5b-instruct" in notices[0]  # how to keep the 1.5B


def test_under_6_gb_without_the_05b_installed_stays_on_the_15b(machine: dict[str, object]) -> None:
    machine["ram"], machine["small_installed"] = 4 * GB, False
    assert resolve_qwen("qwen2.5-1.5b") == "qwen2.5-1.5b"


def test_6_gb_or_an_unreadable_ram_stays_on_the_15b(machine: dict[str, object]) -> None:
    machine["ram"] = 6 * GB
    assert resolve_qwen("qwen2.5-1.5b") == "qwen2.5-1.5b"
    machine["ram"] = None
    assert resolve_qwen("qwen2.5-1.5b") == "qwen2.5-1.5b"


def test_named_models_are_kept_whatever_the_ram(machine: dict[str, object]) -> None:
    machine["ram"] = 2 * GB
    assert create_generator(AnswerSettings(generator="qwen2.5-coder-1.5b-instruct")).name == "qwen2.5-1.5b"
    assert create_generator(AnswerSettings(generator="qwen2.5-0.5b")).name == "qwen2.5-0.5b"
    assert create_generator(AnswerSettings(generator="qwen2.5-coder-0.5b-instruct")).name == "qwen2.5-0.5b"
    machine["ram"] = 32 * GB
    assert create_generator(AnswerSettings(generator="qwen")).name == "qwen2.5-1.5b"  # the short alias: the default
