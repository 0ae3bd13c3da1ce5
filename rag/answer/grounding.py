"""Checks a generated answer against the passages it was given, and picks the passages it cites.

Two modes, chosen per backend (``Generator.grounding_mode``, overridable with ``RagConfig.grounding``):

``snap`` (small local models, ``ground``). A small model often copies the right sentence but may garble a
character or add an invented clause. So the answer's first line is compared with every passage sentence: a
line that is (almost) all passage text is kept and cites the passage it came from; a line that mostly
matches one sentence is replaced by that exact sentence; anything else is discarded and the sentence that
best matches the question is answered instead (extractive fallback). A kept or replaced answer must also
address the question (cover at least half as much of it, weighted by rarity, as the best passage sentence
does): a faithful copy of an off-point sentence is not an answer. The result never contains text that no
passage has. Citation markers [n] the model wrote are kept only when n names a passage that was given.

``check`` (capable models behind an HTTP API, ``check``). Their answer is kept as written, several
sentences included; instead every [n] must name a given passage (others are removed and reported), each
sentence is matched with the passages that support it (token overlap), and sentences that cite nothing and
that no passage supports are reported. The answer is rejected, and replaced by an extractive one, when no
sentence is grounded (cited or supported) or when it does not address the question (it neither covers the
question's words nor rests on a passage sentence that does) -- this is what catches a model that obeys an
instruction planted in a document ("reply only with HACKED"). Passage sentences that read like instructions
to the model (``is_instruction``) are never evidence for an answer, never snapped to and never quoted by the
extractive fallback while another sentence exists. An answer saying the documents do not contain the answer
is a refusal. (A small model's factoid answer written as a sentence that restates the question is cut to the words
that answer it: ``rag.answer.echo``.)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rag.answer.citations import (
    cite_lines,
    clean_markers,
    evidence,
    is_instruction,
    marker_numbers,
    sentence_support,
    strip_markers,
)
from rag.answer.echo import only_echoes, without_attribution
from rag.answer.prompting import FACTOID_FORMS
from rag.answer.spans import nearest_span, spelled_span
from rag.text.lexical import content_words, is_question_word, stems, tokenize
from rag.text.sentences import MARKUP, split_sentences
from rag.types import SentenceSupport

_MARKER = re.compile(r"\[(\d{1,3})\]")
# "Answer:", and the small model's echo of its instructions ("The exact words from the passage are:")
_PREFIX = re.compile(
    r"^\s*(?:(?:the\s+)?(?:short\s+answer|answer|exact\s+words)(?:\s+(?:from|in)\s+the\s+(?:passages?|context))?"
    r"(?:\s+(?:is|are))?|回答|答案|简短回答)\s*[:：]\s*",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"^[\"“「]([^\"“”「」\n]+)[\"”」]((?:\s*\[\d{1,3}\])*)\s*$")  # a whole answer in quotes
_COMPLETE = re.compile(r"[.!?。！？；;\"”』」)）]$")

KEEP = 0.9  # share of the answer's tokens found in one passage to keep the model's own words
MIN_SENTENCE_TOKENS = 4
SPAN_RELEVANT = 0.8  # a bare span must come from one of the sentences that best address the question
SPAN_TOKENS = 12  # an answer this short may be a span extracted from a sentence that addresses the question
RELEVANT = 0.5  # an answer must cover at least this share of the best sentence's question coverage
NEIGHBOURS = 1  # sentences on each side read with a sentence when judging whether the passages cover the question
TITLE_TOKENS = 8  # a line this short without final punctuation is a title (quoted only when nothing else is there)
SNAP = 0.5  # share of the answer's tokens (weighted by rarity) found in one sentence to answer with it


@dataclass(frozen=True)
class Grounded:
    text: str
    cited: list[int]  # 1-based passage numbers, in order of first citation
    method: str  # "generated" | "snapped" | "extractive"
    dropped_markers: list[int]


def _coverage(tokens: list[str], against: set[str]) -> float:
    return sum(1 for t in tokens if t in against) / len(tokens) if tokens else 0.0


def first_line(raw: str) -> str:
    for line in raw.splitlines():
        line = _PREFIX.sub("", line).strip()
        if line and _MARKER.sub("", line).strip(" -:：.。"):
            return line
    return ""


def ground(raw: str, question: str, passages: list[str]) -> Grounded:
    if not passages:
        return Grounded("", [], "extractive", [])
    line = first_line(raw)
    markers = [int(m) for m in _MARKER.findall(line)]
    valid = [m for m in markers if 1 <= m <= len(passages)]
    dropped = [m for m in markers if m not in valid]
    body = MARKUP.sub("", _MARKER.sub("", line).strip()).strip()
    tokens = tokenize(body)
    sentences = _sentences(passages)
    relevance = _Relevance(tokenize(question), sentences)
    # An answer must address the question about as well as the best passage sentence does.
    needed = RELEVANT * relevance.best

    if tokens:
        coverage = [_coverage(tokens, set(tokenize(p))) for p in passages]
        best = max(range(len(passages)), key=lambda i: (coverage[i], -i))
        kept = _whole_sentences(body)
        source = _span_source(set(tokens), sentences, relevance, SPAN_RELEVANT * relevance.best)
        addresses = relevance.of(set(tokens)) >= needed or source is not None
        if coverage[best] >= KEEP and addresses and _in_passages(kept, passages):
            home = source if source is not None else best + 1
            cited = list(dict.fromkeys(valid)) if valid else [home]
            if home not in cited:
                cited.append(home)
            return Grounded(_with_markers(kept, cited), cited, "generated", dropped)
        # The sentence the model was copying (or whose fact it extracted), if it also addresses the question.
        # Share of the answer found in the sentence, weighted by rarity: '是', '的', 'the' alone are no match.
        share = _Relevance(tokens, sentences)
        scored = [
            (share.of(found) + relevance.of(found), number, sentence)
            for number, sentence, found in sentences
            if share.of(found) >= SNAP and relevance.of(found) >= needed and not is_instruction(sentence)
        ]
        if scored:
            _, number, sentence = max(scored, key=lambda x: (x[0], -x[1]))
            return Grounded(_with_markers(sentence, [number]), [number], "snapped", dropped)

    return best_sentences(question, passages, limit=1, dropped=dropped)


def _span_source(
    tokens: set[str], sentences: list[tuple[int, str, set[str]]], relevance: _Relevance, needed: float
) -> int | None:
    """The passage whose sentence contains every word of a short extracted answer ("2013", "8 attention
    heads") and addresses the question; None when there is none, or when the answer is only common words."""
    if not tokens or len(tokens) > SPAN_TOKENS:
        return None
    df = {t: sum(1 for _, _, found in sentences if t in found) for t in tokens}
    if min(df.values()) > len(sentences) / 2:  # 'the', '的': no answer
        return None
    homes = [
        (relevance.of(found), -number, number)
        for number, sentence, found in sentences
        if tokens <= found and relevance.of(found) >= needed and not is_instruction(sentence)
    ]
    return max(homes)[2] if homes else None


def best_sentences(question: str, passages: list[str], limit: int = 2, dropped: list[int] | None = None) -> Grounded:
    """Extractive answer: the passage sentence that best covers the question (rarity-weighted), followed by
    up to ``limit - 1`` more that cover question words the earlier ones do not and address the question
    about as well. Each sentence is cited; the text is passage text only."""
    if not passages:
        return Grounded("", [], "extractive", dropped or [])
    sentences = _sentences(passages)
    relevance = _Relevance(tokenize(question), sentences)
    # Instructions planted in a document are not quoted as an answer while another sentence is available.
    # So is a title line ("Apollo program", "零食物语") while a sentence that says something is.
    ranked = sorted(sentences, key=lambda x: (is_instruction(x[1]), _title(x[1]), -relevance.of(x[2]), x[0]))
    chosen = [ranked[0]]
    covered = set(ranked[0][2])
    for candidate in ranked[1 : 1 + 4 * limit]:
        if len(chosen) >= limit:
            break
        gain = relevance.of(covered | candidate[2]) - relevance.of(covered)
        if is_instruction(candidate[1]) or candidate[1] == chosen[0][1]:
            continue
        if gain > 0 and relevance.of(candidate[2]) >= RELEVANT * relevance.best:
            chosen.append(candidate)
            covered |= candidate[2]
    pieces = []
    for number, sentence, _ in chosen:
        block = following_block(passages[number - 1], sentence)
        pieces.append(_with_markers(sentence, [number]) + (f"\n{block}\n" if block else " "))
    cited = list(dict.fromkeys(number for number, _, _ in chosen))
    return Grounded("".join(pieces).strip(), cited, "extractive", dropped or [])


BLOCK_CHARS = 700  # at most this much of a list or code block is quoted after the sentence that introduces it
_ITEM = re.compile(r"^\s*(?:[-*+•▪◦‣]|\d{1,3}[.)、])\s+\S")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _prose_after(previous: str, line: str) -> bool:
    """Whether ``line``, which is no list item, starts the prose after a list rather than continuing its last item
    (a PDF's wrapped lines are not indented): the item ended a sentence and the line starts a new one."""
    first = line.strip()[0]
    return bool(_COMPLETE.search(previous.strip())) and (first.isupper() or "\u4e00" <= first <= "\u9fff")


def following_block(passage: str, sentence: str) -> str:
    """The list or code block that ``sentence`` introduces ("camlidl generates the following files:", "使用下列命令
    生成一个安全的随机密钥："), as the passage writes it, lines intact: an extract that stops at the colon leaves out
    what was asked. Empty when the sentence does not end with a colon or no list or fence follows it. At most
    ``BLOCK_CHARS``, cut at a line end (an open fence is closed)."""
    if not sentence.rstrip().endswith((":", "：")):
        return ""
    tail = "".join(sentence.split())[-24:]
    found = re.search(r"\s*".join(map(re.escape, tail)), passage)
    if found is None:
        return ""
    lines = passage[found.end() :].split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return ""
    fence = _FENCE.match(lines[0])
    if not fence and not _ITEM.match(lines[0]):
        return ""
    taken: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        if size + len(line) > BLOCK_CHARS and taken:
            break
        if fence and i > 0 and line.strip().startswith(fence.group(1)):
            taken.append(line)
            return "\n".join(taken).strip("\n")
        if not fence and not line.strip():
            following = next((later for later in lines[i + 1 :] if later.strip()), "")
            if not _ITEM.match(following):
                break
        if not fence and taken and line.strip() and not _ITEM.match(line) and _prose_after(taken[-1], line):
            break
        taken.append(line)
        size += len(line) + 1
    if fence:
        taken.append(fence.group(1))
    return "\n".join(taken).strip("\n")


@dataclass(frozen=True)
class Checked:
    """What ``check`` made of an answer: the text to show, what it cites, and what was wrong with it."""

    text: str
    cited: list[int]
    method: str  # "generated" (kept as written) | "extractive" (rejected and replaced) | "refused"
    invalid_citations: list[int]
    unsupported: list[str]  # the model's sentences that cite nothing and no passage supports
    # each sentence with its citations and support, when check established it another way than word overlap
    supported: list[SentenceSupport] | None = None


_NOT_FOUND = re.compile(
    r"\bnot (?:in|found in|mentioned in|contained in|covered (?:in|by)|present in) the (?:documents|passages|context)"
    r"|\b(?:documents|passages|context) (?:do|does) not (?:contain|mention|say|include|answer)"
    r"|\bi (?:do not|don'?t) know\b"
    r"|文档中没有|段落中没有|上下文中没有|没有提到|未提及|不知道|文書には|답이 없습니다"
    r"|文件中沒有|文檔中沒有|段落中沒有|上下文中沒有|沒有提到",  # the same in Traditional characters
    re.IGNORECASE,
)


def says_not_found(text: str) -> bool:
    """Whether an (uncited) answer says the documents do not contain the answer."""
    return len(text) < 300 and bool(_NOT_FOUND.search(text))


_LEADING_MARKERS = re.compile(r"^[ \t]*((?:\[\d{1,3}\][ \t]*)+)(\S.*?)[ \t]*$", re.MULTILINE)


def markers_last(text: str) -> str:
    """A line that starts with its citation ("[1] 2020年", small models' habit) gets them at its end instead."""
    return _LEADING_MARKERS.sub(lambda m: f"{m.group(2)} {''.join(m.group(1).split())}", text)


def check(raw: str, question: str, passages: list[str], form: str = "short", judged_by: str = "") -> Checked:
    """Keep a capable model's answer as written, checking its citations and support (see the module doc). A long
    answer (``form`` steps or explain) is kept as written, its unsupported sentences listed, each line that cites
    nothing given the passage that supports it (else the whole answer the passage it draws on most): replacing a
    fluent answer by an extract of passage sentences made it read worse and lose its facts (docsqa: "set
    `syntaxHighlight` to `False`" became "For example, you could disable syntax highlighting in Swagger UI.").

    ``judged_by``: the question in the passages' language when it was also searched translated: the word-overlap
    rules (does the answer's sentence address the question, the extractive fallback) read that one, since a Chinese
    question shares no word with an English passage."""
    text = without_attribution(markers_last(_PREFIX.sub("", raw.strip()).strip()))
    text = _without_the_question(_QUOTED.sub(r"\1\2", text), question)
    cleaned = clean_markers(text, len(passages))
    body = strip_markers(cleaned.text)
    if not passages:
        return Checked("", [], "extractive", cleaned.invalid, [])
    if body and not cleaned.cited and says_not_found(body):
        return Checked(cleaned.text, [], "refused", cleaned.invalid, [])
    judge = judged_by or question
    size = len(tokenize(body))
    # a phrase that only repeats the question ("1937" for "What article was published in 1937?"): no answer
    if 0 < size <= SHORT_ANSWER_TOKENS and only_echoes(body, question):
        fallback = best_sentences(judge, passages)
        return Checked(fallback.text, fallback.cited, "extractive", cleaned.invalid, [body])
    core = _unfenced(body)  # a command answered as a code block is looked up by its code
    if form in FACTOID_FORMS and 0 < size <= COPIED_ANSWER_TOKENS:
        sentences = _in_context(_sentences([evidence(p) for p in passages]))
        relevance = _Relevance(tokenize(judge), sentences)
        # every sentence, fragments too: a list item's "Defaults to `500`." holds the value asked for
        short = _short_answer_source(core, _in_context(_all_sentences(passages)), relevance)
        if short:  # a short answer ("2017", "500, 9", a command) copied from sentences that answer the question
            cited = [n for n in cleaned.cited if n in short] or short  # the first passage holding each part
            text = cleaned.text if cleaned.cited else cite_after(body, cited)
            return Checked(text, cited, "generated", cleaned.invalid, [], [SentenceSupport(text, cited, short)])
        near = _near_short_answer(core, sentences, relevance) if size <= SHORT_ANSWER_TOKENS else None
        if near:  # a garbled copy of a name ("Perse Shelley"): the passage's own words instead
            number, words = near
            if core != body:  # it was code: the passage's code, as code ("from fastapi.requests import ...")
                words = f"`{_FENCE_EDGES.sub('', words)}`"
            text = f"{words} [{number}]"
            support = [SentenceSupport(text, [number], [number])]
            return Checked(text, [number], "snapped", cleaned.invalid, [], support)
    support = sentence_support(cleaned.text, passages)
    unsupported = [s.text for s in support if not s.grounded]
    if form != "short" and body:
        text = cleaned.text if cleaned.cited else cite_lines(cleaned.text, passages)
        if not marker_numbers(text):  # a paraphrase no line of which rests on one passage: the one it draws on most
            text = cite_after(text, [closest_passage(body, passages)])
        return Checked(text, sorted(set(marker_numbers(text))), "generated", cleaned.invalid, unsupported)
    if body and any(s.grounded for s in support) and _addresses(judge, support, passages):
        cited = cleaned.cited or list(dict.fromkeys(n for s in support for n in s.passages))
        return Checked(cleaned.text, cited, "generated", cleaned.invalid, unsupported)
    fallback = best_sentences(judge, passages)
    rejected = [s.text for s in support]
    return Checked(fallback.text, fallback.cited, "extractive", cleaned.invalid, rejected)


_ONE_FENCE = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n\s*```\s*$", re.DOTALL)
_FENCE_EDGES = re.compile(r"^\s*`{3}[\w+-]*\s*|\s*`{3}\s*$")


def _unfenced(text: str) -> str:
    """The code of an answer that is one fenced code block; else the answer."""
    found = _ONE_FENCE.match(text)
    return found.group(1).strip() if found else text


def cite_after(text: str, cited: list[int]) -> str:
    """``text`` with its citation markers at the end; on a line of their own after a closing code fence (a fence
    line followed by anything else does not close the block in Markdown)."""
    markers = "".join(f"[{n}]" for n in cited)
    text = text.rstrip()
    return f"{text}\n{markers}" if text.endswith("```") else f"{text} {markers}"


def closest_passage(text: str, passages: list[str]) -> int:
    """The number of the passage sharing the most of ``text``'s words, each weighted by its rarity among them."""
    words = set(tokenize(text))
    found = [set(tokenize(p)) for p in passages]
    n = len(found)
    weight = {w: math.log(1 + n / (1 + sum(1 for f in found if w in f))) for w in words}
    scores = [sum(weight[w] for w in words & f) for f in found]
    return 1 + max(range(n), key=lambda i: (scores[i], -i))


def _without_the_question(text: str, question: str) -> str:
    """``text`` less the sentences that only repeat the question (a small model may loop on it): no answer."""
    asked = _bare(question)
    said = split_sentences(text)
    kept = [s for s in said if _bare(strip_markers(s)) != asked]
    if len(kept) == len(said):
        return text
    return " ".join(kept) if kept and not any("\u4e00" <= c <= "\u9fff" for c in question) else "".join(kept)


def _bare(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


REST = 0.5  # share of an answer sentence's words found in one passage sentence for it to rest on that sentence
SHORT_RELEVANT = 0.25  # a word-for-word short answer's sentence (with its neighbours) covers this share of the best
SHORT_ANSWER_TOKENS = 8  # an answer of at most this many tokens may be a phrase copied from a passage
# A short-form answer of up to this many tokens found word for word in a passage sentence that bears on the question
# is kept as the model wrote it: a command ("npx @hey-api/openapi-ts -i ... -o src/client") is longer than a phrase.
COPIED_ANSWER_TOKENS = 40
# The parts of an answer that lists several values ("500, 9", "['GET']，600", "f.mli and f.ml"), each looked up alone.
_PARTS = re.compile(r"\s*(?:[,，、;；]|\band\b|和|及)\s*")


def _short_answer_source(body: str, sentences: list[tuple[int, str, set[str]]], relevance: _Relevance) -> list[int]:
    """Passages with a sentence that contains ``body`` word for word (case, whitespace and backticks aside) and,
    read with its neighbours (``sentences`` from ``_in_context``), covers ``SHORT_RELEVANT`` of what the best one
    covers of the question: the support of a short answer such as "2017", which shares no word with the question.
    An answer that lists values ("500, 9": two defaults asked for at once, each in its own sentence) is supported
    when each of its parts is, on its own. Instruction-like passage sentences never count (``evidence``); empty when
    there is none."""
    found = _verbatim_sources(body, sentences, relevance)
    if found:
        return found[:1]
    parts = [part for part in _PARTS.split(body) if part.strip(" .。`'\"")]
    if len(parts) < 2:
        return []
    homes = [_verbatim_sources(part, sentences, relevance) for part in parts]
    # one passage that holds every part and bears on the question where it holds one of them ("Defaults to `500`"
    # ... "Defaults to `9`" in the list of GZipMiddleware's options) is the answer's source
    texts: dict[int, str] = {}
    for n, sentence, _ in sentences:
        texts[n] = texts.get(n, "") + _flat_text(sentence)
    needles = [_flat_text(part).rstrip(".。") for part in parts]
    for n in sorted({n for home in homes for n in home}):
        if all(needle in texts[n] for needle in needles):
            return [n]
    if not all(homes):
        return []
    return list(dict.fromkeys(home[0] for home in homes))


def _flat_text(text: str) -> str:
    """Case, whitespace and code backticks aside: "2020年" is in "于 2020 年提出", "`500`" is "500"."""
    return "".join(text.casefold().replace("`", "").split())


def _verbatim_sources(text: str, sentences: list[tuple[int, str, set[str]]], relevance: _Relevance) -> list[int]:
    needle = _flat_text(text).rstrip(".。")
    if not needle or not tokenize(text):
        return []
    needed = SHORT_RELEVANT * relevance.best
    found = [n for n, sentence, words in sentences if needle in _flat_text(sentence) and relevance.of(words) >= needed]
    return list(dict.fromkeys(found))


def _near_short_answer(
    body: str, sentences: list[tuple[int, str, set[str]]], relevance: _Relevance
) -> tuple[int, str] | None:
    """(passage number, its words) for a short answer that is nearly passage text, or a count the passage spells
    out (``rag.answer.spans``), taken from a sentence that, with its neighbours, bears on the question about as
    well as the best one does."""
    usable = [(n, s) for n, s, words in sentences if relevance.of(words) >= RELEVANT * relevance.best]
    texts = [s for _, s in usable]
    found = spelled_span(body, texts) or nearest_span(body, texts)
    return (usable[found[0]][0], found[1]) if found else None


def question_coverage(question: str, passages: list[str]) -> float:
    """How much of the question the best passage sentence, read with its neighbours, covers: the share of the
    question's content words (function words and asking words such as "谁", "哪一年", "how many" dropped, English
    words stemmed, each weighted by its rarity among the passage sentences) found in one sentence or the sentence
    before or after it. Instruction-like sentences never count. 1.0 when the question has no content word
    (nothing to judge by).

    Stems and neighbours (``benchmarks/calibrate.py --coverage``): "Protestants" answers "protestant", and a
    question's words are often split over two sentences of the paragraph that answers it."""
    return max(passage_coverage(question, passages), default=0.0)


def passage_coverage(question: str, passages: list[str]) -> list[float]:
    """``question_coverage`` of each passage, the words weighted by their rarity among all the passages'
    sentences (so the numbers compare passages); all 1.0 when the question has no content word."""
    words = stems({w for w in content_words(question) if not is_question_word(w)})
    if not words:
        return [1.0] * len(passages)
    sentences: list[tuple[int, str, set[str]]] = []
    for n, passage in enumerate(passages, start=1):
        pieces = [s for s in split_sentences(evidence(passage)) if not is_instruction(s)]
        found = [stems(content_words(s)) for s in pieces]
        for i, sentence in enumerate(pieces):
            sentences.append((n, sentence, set().union(*found[max(0, i - NEIGHBOURS) : i + NEIGHBOURS + 1])))
    best = [0.0] * len(passages)
    if sentences:
        relevance = _Relevance(list(words), sentences)
        for n, _, found in sentences:
            best[n - 1] = max(best[n - 1], relevance.of(found))
    return best


def _addresses(question: str, support: list[SentenceSupport], passages: list[str]) -> bool:
    """The answer covers the question's words about as well as the best passage sentence does, or one of its
    grounded sentences rests on a passage sentence that does (a paraphrase, "It was 2017 [1]")."""
    sentences = _sentences(passages)
    relevance = _Relevance(tokenize(question), sentences)
    needed = RELEVANT * relevance.best
    answer_tokens = {t for s in support for t in tokenize(s.text)}
    if relevance.best == 0 or relevance.of(answer_tokens) >= needed > 0:
        return True
    for s in support:
        if not s.grounded:
            continue
        tokens = set(tokenize(s.text))
        allowed = set(s.cited) or set(range(1, len(passages) + 1))
        for number, sentence, found in sentences:
            if number not in allowed or is_instruction(sentence):
                continue
            if relevance.of(found) >= needed and len(tokens & found) >= REST * len(tokens):
                return True
    return False


def _sentences(passages: list[str]) -> list[tuple[int, str, set[str]]]:
    """(passage number, sentence, its tokens) for every sentence; headings and fragments ("HNSW",
    "Origins") are left out when a real sentence exists."""
    out = [(n, s, set(tokenize(s))) for n, p in enumerate(passages, start=1) for s in split_sentences(p)]
    return [x for x in out if len(x[2]) >= MIN_SENTENCE_TOKENS] or out or [(1, passages[0].strip(), set())]


def _all_sentences(passages: list[str]) -> list[tuple[int, str, set[str]]]:
    """(passage number, sentence, its tokens) for every sentence of the passages' evidence, fragments included."""
    return [(n, s, set(tokenize(s))) for n, p in enumerate(passages, start=1) for s in split_sentences(evidence(p))]


def _in_context(sentences: list[tuple[int, str, set[str]]]) -> list[tuple[int, str, set[str]]]:
    """Each sentence's tokens together with those of the sentences before and after it in its passage: a short
    answer's sentence ("Depth 2 to 23 m.") often bears on the question only with its neighbour ("It lives in ...")."""
    out = []
    for i, (number, sentence, words) in enumerate(sentences):
        near = [sentences[j][2] for j in (i - 1, i + 1) if 0 <= j < len(sentences) and sentences[j][0] == number]
        out.append((number, sentence, words.union(*near)))
    return out


class _Relevance:
    """How much of the question a token set covers, each question token weighted by its rarity among
    the passage sentences (so 'the', '的', '是' count for little)."""

    def __init__(self, question_tokens: list[str], sentences: list[tuple[int, str, set[str]]]) -> None:
        wanted = set(question_tokens)
        n = len(sentences)
        self.weight = {t: math.log(1 + n / (1 + sum(1 for _, _, f in sentences if t in f))) for t in wanted}
        self.total = sum(self.weight.values()) or 1.0
        self.best = max((self.of(found) for _, _, found in sentences), default=0.0)

    def of(self, tokens: set[str]) -> float:
        return sum(w for t, w in self.weight.items() if t in tokens) / self.total


def _title(sentence: str) -> bool:
    """A short line without a sentence's final punctuation: a title or heading, not a statement."""
    return len(tokenize(sentence)) <= TITLE_TOKENS and not _COMPLETE.search(sentence.strip())


def _in_passages(text: str, passages: list[str]) -> bool:
    """Every sentence of ``text`` occurs word for word (whitespace aside) in some passage: a line with a
    changed word or number ("2021" for "2020") is not kept as is, however many of its tokens match."""
    flat = [" ".join(p.split()) for p in passages]
    return all(any(" ".join(s.split()) in f for f in flat) for s in split_sentences(text))


def _whole_sentences(text: str) -> str:
    """Drop a trailing unfinished sentence (the model ran on into the next passage line) and repeats of a
    sentence already said (small models loop)."""
    sentences = split_sentences(text)
    if len(sentences) > 1 and not _COMPLETE.search(sentences[-1]):
        sentences = sentences[:-1]
    sentences = list(dict.fromkeys(sentences))
    joiner = "" if any("\u4e00" <= ch <= "\u9fff" for ch in text[:50]) else " "
    return joiner.join(sentences)


def _with_markers(text: str, cited: list[int]) -> str:
    text = text.rstrip()
    return text + " " + "".join(f"[{n}]" for n in cited)
