"""Retrieval and answer quality over BEIR-layout folders (corpus.jsonl, queries.jsonl, qrels/*.tsv,
optional qa.jsonl). Metrics are our own code: nDCG@10, Recall@k, MRR@10 with binary relevance; answer EM
and F1 with SQuAD v1.1 normalisation for English and character level for Chinese."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
import string
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.config import RagConfig
from rag.errors import RagError
from rag.text.langdetect import detect_language
from rag.types import Document

DOC_PREFIX = "beir:"


# -- metrics ------------------------------------------------------------------------------------------
def ndcg_at_k(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    """Binary-relevance nDCG@k: DCG of the ranking over the DCG of a perfect one."""
    dcg = sum(1.0 / math.log2(i + 2) for i, doc in enumerate(ranked[:k]) if doc in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def recall_at_k(ranked: list[str], relevant: set[str], k: int) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    for i, doc in enumerate(ranked[:k]):
        if doc in relevant:
            return 1.0 / (i + 1)
    return 0.0


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)
_CITATION = re.compile(r"\s*\[\d{1,3}\]")


def normalize_en(text: str) -> str:
    """SQuAD v1.1: lower-case, drop punctuation, drop a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_zh(text: str) -> str:
    """Chinese: lower-case, drop punctuation (ASCII and Unicode) and all whitespace."""
    return "".join(
        ch
        for ch in text.lower()
        if not ch.isspace() and not unicodedata.category(ch).startswith("P") and ch not in _PUNCT
    )


def _f1(pred: list[str], gold: list[str]) -> float:
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, answers: list[str], language: str) -> float:
    norm = normalize_zh if language in ("zh", "ja", "ko") else normalize_en
    return max((float(norm(prediction) == norm(a)) for a in answers), default=0.0)


def f1_score(prediction: str, answers: list[str], language: str) -> float:
    """Token F1 (English, SQuAD) or character F1 (Chinese), the best over the reference answers."""
    if language in ("zh", "ja", "ko"):
        return max((_f1(list(normalize_zh(prediction)), list(normalize_zh(a))) for a in answers), default=0.0)
    return max((_f1(normalize_en(prediction).split(), normalize_en(a).split()) for a in answers), default=0.0)


def flatten_answers(answers: list[Any]) -> list[str]:
    out: list[str] = []
    for a in answers:
        out.extend(flatten_answers(a) if isinstance(a, list | tuple) else [str(a)])
    return out


def answer_contained(prediction: str, answers: list[Any], language: str) -> float:
    """1.0 when a reference answer appears in the prediction, after folding case and whitespace (all whitespace
    dropped for CJK); reference lists may be nested."""
    def fold(text: str) -> str:
        text = text.casefold()
        return "".join(text.split()) if language in ("zh", "ja", "ko") else " ".join(text.split())

    said = fold(prediction)
    return max((float(bool(fold(a)) and fold(a) in said) for a in flatten_answers(answers)), default=0.0)


def faithfulness(answer: Any) -> float:
    """Share of the answer's sentences supported by a passage they cite (``Answer.supported``: the cited
    passages against those whose words support the sentence); 0 when no sentence is."""
    sentences = [s for s in answer.supported if s.text.strip()]
    if not sentences:
        return 0.0
    return sum(1 for s in sentences if set(s.cited) & set(s.passages)) / len(sentences)


def strip_citations(text: str) -> str:
    return _CITATION.sub("", text).strip()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


# -- data -----------------------------------------------------------------------------------------------
@dataclass
class BeirSet:
    name: str
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, set[str]]
    qa: list[dict[str, Any]] = field(default_factory=list)

    def documents(self) -> Iterator[Document]:
        for doc_id, (title, text) in self.corpus.items():
            body = f"{title}\n{text}".strip() if title else text  # a title is its own line, as in a file
            yield Document(path=DOC_PREFIX + doc_id, text=body, file_type="beir")


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RagError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc


