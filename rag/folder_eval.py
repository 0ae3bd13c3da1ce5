"""Question answering over a folder of real documents, scored the way a user reads the answers (the docsqa layout).

A set is a folder of documents plus a ``questions.jsonl`` of records
``{"id", "question", "language", "kind", "answers", "key_facts", "sources"}``: ``key_facts`` is a list of facts, each
a list of alternative strings, and a fact is present when one alternative is a substring of the answer after NFKC,
case folding and collapsing whitespace; ``sources`` are the files (relative to the folder) that hold the answer;
an unanswerable question has no facts and no sources. Records without ``key_facts`` (``docsqa/sec10q``,
``docsqa/tara``) are scored by the share of the reference's figures in the answer and by character F1.

Per question: all facts present, key-fact recall, a source cited, a source in the top k, refused, degenerate
(a citation or a span of 8+ characters repeated three times running, or markup left in), seconds to the answer
and to the first streamed token. ``score_folder`` ingests the folder as a user would (incrementally, into the
index its ``RagConfig`` names) and asks every question; ``rag eval FOLDER --questions FILE`` prints the table.
"""

from __future__ import annotations

import json
import re
import statistics
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import RagError

# A fact's alternatives and the answer are compared after NFKC, case folding and collapsed whitespace.


def fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def facts_present(answer: str, key_facts: list[list[str]]) -> list[bool]:
    """For each fact, whether one of its alternatives occurs in ``answer`` (see the module doc)."""
    said = fold(answer)
    return [any(fold(alt) in said for alt in alternatives if fold(alt)) for alternatives in key_facts]


_REPEATED_CITATION = re.compile(r"(\[\d{1,3}\])(?:\s*\1){2,}")
_REPEATED_SPAN = re.compile(r"(\S.{7,}?)(?:\s*\1){2,}", re.DOTALL)
_MARKUP = re.compile(
    r"&(?:[a-z]{2,8}|#\d{2,6});"  # an HTML entity
    r"|^\s*(?:///|:::|!!!)"  # an admonition marker
    r"|\{\*.*?\*\}"  # an include marker
    r"|</?(?:div|span|img|a|br|p|details|summary|abbr)\b[^>]*>",  # raw HTML
    re.IGNORECASE | re.MULTILINE,
)


def degenerate(text: str) -> str:
    """Why ``text`` is not a readable answer ("repeated citation", "repeated span", "markup"), or ""."""
    if _REPEATED_CITATION.search(text):
        return "repeated citation"
    if _REPEATED_SPAN.search(text):
        return "repeated span"
    if _MARKUP.search(_without_code(text)):
        return "markup"
    return ""


_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def _without_code(text: str) -> str:
    return _CODE.sub(" ", text)


_FIGURE = re.compile(r"\d[\d,.]*\d|\d")


def figures(text: str) -> set[str]:
    """Numbers of three or more digits, separators dropped ("$1,234.5" -> "12345")."""
    out = set()
    for match in _FIGURE.finditer(text):
        digits = re.sub(r"[,.]", "", match.group())
        if len(digits) >= 3:
            out.add(digits.rstrip("0") or "0")
    return out


