"""Training pairs for ``rag tune``: (query, positive passage, the positive's document), from one of three sources.

In order of preference:

- ``given``: the user's pairs, a JSONL file of ``{"query", "passage"}`` (optionally ``"path"``: the stored document
  the passage comes from) or a BEIR folder (queries + qrels; passages from its corpus; a ``dev`` qrels split, when
  there is one next to the training split, is the held-out set);
- ``generated``: questions the local generator writes for sampled chunks, one or two per chunk in the chunk's
  language, kept only when the question retrieves its own chunk in the top 20 with BM25 or the current embedder
  (the InPars/GPL filter);
- ``cloze``: the inverse cloze task (ORQA): one sentence of a chunk is the query, the rest of the chunk the passage;
- ``recorded`` (``rag tune --from-use``): questions asked in real use (setting ``record_questions``) whose answer
  was marked helpful: each cited passage a positive, a passage retrieved but not cited (of another document) its
  hard negative.

Generated and cloze pairs are a proxy: they do not predict real questions (``PROXY``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError
from rag.index.questions import RecordedQuestion
from rag.index.store import ChunkStore
from rag.text.langdetect import cjk_ratio, is_cjk_language
from rag.text.sentences import split_sentences
from rag.types import Chunk

log = logging.getLogger(__name__)

GIVEN, GENERATED, CLOZE, RECORDED = "given", "generated", "cloze", "recorded"
SOURCES = ("auto", GENERATED, CLOZE)  # what --pairs-from may ask when no --pairs file is given
MIN_WORDS = 4  # a cloze query or generated question shorter than this (words; CJK: characters / 2) is dropped
QUESTION_TOKENS = 48
BEIR_PREFIX = "beir:"  # the stored path of a BEIR document ingested by `rag eval` (rag.evaluation.DOC_PREFIX)


@dataclass(frozen=True)
class Pair:
    """One training or evaluation example: ``query`` should retrieve ``passage``, which belongs to document
    ``doc`` (a stored path: relevance in the evaluation, excluded from the hard negatives)."""

    query: str
    passage: str
    doc: str
    chunk_id: int | None = None
    negative_id: int | None = None  # a chunk known not to answer ``query`` (recorded: retrieved, not cited)


def is_proxy(source: str) -> bool:
    """Whether pairs of ``source`` are a proxy for real questions (generated, cloze, or both)."""
    return bool(source) and all(part in (GENERATED, CLOZE) for part in source.split("+"))


def pairs_hash(pairs: Iterable[Pair]) -> str:
    """A short digest of the pairs (recorded in the manifest with the tuned model)."""
    digest = hashlib.sha256()
    for p in pairs:
        digest.update(f"{p.query}\x1f{p.passage}\x1f{p.doc}\x1e".encode())
    return digest.hexdigest()[:16]


def _long_enough(text: str) -> bool:
    words = len(text.split()) if cjk_ratio(text) < 0.3 else len(text) // 2
    return words >= MIN_WORDS


# -- chunks -----------------------------------------------------------------------------------------------------
def sample_chunks(store: ChunkStore, n: int, seed: int = 0) -> list[Chunk]:
    """Up to ``n`` chunks drawn at random (seeded) from the store, in id order."""
    ids = store.chunk_ids()
    chosen = sorted(random.Random(seed).sample(ids, min(n, len(ids))))
    found = store.chunks_by_ids(chosen)
    return [found[i] for i in chosen if i in found]


# -- inverse cloze ----------------------------------------------------------------------------------------------
def inverse_cloze(chunks: list[Chunk], seed: int = 0) -> list[Pair]:
    """One pair per chunk of two or more sentences: a random sentence (long enough) as the query, the chunk without
    it as the passage (ORQA removes it so the model learns more than word overlap)."""
    rng = random.Random(seed)
    out: list[Pair] = []
    for chunk in chunks:
        parts = split_sentences(chunk.text)
        candidates = [i for i, s in enumerate(parts) if _long_enough(s)]
        if len(parts) < 2 or not candidates:
            continue
        pick = rng.choice(candidates)
        query = parts[pick]
        rest = " ".join(s for i, s in enumerate(parts) if i != pick)
        out.append(Pair(query, rest, chunk.source, chunk.id))
    return out


# -- generated questions ----------------------------------------------------------------------------------------
def question_messages(passage: str, language: str, n: int) -> list[dict[str, str]]:
    """The prompt that asks for ``n`` questions the passage answers, in the passage's language."""
    if is_cjk_language(language):
        system = "你为检索系统编写用户问题。只输出问题，每行一个，不要编号，不要解释。"
        user = f"段落：\n{passage}\n\n写{n}个用中文提出的、这段文字能回答的具体问题。"
    else:
        system = "You write search questions for a retrieval system. Output only the questions, one per line."
        user = (
            f"Passage:\n{passage}\n\nWrite {n} specific question{'s' if n > 1 else ''} in the passage's language that "
            "this passage answers. No numbering, no explanations."
        )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_NUMBERING = re.compile(r"^\s*(?:[-*•]|\d+[.)、:]|Q\d*[:.]|问题\d*[:：])\s*", re.IGNORECASE)
