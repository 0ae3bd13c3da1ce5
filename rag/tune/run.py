"""``rag tune`` end to end over one index: pairs -> held-out split -> hard negatives -> training -> scores before and
after on the held-out pairs -> (``apply``, when better by ``margin``) the tuned model committed as a new generation.

The gate must predict the questions that will be asked, so the held-out pairs are real ones wherever there are
some: the user's (``--pairs``, or its ``dev`` split), or questions recorded in real use with helpful answers
(``--from-use``; and for generated or cloze training pairs, the recorded questions when there are any). A model
gated only on proxy pairs (generated or cloze held-out) is reported, never applied, unless ``accept_proxy``: on
SciFact such a gate said better while the corpus's real questions got worse (``PROXY_WARNING``).

Nothing on disk changes unless the tuned model is better, ``apply`` is set and the gate was real (or accepted)."""

from __future__ import annotations

import dataclasses
import logging
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.answer.generators.base import Generator
from rag.embed.base import Embedder
from rag.errors import ModelLoadError, RagError
from rag.index.folder import IndexDir, Snapshot
from rag.index.questions import QuestionLog
from rag.index.store import ChunkStore
from rag.tune import pairs as pair_sources
from rag.tune.apply import commit_tuned, embed_all
from rag.tune.negatives import mine
from rag.tune.pairs import CLOZE, GENERATED, GIVEN, RECORDED, Pair, is_proxy, pairs_hash
from rag.tune.score import chunk_documents, score
from rag.tune.train import TrainSettings, train
from rag.types import Chunk, TuneReport, TuneScores

log = logging.getLogger(__name__)

FILTER_DEPTH = 20  # a generated question must retrieve its own chunk in this many (BM25 or dense)
MIN_PAIRS = 8
MIN_RECORDED_GATE = 5  # recorded helpful questions needed to gate proxy-trained pairs on them instead
RECORDED_HELD_OUT = 0.25  # share of the recorded questions held out by --from-use (at least --held-out)
DEV = "dev"  # the held-out kind of a BEIR folder's dev split
PROXY_WARNING = (
    "proxy pairs do not predict real questions: on SciFact (MiniLM, 1,759 written and cloze pairs) the proxy "
    "held-out said dense nDCG@10 0.846 -> 0.878, hybrid 0.919 -> 0.941, while the corpus's real questions went "
    "dense 0.672 -> 0.652 and hybrid 0.728 -> 0.720"
)


@dataclass(frozen=True)
class TuneOptions:
    """What ``rag tune`` is asked to do (see ``rag tune --help``)."""

    pairs_file: Path | None = None
    pairs_from: str = "auto"  # auto, generated or cloze (when no pairs_file)
    max_pairs: int = 2000
    per_chunk: int = 2  # generated questions asked per chunk
    generate_minutes: float = 6.0  # the question generator's time budget
    held_out: float = 0.1  # share of the pairs kept for scoring (when no dev split is given)
    margin: float = 0.005  # dense nDCG@10 gain on the held-out pairs needed to keep the tuned model
    apply: bool = False
    accept_proxy: bool = False  # apply a model gated on proxy pairs only (generated / cloze held-out)
    from_use: bool = False  # train on recorded questions with helpful answers (record_questions)
    seed: int = 0
    quiet: bool = False
    train: TrainSettings = field(default_factory=TrainSettings)

    @classmethod
    def from_settings(cls, settings: dict[str, Any], quiet: bool = False) -> TuneOptions:
        """Options from flat names: the fields of ``TuneOptions`` and of its ``TrainSettings`` (``epochs=``...)."""
        train_names = {f.name for f in dataclasses.fields(TrainSettings)}
        train = TrainSettings(**{k: v for k, v in settings.items() if k in train_names})
        for name in ("epochs", "learning_rate"):
            if getattr(train, name) < 0:
                flag = name.replace("_", "-")
                raise RagError(f"--{flag} {getattr(train, name)}: must be positive (or 0 for the recipe)")
        rest = {k: v for k, v in settings.items() if k not in train_names}
        return cls(**{"quiet": quiet, **rest, "train": train})


@dataclass
class _Pairs:
    train: list[Pair]
    held: list[Pair]
    source: str
    written: int = 0
    held_source: str = ""  # the kind of the held-out pairs (the training pairs' when empty)

    @property
    def gate(self) -> str:
        return self.held_source or self.source