def char_f1(prediction: str, reference: str) -> float:
    """Character F1 after dropping whitespace and punctuation (the measure of ``docsqa/tara``'s spans)."""
    from collections import Counter

    def chars(text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text).casefold()
        return [c for c in text if not c.isspace() and not unicodedata.category(c).startswith(("P", "S"))]

    pred, gold = chars(prediction), chars(reference)
    common = sum((Counter(pred) & Counter(gold)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def parallel(path: str) -> str:
    """The en/zh counterpart of a docsqa FastAPI path (``fastapi/en/x.md`` <-> ``fastapi/zh/x.md``)."""
    if "/en/" in path:
        return path.replace("/en/", "/zh/", 1)
    if "/zh/" in path:
        return path.replace("/zh/", "/en/", 1)
    return path


def group_of(record: dict[str, Any]) -> str:
    """``fa-en``, ``fa-zh``, ``fa-x``, ``pdf``: the id's prefix before its number."""
    return re.sub(r"-?\d+$", "", str(record.get("id", ""))) or "all"


@dataclass
class QuestionResult:
    id: str
    group: str
    kind: str
    question: str
    answer: str
    cited: list[str]
    top: list[str]
    refused: bool
    answerable: bool
    facts: list[bool]
    source_cited: bool
    source_top1: bool
    source_topk: bool
    degenerate: str
    seconds: float
    first_token_s: float
    figures_share: float | None = None
    char_f1: float | None = None
    grounding: str = ""  # how the answer was made (``Answer.grounding``): generated, extractive, refused, ...
    read: int = 0  # passages the answer was made from


@dataclass
class GroupScores:
    questions: int = 0
    answerable: int = 0
    all_facts: float = 0.0
    fact_recall: float = 0.0
    source_cited: float = 0.0
    source_top1: float = 0.0
    source_topk: float = 0.0
    answerable_refused: float = 0.0
    unanswerable: int = 0
    unanswerable_refused: int = 0
    degenerate: int = 0
    seconds_p50: float = 0.0
    first_token_p50: float = 0.0
    figures_share: float | None = None
    char_f1: float | None = None


@dataclass
class FolderReport:
    folder: str
    documents: int
    chunks: int
    embedder: str
    generator: str
    ingest_seconds: float
    k: int
    groups: dict[str, GroupScores] = field(default_factory=dict)
    results: list[QuestionResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_questions(path: str | Path) -> list[dict[str, Any]]:
    """The records of a questions file (JSON Lines), with a clear error for a missing file or a bad line."""
    path = Path(path)
    if not path.is_file():
        raise RagError(f"no questions file {path}: give a JSON Lines file of {{'id', 'question', ...}} records")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RagError(f"{path}, line {number}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or not record.get("question"):
            raise RagError(f"{path}, line {number}: a record needs a 'question'")
        records.append(record)
    return records


def relative_source(source: str, root: Path) -> str:
    """A chunk's source path relative to the set's folder (sources are stored as ingested: absolute or not)."""
    path = Path(source)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return path.as_posix()


def score_question(
    record: dict[str, Any],
    answer: Any,
    top: list[str],
    root: Path,
    seconds: float,
    first_token_s: float,
) -> QuestionResult:
    """One question's scores from the pipeline's ``Answer`` and the ranked top-k source files."""
    sources = [str(s) for s in record.get("sources", [])]
    key_facts = record.get("key_facts")
    answerable = bool(sources) and (bool(key_facts) or key_facts is None)
    accepted = set(sources)
    if group_of(record) in ("fa-en", "fa-zh"):
        accepted |= {parallel(s) for s in sources}
    cited = list(dict.fromkeys(relative_source(c.source, root) for c in answer.citations))
    text = answer.text
    result = QuestionResult(
        id=str(record.get("id", "")),
        group=group_of(record),
        kind=str(record.get("kind", "")),
        question=record["question"],
        answer=text,
        cited=cited,
        top=top,
        refused=bool(answer.refused),
        answerable=answerable,
        facts=[] if answer.refused else facts_present(text, key_facts or []),
        source_cited=bool(accepted & set(cited)),
        source_top1=bool(top) and top[0] in accepted,
        source_topk=bool(accepted & set(top)),
        degenerate=degenerate(text),
        seconds=seconds,
        first_token_s=first_token_s,
        grounding=str(answer.grounding),
        read=len(answer.passages) if not answer.refused else 0,
    )
    if key_facts and answer.refused:
        result.facts = [False] * len(key_facts)
    references = [str(a) for a in record.get("answers", [])]
    if key_facts is None and references:
        wanted = set().union(*(figures(r) for r in references))
        result.figures_share = len(wanted & figures(text)) / len(wanted) if wanted else None
        result.char_f1 = 0.0 if answer.refused else max(char_f1(text, r) for r in references)
    return result


def summarise(results: Iterable[QuestionResult]) -> dict[str, GroupScores]:
    """Means per group and over all (``all``); fact and source means over the answerable questions."""
    by_group: dict[str, list[QuestionResult]] = defaultdict(list)
    for r in results:
        by_group[r.group].append(r)
        by_group["all"].append(r)
    out = {}
    for name, items in by_group.items():
        answerable = [r for r in items if r.answerable]
        unanswerable = [r for r in items if not r.answerable]
        mean = statistics.fmean
        scores = GroupScores(questions=len(items), answerable=len(answerable), unanswerable=len(unanswerable))
        if answerable:
            with_facts = [r for r in answerable if r.facts]
            if with_facts:
                scores.all_facts = mean(float(all(r.facts)) for r in with_facts)
                scores.fact_recall = mean(sum(r.facts) / len(r.facts) for r in with_facts)
            scores.source_cited = mean(float(r.source_cited) for r in answerable)
            scores.source_top1 = mean(float(r.source_top1) for r in answerable)
            scores.source_topk = mean(float(r.source_topk) for r in answerable)
            scores.answerable_refused = mean(float(r.refused) for r in answerable)
            shares = [r.figures_share for r in answerable if r.figures_share is not None]
            scores.figures_share = mean(shares) if shares else None
            f1s = [r.char_f1 for r in answerable if r.char_f1 is not None]
            scores.char_f1 = mean(f1s) if f1s else None
        scores.unanswerable_refused = sum(1 for r in unanswerable if r.refused)
        scores.degenerate = sum(1 for r in items if r.degenerate)
        scores.seconds_p50 = statistics.median(r.seconds for r in items)
        timed = [r.first_token_s for r in items if r.first_token_s > 0]
        scores.first_token_p50 = statistics.median(timed) if timed else 0.0
        out[name] = scores
    return out


def ask_timed(pipeline: Any, question: str) -> tuple[Any, float, float]:
    """(Answer, seconds to it, seconds to the first streamed piece of text) through ``ask_stream``."""
    t0 = time.perf_counter()
    first = 0.0
    final = None
    for event in pipeline.ask_stream(question):
        if event.kind == "token" and not first and event.text.strip():
            first = time.perf_counter() - t0
        elif event.kind == "done":
            final = event.answer
    if final is None:
        raise RagError(f"the answer stream for {question!r} ended without an answer")
    return final, time.perf_counter() - t0, first


def score_folder(
    pipeline: Any,
    root: str | Path,
    records: list[dict[str, Any]],
    *,
    paths: list[str | Path] | None = None,
    k: int = 4,
    progress: Callable[[QuestionResult], None] | None = None,
) -> FolderReport:
    """Ingest ``paths`` (default: the folder) into the pipeline's index, ask every record, and score them."""
    root = Path(root)
    t0 = time.perf_counter()
    pipeline.ingest([Path(p) for p in (paths or [root])])
    ingest_s = time.perf_counter() - t0
    results = []
    for record in records:
        hits = pipeline.retrieve(record["question"], k=k, across_languages=True)
        top = list(dict.fromkeys(relative_source(h.chunk.source, root) for h in hits))
        answer, seconds, first = ask_timed(pipeline, record["question"])
        result = score_question(record, answer, top, root, seconds, first)
        results.append(result)
        if progress is not None:
            progress(result)
    info = pipeline.info()
    return FolderReport(
        folder=str(root),
        documents=info.documents,
        chunks=info.chunks,
        embedder=info.embedder,
        generator=str(pipeline.config.answer.generator),
        ingest_seconds=ingest_s,
        k=k,
        groups=summarise(results),
        results=results,
    )


def table(report: FolderReport) -> list[str]:
    """The report as Markdown table lines: one row per group, ``all`` last, then all-facts accuracy by kind."""
    lines = [
        f"{report.folder}: {report.documents} documents, {report.chunks} chunks, embedder {report.embedder}, "
        f"generator {report.generator}, ingest {report.ingest_seconds:.0f} s",
        "",
    ]
    header = ("group", "n", "all facts", "recall", "cited", "top1", f"top{report.k}", "ans.refused",
              "unans.refused", "degenerate", "s p50", "1st tok p50", "figures", "charF1")  # fmt: skip
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group, s in sorted(report.groups.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        cells = [
            group, str(s.questions), f"{s.all_facts:.2f}", f"{s.fact_recall:.2f}", f"{s.source_cited:.2f}",
            f"{s.source_top1:.2f}", f"{s.source_topk:.2f}", f"{s.answerable_refused:.2f}",
            f"{s.unanswerable_refused} of {s.unanswerable}" if s.unanswerable else "",
            str(s.degenerate), f"{s.seconds_p50:.1f}", f"{s.first_token_p50:.1f}",
            "" if s.figures_share is None else f"{s.figures_share:.2f}",
            "" if s.char_f1 is None else f"{s.char_f1:.2f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    kinds: dict[str, list[QuestionResult]] = defaultdict(list)
    for r in report.results:
        kinds[r.kind].append(r)
    by_kind = ", ".join(f"{k} {summarise(v)['all'].all_facts:.2f} ({len(v)})" for k, v in sorted(kinds.items()) if k)
    if by_kind:
        lines.append(f"all facts by kind: {by_kind}")
    return lines
