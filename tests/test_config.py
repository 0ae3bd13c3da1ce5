"""RagConfig: defaults < rag.toml < RAG_* environment < explicit overrides, and clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rag.config import DEFAULT_INDEX, AnswerSettings, IngestSettings, ModelSettings, RagConfig, RetrievalSettings
from rag.errors import ConfigError

SETTINGS = sorted(RagConfig.setting_names())


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No RAG_* variables and no rag.toml from the developer's environment; cwd is an empty tmp folder."""
    for name in SETTINGS:
        monkeypatch.delenv(f"RAG_{name.upper()}", raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def write_toml(folder: Path, text: str, name: str = "rag.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    config = RagConfig.load()
    assert config == RagConfig()
    assert config.index == DEFAULT_INDEX == Path("indexes") / "default"
    assert config.embedder == "auto"
    assert (config.chunk_size, config.chunk_overlap, config.top_k) == (None, None, 4)  # None: the index's, else 200/30
    assert config.retrieval == "hybrid"
    assert config.min_score is None
    assert config.generator == "qwen2.5-1.5b" and config.llm_runtime == "auto" and config.compress_passages is True
    assert config.quiet is False


def test_config_is_frozen() -> None:
    config = RagConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.top_k = 9  # type: ignore[misc]


def test_toml_sets_values(clean_env: Path) -> None:
    write_toml(clean_env, '[rag]\ntop_k = 7\nembedder = "minilm"\nmin_score = 0.42\nquiet = true\n')
    config = RagConfig.load()
    assert (config.top_k, config.embedder, config.min_score, config.quiet) == (7, "minilm", 0.42, True)
    assert config.chunk_size is None and config.rrf_k == 60  # untouched settings keep their defaults


def test_toml_without_table_and_explicit_path(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'top_k = 3\nindex = "somewhere/idx"\n', name="other.toml")
    config = RagConfig.load(path)
    assert config.top_k == 3
    assert config.index == Path("somewhere/idx")


def test_precedence_toml_env_override(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml(clean_env, "[rag]\ntop_k = 5\nchunk_size = 300\nrrf_k = 10\n")
    assert RagConfig.load().top_k == 5
    monkeypatch.setenv("RAG_TOP_K", "6")
    monkeypatch.setenv("RAG_CHUNK_SIZE", "250")
    config = RagConfig.load()
    assert (config.top_k, config.chunk_size, config.rrf_k) == (6, 250, 10)  # env beats toml
    config = RagConfig.load(top_k=8)
    assert (config.top_k, config.chunk_size, config.rrf_k) == (8, 250, 10)  # override beats env


def test_none_overrides_and_empty_env_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "6")
    monkeypatch.setenv("RAG_EMBEDDER", "")
    config = RagConfig.load(top_k=None, embedder=None)
    assert config.top_k == 6
    assert config.embedder == "auto"


def test_env_values_are_coerced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "idx"))
    monkeypatch.setenv("RAG_MIN_SCORE", "0.25")
    monkeypatch.setenv("RAG_QUIET", "yes")
    monkeypatch.setenv("RAG_MAX_FILE_MB", "2")
    monkeypatch.setenv("RAG_TEMPERATURE", "0")
    config = RagConfig.load()
    assert config.index == tmp_path / "idx" and isinstance(config.index, Path)
    assert config.min_score == 0.25
    assert config.quiet is True
    assert config.max_file_mb == 2.0 and isinstance(config.max_file_mb, float)
    assert config.temperature == 0.0


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("true", True), ("ON", True), ("0", False), ("no", False)])
def test_bool_strings(monkeypatch: pytest.MonkeyPatch, raw: str, value: bool) -> None:
    monkeypatch.setenv("RAG_QUIET", raw)
    assert RagConfig.load().quiet is value


def test_home_is_expanded_in_index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert RagConfig.load(index="~/my-index").index == tmp_path / "my-index"


