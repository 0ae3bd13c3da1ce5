"""The int8 preparation step on a tiny OpenVINO model: NNCF's own bars and log lines stay off stdout and the
terminal (they would break --json output), unless rag logs at DEBUG (-v)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("nncf")
ov = pytest.importorskip("openvino")

from rag.embed import int8  # noqa: E402


def tiny_model() -> object:
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([-1, 8, 16], np.float32, name="x")
    hidden = ops.relu(ops.matmul(x, ops.constant(rng.random((16, 16), dtype=np.float32)), False, False))
    out = ops.softmax(ops.matmul(hidden, ops.constant(rng.random((16, 16), dtype=np.float32)), False, False), -1)
    return ov.Model([out], [x])


def batches() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [{"x": rng.random((2, 8, 16), dtype=np.float32)} for _ in range(3)]


def test_quantize_keeps_nncf_off_stdout(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rag")
    model = int8.quantize(tiny_model(), batches(), name="tiny")
    assert model is not None
    out, err = capfd.readouterr()
    assert out == ""
    assert "Statistics collection" not in err and "Smooth Quant" not in err


def test_verbose_lets_nncf_speak(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rag.embed.int8")
    with int8.nncf_silenced():
        print("nncf says")
    assert "nncf says" in capfd.readouterr().out