def load_beir(folder: str | Path, split: str | None = None) -> BeirSet:
    """Read a BEIR folder; ``split`` picks qrels/<split>.tsv (default: test, else the only one)."""
    root = Path(folder)
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (root / name).is_file():
            raise RagError(f"{root} is not a BEIR folder: {name} is missing (need corpus.jsonl, queries.jsonl, qrels/)")
    qrel_files = sorted((root / "qrels").glob("*.tsv"))
    if split:
        chosen = root / "qrels" / f"{split}.tsv"
        if not chosen.is_file():
            raise RagError(f"no qrels/{split}.tsv in {root}; available: {[p.stem for p in qrel_files]}")
    elif (root / "qrels" / "test.tsv").is_file():
        chosen = root / "qrels" / "test.tsv"
    elif len(qrel_files) == 1:
        chosen = qrel_files[0]
    else:
        raise RagError(f"{root}/qrels has {[p.stem for p in qrel_files]}; choose one with --split")
    qrels: dict[str, set[str]] = {}
    with open(chosen, encoding="utf-8") as fh:
        for number, line in enumerate(fh):
            parts = line.rstrip("\n").split("\t")
            if number == 0 and parts[0] in ("query-id", "query_id", "qid"):
                continue
            if len(parts) >= 3 and float(parts[2]) > 0:
                qrels.setdefault(parts[0], set()).add(parts[1])
    corpus = {str(d["_id"]): (d.get("title") or "", d.get("text") or "") for d in _read_jsonl(root / "corpus.jsonl")}
    queries = {
        str(q["_id"]): q["text"]
        for q in _read_jsonl(root / "queries.jsonl")
        if str(q["_id"]) in qrels and str(q.get("text") or "").strip()  # a few sets hold empty queries
    }
    qa = list(_read_jsonl(root / "qa.jsonl")) if (root / "qa.jsonl").is_file() else []
    name = (
        root.name
        if root.name not in ("beir_en", "beir_zh", "beir_dev", "beir_trial")
        else (f"{root.parent.name}/{root.name}")
    )
    return BeirSet(name, corpus, queries, qrels, qa)


# -- evaluation -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetrievalScores:
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    latency_p50_ms: float
    latency_p95_ms: float
    queries: int
    # mean per query, embedded in batches before the timed searches (latency_* cover search + fusion + fetch)
    query_embedding_ms: float = 0.0


@dataclass(frozen=True)
class AnswerScores:
    exact_match: float
    f1: float
    citation_accuracy: float  # share of answered questions whose first cited passage holds the answer
    refusal_rate: float
    questions: int
    seconds_per_answer: float
    # share refused of questions whose answer paragraph was left out of the index (None: not measured)
    refusal_when_removed: float | None = None
    removed_questions: int = 0
    answer_contained: float = 0.0  # share of questions whose answer text contains a reference answer
    faithfulness: float = 0.0  # mean, over answered questions, of the share of sentences their citations support


@dataclass(frozen=True)
class EvalReport:
    dataset: str
    documents: int
    chunks: int
    embedder: str
    retrieval: str
    rerank: str | None
    index_seconds: float
    scores: RetrievalScores
    answers: AnswerScores | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_index(data: BeirSet, config: RagConfig, **pipeline_args: Any) -> tuple[Any, float]:
    """A pipeline over a fresh index of ``data``'s corpus in ``config.index``."""
    from rag.pipeline import RagPipeline

    pipeline = RagPipeline(config, **pipeline_args)
    t0 = time.perf_counter()
    pipeline.ingest_documents(data.documents(), total=len(data.corpus))
    return pipeline, time.perf_counter() - t0


def score_retrieval(pipeline: Any, data: BeirSet, max_queries: int | None = None) -> RetrievalScores:
    """Documents ranked by their best chunk, from the pipeline's current retrieval settings."""
    ndcg, r10, r100, mrr, latency = [], [], [], [], []
    items = list(data.queries.items())[: max_queries or None]
    t0 = time.perf_counter()
    pipeline.prime_queries([text for _, text in items])  # batched query embedding; latency below is search only
    embed_ms = (time.perf_counter() - t0) * 1000 / max(1, len(items))
    for qid, text in items:
        t0 = time.perf_counter()
        hits = pipeline.retrieve(text, k=300)
        latency.append((time.perf_counter() - t0) * 1000)
        ranked = list(dict.fromkeys(h.chunk.source.removeprefix(DOC_PREFIX) for h in hits))
        relevant = data.qrels[qid]
        ndcg.append(ndcg_at_k(ranked, relevant, 10))
        r10.append(recall_at_k(ranked, relevant, 10))
        r100.append(recall_at_k(ranked, relevant, 100))
        mrr.append(mrr_at_k(ranked, relevant, 10))
    mean = statistics.fmean if items else (lambda _: 0.0)
    return RetrievalScores(
        ndcg_at_10=mean(ndcg),
        recall_at_10=mean(r10),
        recall_at_100=mean(r100),
        mrr_at_10=mean(mrr),
        latency_p50_ms=percentile(latency, 50),
        latency_p95_ms=percentile(latency, 95),
        queries=len(items),
        query_embedding_ms=embed_ms,
    )