@pytest.mark.parametrize(
    ("env", "value", "setting"),
    [
        ("RAG_TOP_K", "many", "top_k"),
        ("RAG_CHUNK_SIZE", "2.5x", "chunk_size"),
        ("RAG_MIN_SCORE", "high", "min_score"),
        ("RAG_QUIET", "maybe", "quiet"),
        ("RAG_TOP_K", "0", "top_k"),
        ("RAG_CHUNK_SIZE", "8", "chunk_size"),
        ("RAG_CHUNK_OVERLAP", "500", "chunk_overlap"),
        ("RAG_CHUNK_OVERLAP", "-1", "chunk_overlap"),
        ("RAG_RETRIEVAL", "fuzzy", "retrieval"),
        ("RAG_BATCH_SIZE", "0", "batch_size"),
        ("RAG_MAX_FILE_MB", "0", "max_file_mb"),
    ],
)
def test_bad_env_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, env: str, value: str, setting: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        RagConfig.load()
    assert setting in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"top_k": "three"}, "top_k"),
        ({"dense_weight": "heavy"}, "dense_weight"),
        ({"chunk_size": 10}, "chunk_size"),
        ({"chunk_size": 100, "chunk_overlap": 100}, "chunk_overlap"),
        ({"retrieval": "semantic"}, "retrieval"),
    ],
)
def test_bad_overrides_name_the_setting(overrides: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        RagConfig.load(**overrides)
    assert setting in str(info.value)


def test_bad_toml_value_names_the_setting(clean_env: Path) -> None:
    write_toml(clean_env, '[rag]\ntop_k = "lots"\n')
    with pytest.raises(ConfigError, match="top_k"):
        RagConfig.load()


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ConfigError, match="chunk_overlap"):
        RagConfig(chunk_size=50, chunk_overlap=60)
    with pytest.raises(ConfigError, match="top_k"):
        RagConfig(top_k=0)


def test_replace_coerces_and_validates() -> None:
    config = RagConfig().replace(top_k="9")
    assert config.top_k == 9
    with pytest.raises(ConfigError, match="retrieval"):
        RagConfig().replace(retrieval="nope")


def test_unknown_setting_in_toml_is_rejected(clean_env: Path) -> None:
    write_toml(clean_env, "[rag]\ntop_k = 3\ncolour = 'blue'\n")
    with pytest.raises(ConfigError) as info:
        RagConfig.load()
    message = str(info.value)
    assert "colour" in message
    assert "top_k" in message  # the known settings are listed


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(ConfigError, match="topk"):
        RagConfig.load(topk=3)


def test_unknown_env_variable_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_NOT_A_SETTING", "1")
    assert RagConfig.load() == RagConfig()


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        RagConfig.load(tmp_path / "nope.toml")


def test_broken_toml_is_a_config_error(clean_env: Path) -> None:
    write_toml(clean_env, "[rag\ntop_k = ")
    with pytest.raises(ConfigError, match=r"rag\.toml"):
        RagConfig.load()


def test_settings_live_in_their_stage_sections() -> None:
    config = RagConfig(chunk_size=300, top_k=7, generator="extractive", batch_size=8, index="x/idx")
    assert config.ingest == IngestSettings(chunk_size=300)
    assert config.retrieve == RetrievalSettings(top_k=7)
    assert config.answer == AnswerSettings(generator="extractive")
    assert config.models == ModelSettings(batch_size=8)
    assert config.index == Path("x/idx")
    assert config.chunk_size == config.ingest.chunk_size == 300  # flat names still read
    with pytest.raises(AttributeError, match="no setting 'chunk_sizes'"):
        _ = config.chunk_sizes


def test_every_flat_name_belongs_to_exactly_one_section() -> None:
    sections = [IngestSettings, RetrievalSettings, AnswerSettings, ModelSettings]
    names = [f.name for cls in sections for f in dataclasses.fields(cls)] + ["index", "quiet"]
    assert sorted(names) == sorted(set(names)) == SETTINGS


def test_whole_sections_and_replace_keep_the_rest() -> None:
    config = RagConfig(answer=AnswerSettings(generator="openai", base_url="http://x/v1", llm_model="m"), top_k=2)
    changed = config.replace(top_k="5", retrieval="dense")
    assert (changed.top_k, changed.retrieval, changed.generator, changed.base_url) == (5, "dense", "openai", "http://x/v1")
    assert config.top_k == 2  # the original is unchanged
    assert changed.replace(models=ModelSettings(threads=2)).models.threads == 2


def test_toml_tables_named_after_sections(clean_env: Path) -> None:
    write_toml(clean_env, "[ingest]\nchunk_size = 300\n[retrieve]\ntop_k = 9\n[models]\nprecision = \"float32\"\n")
    config = RagConfig.load()
    assert (config.ingest.chunk_size, config.retrieve.top_k, config.models.precision) == (300, 9, "float32")
    write_toml(clean_env, "[ingest]\nchunk_sise = 300\n")
    with pytest.raises(ConfigError, match=r"\[ingest\] has unknown setting\(s\) chunk_sise"):
        RagConfig.load()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("precision", "half", "choose auto, float32, bfloat16, float16"),
        ("index_type", "annoy", "choose auto, flat, ivf, hnsw"),
        ("cjk_doc_share", 1.5, "between 0 and 1"),
        ("request_timeout", 0, "must be > 0"),
        ("batch_size", 0, "must be >= 1"),
        ("quiet", "maybe", "not a valid bool"),
        ("top_k", 2.5, "not a valid int"),
    ],
)
def test_annotations_validate_types_choices_and_bounds(name: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        RagConfig(**{name: value})
    assert message in str(info.value)
