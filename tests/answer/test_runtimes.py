"""OpenVinoRuntime: refuses a folder with no IR, streams LLMPipeline's pieces in order, and stops the generation
when the caller stops reading (a fake pipeline stands in for OpenVINO GenAI: these are unit tests of the thread
and queue around it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from rag.errors import ModelLoadError

ov_genai = pytest.importorskip("openvino_genai")


class FakePipeline:
    """Calls the streamer with fixed pieces, as LLMPipeline.generate does, until it returns STOP."""

    pieces: ClassVar[list[str]] = ["Par", "is", "", " [1]", ".", "never"]
    instances: ClassVar[list[FakePipeline]] = []

    def __init__(self, folder: str, device: str, **properties: Any) -> None:
        self.folder, self.device, self.properties = folder, device, properties
        self.sent: list[str] = []
        self.configs: list[Any] = []
        FakePipeline.instances.append(self)

    def get_tokenizer(self) -> Any:
        return None

    def generate(self, prompt: str, config: Any, streamer: Any) -> None:
        self.configs.append(config)
        for piece in self.pieces[: config.max_new_tokens]:
            self.sent.append(piece)
            if streamer(piece) == ov_genai.StreamingStatus.STOP:
                return


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    FakePipeline.instances.clear()
    monkeypatch.setattr(ov_genai, "LLMPipeline", FakePipeline)
    (tmp_path / "openvino_model.xml").write_text("<net/>", encoding="utf-8")
    return tmp_path


def test_a_folder_without_an_ir_is_refused_with_the_fix(tmp_path: Path) -> None:
    from rag.answer.generators.runtimes import OpenVinoRuntime

    with pytest.raises(ModelLoadError, match=r"holds no openvino_model\.xml: export it with optimum-cli") as info:
        OpenVinoRuntime(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_pieces_stream_in_order_greedy_and_unrendered(folder: Path) -> None:
    from rag.answer.generators.runtimes import OpenVinoRuntime

    runtime = OpenVinoRuntime(folder, threads=2)
    pipe = FakePipeline.instances[0]
    assert pipe.device == "CPU" and pipe.properties == {"INFERENCE_NUM_THREADS": 2}
    assert list(runtime.stream("prompt", 5)) == ["Par", "is", " [1]", "."]  # empty pieces are dropped
    config = pipe.configs[0]
    assert config.max_new_tokens == 5 and not config.do_sample and not config.apply_chat_template


def test_closing_the_stream_stops_the_generation(folder: Path) -> None:
    from rag.answer.generators.runtimes import OpenVinoRuntime

    runtime = OpenVinoRuntime(folder)
    stream = runtime.stream("prompt", 64)
    assert next(stream) == "Par"
    stream.close()  # joins the generating thread, which got STOP at its next piece
    sent = FakePipeline.instances[0].sent
    assert "never" not in sent and len(sent) < len(FakePipeline.pieces)
    assert runtime.generate("again", 64) == "Paris [1].never"  # the lock was released