# A question ends at its question mark: the 0.5B often writes several on one line ("What is X? What is Y?").
_QUESTION_END = re.compile(r"(?<=[?？])\s*")
# A question about "the passage" or "the study" is no search query: nobody searching knows the text it asks about.
_META = re.compile(
    r"\b(?:the|this|that)\s+(?:passage|text|article|paragraph|study|studies|paper|abstract|document)s?\b"
    r"|段落|这段|本段|文中|本文|该文|这篇|文章中",
    re.IGNORECASE,
)
SIMILAR = 0.6  # a question sharing this share of its words with one kept before it is a near repeat, dropped


def parse_questions(reply: str, n: int) -> list[str]:
    """The first ``n`` distinct questions of a generator's reply: split at line breaks and question marks,
    numbering and quotes removed; a question cut off by the token limit (no question mark after the first), one
    about "the passage"/"the study" (``_META``), and a near repeat of one already kept are dropped."""
    out: list[str] = []
    pieces = [p for line in reply.splitlines() for p in _QUESTION_END.split(line)]
    asks = any(p.rstrip().endswith(("?", "？")) for p in pieces)
    for piece in pieces:
        text = _NUMBERING.sub("", piece).strip().strip("\"'“”").strip()
        if not text or not _long_enough(text) or _META.search(text):
            continue
        if asks and not text.endswith(("?", "？")):
            continue  # the reply writes questions, and this one was cut off (or is not one)
        if any(_similar(text, kept) for kept in out):
            continue
        out.append(text)
        if len(out) == n:
            break
    return out