def score_answers(pipeline: Any, data: BeirSet, limit: int) -> AnswerScores | None:
    """EM/F1 of ``pipeline.ask`` on the first ``limit`` questions of qa.jsonl (spread over the file)."""
    if not data.qa or limit <= 0:
        return None
    step = max(1, len(data.qa) // limit)
    sample = data.qa[::step][:limit]
    em, f1, cited_ok, refused, seconds, contained, faithful = [], [], [], 0, [], [], []
    for item in sample:
        t0 = time.perf_counter()
        answer = pipeline.ask(item["question"])
        seconds.append(time.perf_counter() - t0)
        language = detect_language(item["question"])
        if answer.refused:
            refused += 1
            em.append(0.0)
            f1.append(0.0)
            contained.append(0.0)
            continue
        prediction = strip_citations(answer.text)
        references = flatten_answers(item["answers"])
        em.append(exact_match(prediction, references, language))
        f1.append(f1_score(prediction, references, language))
        contained.append(answer_contained(prediction, references, language))
        faithful.append(faithfulness(answer))
        first = answer.citations[0] if answer.citations else None
        cited_ok.append(float(first is not None and any(a in first.text for a in references)))
    return AnswerScores(
        exact_match=statistics.fmean(em),
        f1=statistics.fmean(f1),
        citation_accuracy=statistics.fmean(cited_ok) if cited_ok else 0.0,
        refusal_rate=refused / len(sample),
        questions=len(sample),
        seconds_per_answer=statistics.fmean(seconds),
        answer_contained=statistics.fmean(contained),
        faithfulness=statistics.fmean(faithful) if faithful else 0.0,
    )


def held_out(data: BeirSet, every: int = 10) -> set[str]:
    """Every ``every``-th answer paragraph of qa.jsonl (by first appearance): left out to test refusals."""
    contexts = list(dict.fromkeys(str(item["context_id"]) for item in data.qa if item.get("context_id")))
    return set(contexts[::every])


def score_removed(data: BeirSet, config: RagConfig, limit: int, **pipeline_args: Any) -> tuple[float, int]:
    """Refusal rate on questions whose answer paragraph is not in the index (a second, smaller index)."""
    removed = held_out(data)
    questions = [item for item in data.qa if str(item.get("context_id")) in removed][:limit]
    if not questions:
        return 0.0, 0
    kept = BeirSet(data.name, {k: v for k, v in data.corpus.items() if k not in removed}, {}, {}, [])
    with tempfile.TemporaryDirectory(prefix="rag-eval-removed-") as tmp:
        pipeline, _ = build_index(kept, config.replace(index=Path(tmp) / "index"), **pipeline_args)
        try:
            refused = sum(1 for item in questions if pipeline.ask(item["question"]).refused)
        finally:
            pipeline.close()
    return refused / len(questions), len(questions)


def evaluate(
    folder: str | Path,
    config: RagConfig,
    *,
    split: str | None = None,
    max_queries: int | None = None,
    qa_limit: int = 0,
    **pipeline_args: Any,
) -> EvalReport:
    """Build a temporary index of the set's corpus with ``config``'s settings and score it."""
    data = load_beir(folder, split)
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        pipeline, index_seconds = build_index(data, config.replace(index=Path(tmp) / "index"), **pipeline_args)
        try:
            info = pipeline.info()
            scores = score_retrieval(pipeline, data, max_queries)
            answers = score_answers(pipeline, data, qa_limit)
        finally:
            pipeline.close()
    if answers is not None:
        rate, n = score_removed(data, config, qa_limit, **pipeline_args)
        answers = dataclasses.replace(answers, refusal_when_removed=rate, removed_questions=n)
    return EvalReport(
        dataset=data.name,
        documents=info.documents,
        chunks=info.chunks,
        embedder=info.embedder,
        retrieval=config.retrieve.retrieval,
        rerank=config.retrieve.rerank,
        index_seconds=index_seconds,
        scores=scores,
        answers=answers,
    )