def tune(
    index_dir: IndexDir,
    snapshot: Snapshot,
    embedder: Embedder,
    generator: Callable[[], Generator | None],
    tuned_embedder: Callable[..., Embedder],
    options: TuneOptions,
) -> tuple[TuneReport, Embedder | None]:
    """Tune ``embedder`` (the index's) on ``snapshot``'s documents. ``tuned_embedder(folder, model_id)`` loads a
    saved tuned model as an embedder (``scratch=True``: a temporary copy, scored before it is kept). Returns the
    report and, when applied, the embedder now serving the index."""
    started = time.monotonic()
    model = embedder.trainable()
    if model is None:
        raise RagError(f"cannot tune the index {index_dir.path}: {embedder.untrainable_reason()}")
    manifest = snapshot.manifest
    base_model = str((manifest.get("tuned") or {}).get("base") or manifest["embedder"])
    docs = chunk_documents(snapshot.store)
    if not docs:
        raise RagError(f"the index {index_dir.path} has no chunks to tune on; ingest documents first")
    chosen = _pairs(index_dir, snapshot, embedder, generator, options)
    if len(chosen.train) < MIN_PAIRS or not chosen.held:
        more = (
            "record more questions (record_questions = true) and mark helpful answers"
            if chosen.source == RECORDED
            else "give more with --pairs FILE or ingest more documents"
        )
        raise RagError(
            f"only {len(chosen.train)} training and {len(chosen.held)} held-out pairs ({chosen.source}): too few to "
            f"tune on (need {MIN_PAIRS}+ and 1+); {more}"
        )
    log.info("tune: %d training pairs (%s), %d held out (%s)", len(chosen.train), chosen.source, len(chosen.held),
             chosen.gate)  # fmt: skip
    negatives = _negatives(snapshot, embedder, chosen.train, docs, options.seed)
    before = score(snapshot, embedder, chosen.held)
    settings = options.train.recipe(given=chosen.source in (GIVEN, RECORDED))
    result = train(
        model,
        [(p.query, p.passage, n) for p, n in zip(chosen.train, negatives, strict=True)],
        settings,
        quiet=options.quiet,
    )
    with tempfile.TemporaryDirectory(prefix="rag-tuned-") as scratch:
        model.save(scratch)
        del model
        candidate = tuned_embedder(scratch, f"{base_model}+tuned", scratch=True)
        vectors = embed_all(snapshot.store, candidate, quiet=options.quiet)
        after = score(Snapshot(manifest, snapshot.store, vectors), candidate, chosen.held)
        better = after.ndcg_at_10 >= before.ndcg_at_10 + options.margin and (
            after.hybrid_ndcg_at_10 >= before.hybrid_ndcg_at_10 + min(0.0, options.margin)
        )
        proxy_gate = is_proxy(chosen.gate)
        reason = _verdict(before, after, better, options, chosen.gate if proxy_gate else "")
        applied, model_id, generation, serving = False, "", 0, None
        if better and options.apply and (options.accept_proxy or not proxy_gate):
            tuned = {
                "base": base_model,
                "trained_from": str(manifest["embedder"]),
                "pairs_hash": pairs_hash(chosen.train),
                "pairs_source": chosen.source,
                "pairs": len(chosen.train),
                "held_out": len(chosen.held),
                "held_out_source": chosen.gate,
                "settings": {**settings.manifest(), "steps": result.steps, "precision": result.precision},
                "scores": {"before": _scores(before), "after": _scores(after)},
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            model_id = f"{base_model}+tuned.{int(manifest['generation']) + 1}"

            def reembed(store: ChunkStore) -> Any:
                return embed_all(store, candidate, quiet=options.quiet)

            committed = commit_tuned(index_dir, Path(scratch), vectors, snapshot.generation, reembed, tuned, model_id)
            generation = int(committed["generation"])
            # the committed model_id names the generation the writer actually made
            serving = tuned_embedder(str(index_dir.path / committed["tuned"]["folder"]), str(committed["embedder"]))
            model_id = str(committed["embedder"])
            applied = True
    report = TuneReport(
        base_model=base_model,
        pairs_source=chosen.source,
        pairs=len(chosen.train),
        held_out=len(chosen.held),
        questions_written=chosen.written,
        steps=result.steps,
        epochs=result.epochs,
        train_seconds=result.seconds,
        seconds=time.monotonic() - started,
        before=before,
        after=after,
        better=better,
        applied=applied,
        reason=reason,
        model=model_id,
        generation=generation,
        learning_rate=settings.learning_rate,
        held_out_source=chosen.gate,
        proxy_gate=proxy_gate,
    )
    return report, serving


def _scores(s: TuneScores) -> dict[str, float]:
    return {
        "ndcg_at_10": round(s.ndcg_at_10, 4),
        "recall_at_10": round(s.recall_at_10, 4),
        "hybrid_ndcg_at_10": round(s.hybrid_ndcg_at_10, 4),
        "hybrid_recall_at_10": round(s.hybrid_recall_at_10, 4),
    }


def _verdict(before: TuneScores, after: TuneScores, better: bool, options: TuneOptions, proxy: str = "") -> str:
    """What the scores say and what was done. ``proxy``: the held-out pairs' kind when they are only a proxy."""
    change = (
        f"held-out dense nDCG@10 {before.ndcg_at_10:.3f} -> {after.ndcg_at_10:.3f}, "
        f"hybrid {before.hybrid_ndcg_at_10:.3f} -> {after.hybrid_ndcg_at_10:.3f}"
    )
    caveat = ""
    if proxy:
        change = change.replace("held-out", f"held-out {proxy} pairs (a proxy):", 1)
        caveat = (
            f". Warning: {PROXY_WARNING}. To gate on real questions, give your own with --pairs FILE, or record them "
            "(record_questions = true, helpful answers) and run rag tune --from-use"
        )
    if not better:
        return f"{change}: not better by {options.margin} (and hybrid not worse); the index is unchanged{caveat}"
    if proxy and not options.accept_proxy:
        how = "--apply --accept-proxy" if options.apply else "add --apply --accept-proxy"
        return f"{change}: better on proxy pairs only, so not applied (the index is unchanged; {how} to apply){caveat}"
    if not options.apply:
        return f"{change}: better; run again with --apply to re-embed the index with the tuned model{caveat}"
    return f"{change}: better; applied{caveat}"


# -- pairs ------------------------------------------------------------------------------------------------------
def _pairs(
    index_dir: IndexDir,
    snapshot: Snapshot,
    embedder: Embedder,
    generator: Callable[[], Generator | None],
    options: TuneOptions,
) -> _Pairs:
    if options.from_use and options.pairs_file is not None:
        raise RagError("--from-use trains on recorded questions; it takes no --pairs file (use one or the other)")
    if options.pairs_file is not None:
        known = {d.path for d in snapshot.store.documents()}
        train_pairs, dev = pair_sources.read_given(options.pairs_file, _locator(snapshot, embedder), known)
        if dev is not None:
            return _Pairs(train_pairs[: options.max_pairs], dev, GIVEN, held_source=DEV)
        train_pairs, held = _split(train_pairs, options)
        return _Pairs(train_pairs, held, GIVEN)
    use = pair_sources.recorded(QuestionLog(index_dir.path).helpful(), snapshot.store)
    if options.from_use:
        if not use:
            raise RagError(
                f"--from-use: no recorded question with a helpful answer in {index_dir.path}; set "
                "record_questions = true, ask (rag ask, rag serve, the page, MCP) and mark helpful answers "
                "(POST /feedback or the page's buttons)"
            )
        train_pairs, held = _split_by_query(use, max(options.held_out, RECORDED_HELD_OUT), options)
        return _Pairs(train_pairs, held, RECORDED)
    made = _proxy_pairs(snapshot, embedder, generator, options)
    if len(pair_sources.grouped_queries(use)) >= MIN_RECORDED_GATE:
        # real questions make the better gate: the proxy pairs all train, the recorded questions judge
        made.train = (made.train + made.held)[: options.max_pairs]
        made.held, made.held_source = use, RECORDED
    return made


def _proxy_pairs(
    snapshot: Snapshot, embedder: Embedder, generator: Callable[[], Generator | None], options: TuneOptions
) -> _Pairs:
    if options.pairs_from not in pair_sources.SOURCES:
        raise RagError(f"--pairs-from {options.pairs_from!r}; choose one of {', '.join(pair_sources.SOURCES)}")
    wanted = int(options.max_pairs / (1 - options.held_out)) + 1
    chunks = pair_sources.sample_chunks(snapshot.store, wanted, options.seed)
    made: list[Pair] = []
    written = 0
    source = CLOZE
    if options.pairs_from in ("auto", GENERATED):
        gen = _generator(generator, options.pairs_from == GENERATED)
        if gen is not None:
            per_chunk = max(1, options.per_chunk)
            made, written = _generate(snapshot, embedder, gen, chunks[: wanted // per_chunk + 1], per_chunk, options)
            source = GENERATED
            used = {p.chunk_id for p in made}
            chunks = [c for c in chunks if c.id not in used]
    if len(made) < wanted and options.pairs_from != GENERATED:
        cloze = pair_sources.inverse_cloze(chunks, options.seed)[: wanted - len(made)]
        if made and cloze:
            source = f"{GENERATED}+{CLOZE}"
        made += cloze
    train_pairs, held = _split(made, options)
    return _Pairs(train_pairs, held, source, written)


def _generator(factory: Callable[[], Generator | None], required: bool) -> Generator | None:
    """The configured generator when it has a chat model; None (inverse cloze instead) otherwise."""
    try:
        gen = factory()
        if gen is not None:
            gen.load()
    except ModelLoadError as exc:
        if required:
            raise
        log.warning("no generator for questions (%s); using inverse-cloze pairs", exc)
        return None
    if gen is None or type(gen).chat is Generator.chat:
        if required:
            raise RagError("--pairs-from generated needs a generator with a chat model (the default local one)")
        log.info("the generator has no chat model; using inverse-cloze pairs")
        return None
    return gen


def _generate(
    snapshot: Snapshot, embedder: Embedder, gen: Generator, chunks: list[Chunk], per_chunk: int, options: TuneOptions
) -> tuple[list[Pair], int]:
    from tqdm import tqdm

    def accept(question: str, chunk: Chunk) -> bool:
        lexical = {cid for cid, _ in snapshot.store.lexical_search(question, FILTER_DEPTH)}
        if chunk.id in lexical:
            return True
        _, ids = snapshot.vectors.search(embedder.embed_queries([question]), FILTER_DEPTH)
        return chunk.id in {int(i) for i in ids[0]}

    deadline = time.monotonic() + options.generate_minutes * 60 if options.generate_minutes else None
    with tqdm(total=len(chunks), unit="chunk", desc="questions", disable=options.quiet or None, leave=False) as bar:
        return pair_sources.generated(
            chunks, gen.chat, accept, per_chunk=per_chunk, deadline=deadline, progress=bar.update
        )


def _negatives(snapshot: Snapshot, embedder: Embedder, pairs: list[Pair], docs: dict[int, str], seed: int) -> list[str]:
    """One hard negative per pair: the pair's own (``negative_id``, a recorded question's passage retrieved but not
    cited) where it has one still stored, else one mined from the index."""
    mined = mine(snapshot, embedder, pairs, docs, seed=seed)
    own = snapshot.store.chunks_by_ids({p.negative_id for p in pairs if p.negative_id is not None})
    return [own[p.negative_id].text if p.negative_id in own else m for p, m in zip(pairs, mined, strict=True)]


def _split_by_query(pairs: list[Pair], share: float, options: TuneOptions) -> tuple[list[Pair], list[Pair]]:
    """A held-out ``share`` of the questions (all the pairs of a question on one side), the rest capped at
    ``max_pairs``. Recorded questions are split by question, not by document: real questions ask about the same
    documents again, and the gate should see that."""
    queries = sorted(pair_sources.grouped_queries(pairs))
    random.Random(options.seed).shuffle(queries)
    held_queries = set(queries[: max(1, round(len(queries) * share))]) if len(queries) > 1 else set()
    held = [p for p in pairs if p.query in held_queries]
    train_pairs = [p for p in pairs if p.query not in held_queries]
    return train_pairs[: options.max_pairs], held


def _split(pairs: list[Pair], options: TuneOptions) -> tuple[list[Pair], list[Pair]]:
    """A held-out share of the pairs' documents (so no held-out query's passage was trained on), the rest capped at
    ``max_pairs``."""
    by_doc: dict[str, list[Pair]] = {}
    for p in pairs:
        by_doc.setdefault(p.doc, []).append(p)
    keys = sorted(by_doc)
    random.Random(options.seed).shuffle(keys)
    target = max(1, round(len(pairs) * options.held_out)) if len(pairs) > 1 else 0
    held: list[Pair] = []
    train_pairs: list[Pair] = []
    for key in keys:
        (held if len(held) < target else train_pairs).extend(by_doc[key])
    return train_pairs[: options.max_pairs], held


def _locator(snapshot: Snapshot, embedder: Embedder) -> Callable[[list[str]], list[str]]:
    """Passages -> the document of the nearest stored chunk (for user pairs that do not name one)."""
    docs = chunk_documents(snapshot.store)

    def locate(passages: list[str]) -> list[str]:
        if not passages:
            return []
        _, ids = snapshot.vectors.search(embedder.embed_documents(passages), 1)
        return [docs.get(int(row[0]), "") for row in ids]

    return locate