def _similar(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` share ``SIMILAR`` of the words (CJK: characters) of the shorter one."""
    wa, wb = (set(x) if cjk_ratio(x) >= 0.3 else set(x.lower().split()) for x in (a, b))
    return bool(wa and wb) and len(wa & wb) / min(len(wa), len(wb)) >= SIMILAR


def generated(
    chunks: list[Chunk],
    chat: Callable[[list[dict[str, str]], int], str | None],
    accept: Callable[[str, Chunk], bool],
    *,
    per_chunk: int = 2,
    deadline: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Pair], int]:
    """Questions ``chat`` writes for ``chunks`` (``per_chunk`` each), kept when ``accept(question, chunk)``: the
    pairs and how many questions were written. Stops at ``deadline`` (``time.monotonic()``)."""
    out: list[Pair] = []
    written = 0
    for chunk in chunks:
        if deadline is not None and time.monotonic() > deadline:
            log.info("question generation stopped at its time budget after %d chunks", written)
            break
        language = str(chunk.metadata.get("language") or "en")
        reply = chat(question_messages(chunk.text, language, per_chunk), QUESTION_TOKENS * per_chunk)
        if reply is None:
            raise RagError("the generator has no chat model to write questions with")
        for question in parse_questions(reply, per_chunk):
            written += 1
            if accept(question, chunk):
                out.append(Pair(question, chunk.text, chunk.source, chunk.id))
        if progress:
            progress(1)
    return out, written


def grouped_queries(pairs: Iterable[Pair]) -> dict[str, list[Pair]]:
    """Query -> its pairs, in first-seen order."""
    out: dict[str, list[Pair]] = {}
    for p in pairs:
        out.setdefault(p.query, []).append(p)
    return out


# -- recorded questions ---------------------------------------------------------------------------------------
def recorded(questions: Iterable[RecordedQuestion], store: ChunkStore) -> list[Pair]:
    """Pairs from questions asked in real use whose answer helped: one per cited chunk still stored (the question
    searched as the query), with a chunk retrieved but not cited, of a document none of the cited ones belong to,
    as its negative (None when there is none)."""
    out: list[Pair] = []
    gone = 0
    for q in questions:
        chunks = store.chunks_by_ids([*q.cited, *q.retrieved])
        cited = [c for c in q.cited if c in chunks]
        gone += len(q.cited) - len(cited)
        cited_docs = {chunks[c].source for c in cited}
        negatives = [r for r in q.retrieved if r in chunks and r not in q.cited and chunks[r].source not in cited_docs]
        for i, cid in enumerate(cited):
            negative = negatives[i % len(negatives)] if negatives else None
            out.append(Pair(q.searched, chunks[cid].text, chunks[cid].source, cid, negative))
    if gone:
        log.info("%d cited passages of recorded questions are no longer in the index (changed documents)", gone)
    return out


# -- the user's pairs -------------------------------------------------------------------------------------------
def read_given(
    path: Path, locate: Callable[[list[str]], list[str]], known: set[str]
) -> tuple[list[Pair], list[Pair] | None]:
    """The user's pairs from ``path`` (JSONL or a BEIR folder): training pairs and, for a BEIR folder with a
    ``dev`` split beside its training split, the held-out pairs. ``locate`` maps passages to the stored documents
    that hold them (used where the file does not say, or names a document the index lacks); ``known``: the
    stored document paths."""
    if path.is_dir():
        return _read_beir(path, locate, known)
    if not path.is_file():
        raise RagError(
            f"--pairs {path}: no such file or folder (give a JSONL file of {{query, passage}} or a BEIR folder)"
        )
    rows: list[tuple[str, str, str | None]] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                query, passage = str(record["query"]).strip(), str(record["passage"]).strip()
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise RagError(f'{path}:{number}: expected a JSON object with "query" and "passage" ({exc})') from exc
            if query and passage:
                doc = record.get("path") or record.get("doc")
                rows.append((query, passage, str(doc) if doc else None))
    if not rows:
        raise RagError(f'{path} holds no pairs: one JSON object a line, {{"query": ..., "passage": ...}}')
    return _with_docs(rows, locate, known), None


def _with_docs(
    rows: list[tuple[str, str, str | None]], locate: Callable[[list[str]], list[str]], known: set[str]
) -> list[Pair]:
    unknown = [i for i, (_, _, doc) in enumerate(rows) if doc not in known]
    found = dict(zip(unknown, locate([rows[i][1] for i in unknown]), strict=True)) if unknown else {}
    return [Pair(q, p, found.get(i, d or "")) for i, (q, p, d) in enumerate(rows)]


def _read_beir(
    root: Path, locate: Callable[[list[str]], list[str]], known: set[str]
) -> tuple[list[Pair], list[Pair] | None]:
    qrel_dir = root / "qrels"
    splits = {p.stem: p for p in sorted(qrel_dir.glob("*.tsv"))} if qrel_dir.is_dir() else {}
    if not (root / "corpus.jsonl").is_file() or not (root / "queries.jsonl").is_file() or not splits:
        raise RagError(f"--pairs {root} is not a BEIR folder: need corpus.jsonl, queries.jsonl and qrels/*.tsv")
    train_name = next((s for s in ("train", "test") if s in splits), next(iter(splits)))
    dev_name = "dev" if "dev" in splits and train_name != "dev" else None
    corpus: dict[str, str] = {}
    with open(root / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                corpus[str(d["_id"])] = f"{d.get('title') or ''} {d.get('text') or ''}".strip()
    queries: dict[str, str] = {}
    with open(root / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                q = json.loads(line)
                queries[str(q["_id"])] = str(q.get("text") or "").strip()

    def split(name: str) -> list[Pair]:
        rows: list[tuple[str, str, str | None]] = []
        with open(splits[name], encoding="utf-8") as fh:
            for number, line in enumerate(fh):
                parts = line.rstrip("\n").split("\t")
                if number == 0 and parts[0] in ("query-id", "query_id", "qid"):
                    continue
                if len(parts) >= 3 and float(parts[2]) > 0 and queries.get(parts[0]) and parts[1] in corpus:
                    rows.append((queries[parts[0]], corpus[parts[1]], BEIR_PREFIX + parts[1]))
        return _with_docs(rows, locate, known)

    return split(train_name), (split(dev_name) if dev_name else None)
