"""What the commands print, as text or ``--json``: search hits, ingest and evaluation reports, index info and
verification results. Answers and the chat loop are printed by ``rag.cli.chat``."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any

from rag.types import Hit, IndexInfo, IngestReport, TuneReport

if TYPE_CHECKING:
    from rag.evaluation import EvalReport

SNIPPET_CHARS = 300  # of a hit's text, whitespace collapsed


def to_json(obj: Any) -> str:
    """``obj`` as indented JSON: dataclasses as their fields, anything else JSON lacks as ``str``."""

    def default(o: Any) -> Any:
        if is_dataclass(o) and not isinstance(o, type):
            return asdict(o)
        return str(o)

    return json.dumps(obj, default=default, ensure_ascii=False, indent=2)


def display_source(path: str) -> str:
    """A chunk's source as shown to the user (relative to the working folder when under it)."""
    from rag.text.paths import display_path

    return display_path(path)


def print_hits(hits: list[Hit]) -> None:
    """One entry per hit: rank, similarity, source and location, then the start of its text."""
    for hit in hits:
        c = hit.chunk
        text = " ".join(c.shown.split())
        print(f"{hit.rank}. [{hit.similarity:.3f}] {display_source(c.source)} ({c.location()})")
        print(f"   {text[:SNIPPET_CHARS]}{'…' if len(text) > SNIPPET_CHARS else ''}")


def print_ingest_report(report: IngestReport) -> None:
    """The counts on one line, then each skipped file with the reason."""
    print(
        f"{report.index}: {report.files_seen} files seen, {report.files_added} added, "
        f"{report.files_updated} updated, {report.files_unchanged} unchanged, {report.files_removed} removed, "
        f"{len(report.skipped)} skipped; {report.chunks_added} chunks added, {report.chunks_removed} removed; "
        + (f"{report.ocr_pages} pages OCR'd; " if report.ocr_pages else "")
        + f"model {report.model}; {report.seconds:.1f} s"
    )
    for s in report.skipped:
        print(f"  skipped {s.path}: {s.reason}")
    for s in report.truncated:
        print(f"  read in part {s.path}: {s.reason}")


def print_info(info: IndexInfo) -> None:
    """One ``name: value`` line per field, names right-aligned."""
    for key, value in asdict(info).items():
        if key == "tuned":
            value = _tuned_line(value)
        print(f"{key:>15}: {value}")


def _tuned_line(tuned: dict[str, Any] | None) -> str:
    """The manifest's ``tuned`` entry in one line (``--json`` gives all of it)."""
    if not tuned:
        return "no"
    scores = tuned.get("scores", {})
    before = scores.get("before", {}).get("ndcg_at_10", 0.0)
    after = scores.get("after", {}).get("ndcg_at_10", 0.0)
    return (
        f"from {tuned.get('base')} on {tuned.get('pairs')} {tuned.get('pairs_source')} pairs, held-out nDCG@10 "
        f"{before:.3f} -> {after:.3f}, {tuned.get('created')} ({tuned.get('folder')})"
    )


def print_tune_report(report: TuneReport) -> None:
    """The pairs, the training, the held-out scores before -> after, and what was done."""
    b, a = report.before, report.after
    print(
        f"tuned {report.base_model} on {report.pairs} {report.pairs_source} pairs "
        f"({report.steps} steps, {report.epochs:.2f} epochs at learning rate {report.learning_rate:g}, "
        f"{report.train_seconds / 60:.1f} min training, "
        f"{report.seconds / 60:.1f} min in all)"
    )
    kind = f" ({report.held_out_source}{', a proxy' if report.proxy_gate else ''})" if report.held_out_source else ""
    print(f"held-out queries: {report.held_out}{kind}")
    for name, x, y in (
        ("dense nDCG@10", b.ndcg_at_10, a.ndcg_at_10),
        ("dense Recall@10", b.recall_at_10, a.recall_at_10),
        ("hybrid nDCG@10", b.hybrid_ndcg_at_10, a.hybrid_ndcg_at_10),
        ("hybrid Recall@10", b.hybrid_recall_at_10, a.hybrid_recall_at_10),
    ):
        print(f"{name:>17}: {x:.3f} -> {y:.3f} ({y - x:+.3f})")
    print(report.reason + (f" (model {report.model}, generation {report.generation})" if report.applied else ""))


def print_problems(problems: list[str], as_json: bool, notes: list[str] | None = None) -> None:
    """What ``rag verify`` found: one line per problem (damage) and per note (harmless leftovers)."""
    notes = notes or []
    if as_json:
        print(to_json({"ok": not problems, "problems": problems, "notes": notes}))
        return
    lines = [f"problem: {p}" for p in problems] + [f"note: {n}" for n in notes]
    if not problems:
        lines.insert(0, "index is consistent")
    print("\n".join(lines))


def print_eval_report(report: EvalReport) -> None:
    """The index that was built, the retrieval metrics and, with ``--answers``, the answer metrics."""
    s = report.scores
    print(
        f"{report.dataset}: {report.documents} documents, {report.chunks} chunks, embedder {report.embedder}, "
        f"retrieval {report.retrieval}{' + rerank' if report.rerank else ''}, "
        f"indexed in {report.index_seconds:.1f} s"
    )
    print(
        f"nDCG@10 {s.ndcg_at_10:.4f}  Recall@10 {s.recall_at_10:.4f}  Recall@100 {s.recall_at_100:.4f}  "
        f"MRR@10 {s.mrr_at_10:.4f}  latency p50 {s.latency_p50_ms:.1f} ms p95 {s.latency_p95_ms:.1f} ms "
        f"({s.queries} queries)"
    )
    if report.answers:
        a = report.answers
        print(
            f"answers: EM {a.exact_match:.4f}  F1 {a.f1:.4f}  contained {a.answer_contained:.4f}  "
            f"faithfulness {a.faithfulness:.4f}  citation accuracy {a.citation_accuracy:.4f}  "
            f"refused {a.refusal_rate:.2%}  ({a.questions} questions, {a.seconds_per_answer:.2f} s each); "
            f"refused {a.refusal_when_removed or 0:.2%} of {a.removed_questions} questions whose paragraph "
            "was left out of the index"
        )
