"""The response schemas are derived from the pipeline's dataclasses (rag.serve.derive): their fields are the
dataclasses' fields less the stated differences, instances convert with nested dataclasses included, and
mistakes in a derivation (a misspelt field, a nested dataclass with no model) fail at import, not at run time."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel

from rag.serve.derive import derive
from rag.serve.jobs import Job
from rag.serve.schemas import (
    AskResponse,
    CitationModel,
    InfoResponse,
    IngestReportModel,
    JobModel,
    PassageModel,
    SkippedModel,
    passage_of,
)
from rag.types import Answer, Chunk, Citation, Hit, IndexInfo, IngestReport, SkippedFile


def names(*sources: type) -> list[str]:
    return [f.name for source in sources for f in dataclasses.fields(source)]


@pytest.mark.parametrize(
    ("model", "sources", "omitted", "renamed", "added"),
    [
        (CitationModel, (Citation,), set(), {}, []),
        (AskResponse, (Answer,), {"passages", "supported"}, {"text": "answer"}, []),
        (PassageModel, (Hit, Chunk), {"chunk", "metadata", "section"}, {"id": "chunk_id"}, ["location"]),
        (SkippedModel, (SkippedFile,), set(), {}, []),
        (IngestReportModel, (IngestReport,), {"index"}, {}, []),
        (JobModel, (Job,), {"staged", "metadata"}, {}, []),
        (InfoResponse, (IndexInfo,), set(), {}, []),
    ],
)
def test_response_models_have_the_dataclass_fields_less_the_stated_differences(
    model: type[BaseModel], sources: tuple[type, ...], omitted: set[str], renamed: dict[str, str], added: list[str]
) -> None:
    expected = [renamed.get(n, n) for n in names(*sources) if n not in omitted] + added
    assert list(model.model_fields) == expected


def test_every_field_is_required_unless_the_model_keeps_the_defaults() -> None:
    assert all(f.is_required() for f in AskResponse.model_fields.values())  # Answer has defaults; the API not
    assert all(f.is_required() for f in PassageModel.model_fields.values())  # Chunk.page defaults to None
    optional = {name for name, f in JobModel.model_fields.items() if not f.is_required()}
    assert optional == {"started", "finished", "report", "error"}  # status is retyped, so required


def citation(number: int) -> Citation:
    return Citation(number, "a.md", 0, 9, "line 1", 0.5, "Some text")


def test_an_answer_converts_with_its_citations() -> None:
    answer = Answer(
        question="q?", text="It is so. [1]", citations=[citation(1)], refused=False, language="en", passages=[],
        timings={"total": 0.1}, grounding="generated", generator="echo", invalid_citations=[3],
        unsupported=["Maybe."], standalone_question="q?",
    )  # fmt: skip
    body = AskResponse.of(answer).model_dump()
    assert body["answer"] == "It is so. [1]" and "text" not in body and "passages" not in body
    assert body["citations"] == [dataclasses.asdict(citation(1))]
    assert (body["invalid_citations"], body["unsupported"], body["timings"]) == ([3], ["Maybe."], {"total": 0.1})


def test_a_hit_flattens_into_a_passage() -> None:
    chunk = Chunk(
        "Some **text**", 5, 18, 2, 3, page=None, id=7, source="/abs/a.md", metadata={"team": "x"},
        display="Some text", heading="A › B",
    )  # fmt: skip
    passage = passage_of(Hit(chunk, score=0.9, similarity=0.8, rank=1), "a.md").model_dump()
    assert passage == {
        "score": 0.9, "similarity": 0.8, "rank": 1, "text": "Some **text**", "start": 5, "end": 18,
        "start_line": 2, "end_line": 3, "page": None, "chunk_id": 7, "source": "a.md", "location": "lines 2-3",
        "display": "Some text", "heading": "A › B",
    }  # fmt: skip


def test_a_job_converts_with_its_report() -> None:
    report = IngestReport("/idx", 2, 1, 0, 0, 0, [SkippedFile("b.bin", "unsupported")], 3, 0, 0.5, "hash:256", 3)
    job = Job(id="j", files=["a.md", "b.bin"], created=1.0, status="done", report=report, staged=[], metadata={})
    body = JobModel.of(job).model_dump()
    assert body["report"]["skipped"] == [{"path": "b.bin", "reason": "unsupported"}]
    assert "index" not in body["report"] and "staged" not in body and "metadata" not in body
    assert (body["status"], body["started"], body["error"]) == ("done", None, None)
    with pytest.raises(ValueError, match="status"):
        JobModel.of(dataclasses.replace(job, status="lost"))  # not one of the documented states


def test_of_checks_what_it_is_given() -> None:
    with pytest.raises(TypeError, match="one instance each of Citation"):
        CitationModel.of(SkippedFile("a", "b"))
    with pytest.raises(TypeError, match="no field"):
        CitationModel.of(citation(1), colour="red")


@dataclasses.dataclass(frozen=True)
class Inner:
    x: int


@dataclasses.dataclass(frozen=True)
class Outer:
    inner: list[Inner]
    best: Inner | None
    note: str = ""


InnerModel = derive("InnerModel", Inner)
OuterModel = derive("OuterModel", Outer, required=False)


@dataclasses.dataclass(frozen=True)
class Lonely:  # no model derived from it
    x: int


@dataclasses.dataclass(frozen=True)
class Orphan:
    lonely: Lonely


def test_nested_dataclasses_are_their_derived_models() -> None:
    assert OuterModel.model_fields["inner"].annotation == list[InnerModel]
    assert OuterModel.model_fields["best"].annotation == InnerModel | None
    assert OuterModel.model_fields["note"].default == ""  # required=False keeps the dataclass default
    dumped = OuterModel.of(Outer([Inner(1), Inner(2)], Inner(3))).model_dump()
    assert dumped == {"inner": [{"x": 1}, {"x": 2}], "best": {"x": 3}, "note": ""}
    schema = OuterModel.model_json_schema()
    assert schema["properties"]["inner"]["items"] == {"$ref": "#/$defs/InnerModel"}
    with pytest.raises(TypeError, match="Inner already has a model, InnerModel"):
        derive("InnerAgain", Inner)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"omit": {"nope"}}, "no such dataclass field"),
        ({"rename": {"nope": "x"}}, "no such dataclass field"),
        ({"retype": {"nope": int}}, "no such dataclass field"),
        ({"add": {"note": str}}, "exist"),
    ],
)
def test_derive_refuses_misspelt_fields(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        derive("Bad", SkippedFile, Outer, omit={"inner", "best", *kwargs.pop("omit", ())}, **kwargs)


def test_a_nested_dataclass_needs_its_own_model_first() -> None:
    with pytest.raises(TypeError, match="derive a model from Lonely first"):
        derive("OrphanModel", Orphan)


def test_two_sources_cannot_give_the_same_field_name() -> None:
    with pytest.raises(TypeError, match="two fields would be called 'path'"):
        derive("Twice", SkippedFile, SkippedFile)
