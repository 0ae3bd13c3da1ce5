"""From retrieved passages and a generator's raw text to an ``Answer``: grounding, citations, refusals, and the
events of a streamed answer. ``RagPipeline.ask`` and ``ask_stream`` share all of it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rag.answer.citations import sentence_support
from rag.answer.echo import trim_echo
from rag.answer.generators.base import GenerationRequest, Generator
from rag.answer.generators.registry import grounding_mode
from rag.answer.grounding import check, ground, question_coverage
from rag.answer.prompting import FACTOID_FORMS, answer_form
from rag.answer.repetition import without_loops
from rag.answer.select import read_first
from rag.answer.shorten import shorten, shorten_messages
from rag.config import AnswerSettings
from rag.text.langdetect import chinese_script
from rag.text.lexical import content_words
from rag.text.paths import display_path
from rag.text.specific import load as load_word_list
from rag.text.specific import specific_words
from rag.types import Answer, Citation, DoneEvent, Hit, PassagesEvent, StreamEvent, TokenEvent

log = logging.getLogger(__name__)

REFUSALS = {
    "en": "I don't know: the documents do not contain an answer to this question.",
    "zh": "我不知道：文档中没有这个问题的答案。",
    "zh-Hant": "我不知道：文件中沒有這個問題的答案。",
    "ja": "わかりません：文書にはこの質問の答えがありません。",
    "ko": "모르겠습니다: 문서에 이 질문에 대한 답이 없습니다.",
}


# A question naming what no document mentions (``unmentioned``): the refusal says which word, so that a typo or a
# name the documents spell otherwise shows at once.
NOT_MENTIONED = {
    "en": "I don't know: the documents do not mention {words}.",
    "zh": "我不知道：文档中没有提到 {words}。",
    "zh-Hant": "我不知道：文件中沒有提到 {words}。",
}


def refusal_text(language: str, question: str, unmentioned: tuple[str, ...] = ()) -> str:
    """The refusal in the question's language, and for Chinese in its script: a question written in Traditional
    characters is refused in Traditional characters (``chinese_script``). ``unmentioned``: the question's words no
    document mentions, named in the refusal."""
    key = "zh-Hant" if language == "zh" and chinese_script(question) == "Hant" else language
    if unmentioned:
        words = ", ".join(f"\u201c{w}\u201d" for w in unmentioned)
        return NOT_MENTIONED.get(key, NOT_MENTIONED["en"]).format(words=words)
    return REFUSALS.get(key, REFUSALS["en"])


@dataclass(frozen=True)
class Turn:
    """One question after retrieval, ready to answer.

    ``passages`` are the numbered passages ([1] is ``passages[0]``): the relevant hits, cut to what fits the
    generator's context. Empty: nothing relevant was found, the answer is a refusal. ``request`` is None when
    no model is asked (a refusal, or a language the generator cannot write: the answer is extractive).
    """

    question: str
    standalone: str
    language: str
    hits: list[Hit]
    passages: list[Hit]
    generator: Generator | None
    request: GenerationRequest | None
    mode: str  # snap | check
    started: float
    retrieve_s: float
    unmentioned: tuple[str, ...] = ()  # the question's specific words no document mentions: why it is refused
    translated: str = ""  # the question in the passages' language, when it was also searched so: the check reads it


def plan(
    question: str,
    standalone: str,
    language: str,
    hits: list[Hit],
    threshold: float,
    generator: Callable[[], Generator],
    settings: AnswerSettings,
    *,
    started: float,
    translated: str = "",
    mentions: Callable[[str], bool] | None = None,
) -> Turn:
    """Keep the relevant hits (``relevant_hits``), a factoid's best-covering one first (``read_first``), and prepare
    the generator's request once (passages fitted to its context); the generator is only loaded when something
    relevant was found and the question is not gated (``gated``). ``translated``: the question in the language of
    the passages it was also searched in (``rag.answer.translate``): the word-overlap rules judge passages by it.
    ``mentions``: whether any chunk of the index mentions a word (``ChunkStore.mentions``): a how-to or why question
    naming a specific thing none does is refused (``unmentioned_words``; setting ``refuse_unmentioned``)."""
    judge, judged_in = (translated, _language_of(translated, language)) if translated else (standalone, language)
    form = answer_form(standalone, language)
    relevant = relevant_hits(judge, hits, threshold, settings.lexical_relevance)
    if relevant and gated(judge, judged_in, relevant, settings.min_coverage):
        relevant = []
    unmentioned: tuple[str, ...] = ()
    if relevant and form not in FACTOID_FORMS and mentions is not None and settings.refuse_unmentioned:
        unmentioned = unmentioned_words(standalone, translated, mentions)
        if unmentioned:
            log.info("refusing: no document mentions %s", ", ".join(unmentioned))
            relevant = []
    if form in FACTOID_FORMS:
        relevant = read_first(judge, relevant)  # a factoid reads the first passage or two only
    model: Generator | None = None
    request: GenerationRequest | None = None
    mode = "snap"
    if relevant:
        model = generator()
        mode = grounding_mode(model, settings.grounding)
        if model.supports_language(language):
            passages = [reading(h) for h in relevant]
            asked = GenerationRequest(standalone, passages, language, settings.max_new_tokens)
            request = model.prepare(asked)
            if request.passages:
                relevant = relevant[: len(request.passages)]
            else:  # even the question alone fills the context: answer extractively
                log.warning("the question leaves no room for passages in %s's context", model.name)
                request = None
    return Turn(
        question=question,
        standalone=standalone,
        language=language,
        hits=hits,
        passages=relevant,
        generator=model,
        request=request,
        mode=mode,
        started=started,
        retrieve_s=time.perf_counter() - started,
        unmentioned=unmentioned,
        translated=translated,
    )


def unmentioned_words(question: str, translated: str, mentions: Callable[[str], bool]) -> tuple[str, ...]:
    """The specific words of ``question`` (``rag.text.specific``) that no chunk mentions, and, when it was also
    asked translated, that its translation names too (a word the translation renders otherwise is not judged).

    Only how-to and why questions are judged (``plan``): a factoid question has the coverage gate (``gated``), and
    its wording strays from the passage's more often. Measured by the rule alone (``benchmarks/unmentioned.py``):
    4 of docsqa's 5 unanswerable questions refused and none of its 75 answerable; 1 of XQuAD's 1,190 in English and
    1 in Chinese, none of CMRC's 3,219; judging every question whatever its form would refuse 3.5% of XQuAD en."""
    words = specific_words(question)
    if translated:
        also = {w.casefold() for w in specific_words(translated)}
        words = [w for w in words if w.casefold() in also]
    return tuple(w for w in words if not mentions(w))


def reading(hit: Hit) -> str:
    """A passage as the model reads it: its heading path ("Guide › Install") on the first line, when it has one,
    then its display text (structure kept: lines, lists, code)."""
    chunk = hit.chunk
    return f"({chunk.heading})\n{chunk.shown}" if chunk.heading else chunk.shown


def relevant_hits(question: str, hits: list[Hit], threshold: float, lexical_relevance: float = 0.0) -> list[Hit]:
    """The hits whose cosine similarity reaches ``threshold``, and those under it that one passage sentence (with
    its neighbours) covers ``lexical_relevance`` of the question's words (``question_coverage``; 0: off): the
    embedder misjudges some questions whose words the passage plainly holds ("What is another way of referring to
    stators?"). Only a question of two or more content words is rescued (one word, or none, is too little to judge
    by). Rank order is kept."""
    rescue = lexical_relevance > 0 and len(content_words(question)) >= 2
    return [
        h
        for h in hits
        if h.similarity >= threshold or (rescue and question_coverage(question, [h.chunk.shown]) >= lexical_relevance)
    ]


def gated(question: str, language: str, relevant: list[Hit], min_coverage: float) -> bool:
    """Whether a factoid question (two or more content words) is refused before the model runs: no sentence of the
    relevant passages, read with its neighbours, covers ``min_coverage`` of its words (``question_coverage``). The
    passages are then about its topic but do not hold its fact, and a small model would answer from the nearest
    sentence anyway. One bar for every language: a question's asking words ("谁", "哪一年"), which Chinese
    questions have more of as words of their own, do not count (calibrated on XQuAD en/zh and CMRC 2018)."""
    if not relevant or min_coverage <= 0 or not _factoid(question, language):
        return False
    covered = question_coverage(question, [h.chunk.shown for h in relevant])
    if covered < min_coverage:
        log.info("refusing: the best passage sentence covers %.2f of the question (< %.2f)", covered, min_coverage)
        return True
    return False


def citation(number: int, hit: Hit) -> Citation:
    chunk = hit.chunk
    return Citation(
        number=number,
        source=display_path(chunk.source),
        start=chunk.start,
        end=chunk.end,
        location=chunk.location(),
        score=hit.similarity,
        text=chunk.shown,
    )


def numbered(turn: Turn) -> list[Citation]:
    """The passages the answer may cite, numbered as in the prompt."""
    return [citation(n, hit) for n, hit in enumerate(turn.passages, start=1)]


def refusal(turn: Turn, text: str | None = None, generator: str = "", generate_s: float = 0.0) -> Answer:
    total = time.perf_counter() - turn.started
    return Answer(
        question=turn.question,
        text=text or refusal_text(turn.language, turn.question, turn.unmentioned),
        citations=[],
        refused=True,
        language=turn.language,
        passages=turn.passages or turn.hits,
        timings={"retrieve_s": turn.retrieve_s, "generate_s": generate_s, "total_s": total},
        grounding="refused",
        generator=generator,
        standalone_question=_standalone(turn),
    )


def finish(turn: Turn, raw: str, generate_s: float) -> Answer:
    """The Answer for ``raw`` (the generator's text; empty when none was asked), grounded per ``turn.mode``."""
    if not turn.passages:
        return refusal(turn)
    texts = [h.chunk.shown for h in turn.passages]
    name = turn.generator.name if (turn.generator is not None and raw) else ""
    unsupported: list[str] = []
    supported = None
    raw = without_loops(raw)
    if turn.mode == "check":
        form = answer_form(turn.standalone, turn.language)
        checked = check(raw, turn.standalone, texts, form, judged_by=turn.translated)
        if checked.method == "refused":
            return refusal(turn, generator=name, generate_s=generate_s)
        text, cited, method, invalid, unsupported = (
            checked.text,
            checked.cited,
            checked.method,
            checked.invalid_citations,
            checked.unsupported,
        )
        supported = checked.supported
        trims = turn.generator is not None and turn.generator.trims_echo
        if method == "generated" and trims and form == "short":
            trimmed = shorten(trim_echo(text, turn.standalone), turn.standalone, turn.generator.chat)
            if trimmed != text:
                text, supported = trimmed, None
        extractive = turn.generator is not None and turn.generator.extractive
        if method == "generated" and extractive:
            method = "extractive"
        if method == "extractive" and raw.strip() and not extractive:
            log.warning("the answer of %s is not grounded in the passages; answering extractively instead", name)
    else:
        grounded = ground(raw, turn.standalone, texts)
        text, cited, method, invalid = grounded.text, grounded.cited, grounded.method, grounded.dropped_markers
    if invalid:
        log.info("removed citation markers that name no passage: %s", invalid)
    return Answer(
        question=turn.question,
        text=text,
        citations=[citation(n, turn.passages[n - 1]) for n in cited],
        refused=False,
        language=turn.language,
        passages=turn.passages,
        timings={
            "retrieve_s": turn.retrieve_s,
            "generate_s": generate_s,
            "total_s": time.perf_counter() - turn.started,
        },
        grounding=method,
        generator=name,
        invalid_citations=list(invalid),
        supported=supported if supported is not None else sentence_support(text, texts),
        unsupported=unsupported,
        standalone_question=_standalone(turn),
    )


def answer(turn: Turn) -> Answer:
    """Ask the generator (not streamed) and finish."""
    if turn.generator is None or turn.request is None:
        return finish(turn, "", 0.0)
    t0 = time.perf_counter()
    raw = turn.generator.generate(turn.request)
    return finish(turn, raw, time.perf_counter() - t0)


def stream(turn: Turn) -> Iterator[StreamEvent]:
    """Passages first, then the generator's text as it comes, then the checked Answer (authoritative)."""
    yield PassagesEvent(numbered(turn))
    if turn.generator is None or turn.request is None:
        final = finish(turn, "", 0.0)
        yield TokenEvent(final.text)
        yield DoneEvent(final)
        return
    t0 = time.perf_counter()
    parts: list[str] = []
    for piece in turn.generator.stream(turn.request):
        parts.append(piece)
        yield TokenEvent(piece)
    yield DoneEvent(finish(turn, "".join(parts), time.perf_counter() - t0))


def warm_up(generator: Generator) -> None:
    """The generator's warm-up (``Generator.warm_up``), given the shortening prompt when its factoid answers are
    shortened (``trims_echo``): the first long English answer then pays only for its question and answer; and the
    word list of the unmentioned-word rule (``rag.text.specific``)."""
    generator.warm_up([shorten_messages("", "")] if generator.trims_echo else [])
    load_word_list()


def _language_of(text: str, default: str) -> str:
    from rag.text.langdetect import detect_language

    return detect_language(text) or default


def _factoid(question: str, language: str) -> bool:
    """A short-answer question with at least two content words: enough to judge coverage by."""
    return answer_form(question, language) in FACTOID_FORMS and len(content_words(question)) >= 2


def _standalone(turn: Turn) -> str:
    return turn.standalone if turn.standalone != turn.question else ""
