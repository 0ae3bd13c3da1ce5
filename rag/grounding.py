"""Checks a generated answer against the passages it was given, and picks the passages it cites.

A small local model often copies the right sentence but may garble a character or add an invented
clause. So the answer's first line is compared with every passage sentence: a line that is (almost)
all passage text is kept and cites the passage it came from; a line that mostly matches one sentence is
replaced by that exact sentence; anything else is discarded and the sentence that best matches the
question is answered instead (extractive fallback). The result never contains text that no passage has.
Citation markers [n] the model wrote are kept only when n names a passage that was given.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rag.lexical import tokenize

_SENTENCE_END = re.compile(r"(?<=[。！？；!?])|(?<=[.;])\s+|\n+")
_MARKER = re.compile(r"\[(\d{1,3})\]")
_PREFIX = re.compile(r"^\s*(answer|short answer|回答|答案|简短回答)\s*[:：]\s*", re.IGNORECASE)
_MARKUP = re.compile(r"^\s*(#+|[-*>]|\d+[.)])\s+")
_COMPLETE = re.compile(r"[.!?。！？；;\"”』」)）]$")

KEEP = 0.9  # share of the answer's tokens found in one passage to keep the model's own words
MIN_SENTENCE_TOKENS = 4
SNAP = 0.5  # share of the answer's tokens found in one sentence to answer with that sentence


@dataclass(frozen=True)
class Grounded:
    text: str
    cited: list[int]  # 1-based passage numbers, in order of first citation
    method: str  # "generated" | "snapped" | "extractive"
    dropped_markers: list[int]


def split_sentences(text: str) -> list[str]:
    """Sentences and lines of ``text``, with list/heading markup removed."""
    out = []
    for piece in _SENTENCE_END.split(text):
        piece = _MARKUP.sub("", piece.strip()).strip() if piece else ""
        if piece:
            out.append(piece)
    return out


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
    body = _MARKUP.sub("", _MARKER.sub("", line).strip()).strip()
    tokens = tokenize(body)
    passage_tokens = [set(tokenize(p)) for p in passages]

    if tokens:
        coverage = [_coverage(tokens, pt) for pt in passage_tokens]
        best = max(range(len(passages)), key=lambda i: (coverage[i], -i))
        if coverage[best] >= KEEP:
            cited = list(dict.fromkeys(valid)) if valid else [best + 1]
            if best + 1 not in cited:
                cited.append(best + 1)
            return Grounded(_with_markers(_whole_sentences(body), cited), cited, "generated", dropped)
        sentence, number, score = _best_sentence(tokens, passages)
        if score >= SNAP:
            return Grounded(_with_markers(sentence, [number]), [number], "snapped", dropped)

    sentence, number, score = _best_sentence(tokenize(question), passages)
    if score <= 0:
        sentence, number = split_sentences(passages[0])[0], 1
    return Grounded(_with_markers(sentence, [number]), [number], "extractive", dropped)


def _best_sentence(tokens: list[str], passages: list[str]) -> tuple[str, int, float]:
    """The passage sentence covering most of ``tokens``, each token weighted by its rarity among the
    sentences (so 'the', '的', '是' count for little); ties go to the higher-ranked passage."""
    sentences = [(n, s, set(tokenize(s))) for n, p in enumerate(passages, start=1) for s in split_sentences(p)]
    # headings and fragments ("HNSW", "Origins") are not answers when a real sentence exists
    sentences = [x for x in sentences if len(x[2]) >= MIN_SENTENCE_TOKENS] or sentences
    if not sentences:
        return ("", 1, 0.0)
    wanted = set(tokens)
    df = {t: sum(1 for _, _, found in sentences if t in found) for t in wanted}
    weight = {t: math.log(1 + len(sentences) / (1 + df[t])) for t in wanted}
    total = sum(weight.values()) or 1.0
    best: tuple[str, int, float] = ("", 1, -1.0)
    for number, sentence, found in sentences:
        score = sum(weight[t] for t in wanted & found) / total
        if score > best[2]:
            best = (sentence, number, score)
    return best


def _whole_sentences(text: str) -> str:
    """Drop a trailing unfinished sentence (the model ran on into the next passage line)."""
    sentences = split_sentences(text)
    if len(sentences) > 1 and not _COMPLETE.search(sentences[-1]):
        sentences = sentences[:-1]
    joiner = "" if any("\u4e00" <= ch <= "\u9fff" for ch in text[:50]) else " "
    return joiner.join(sentences)


def _with_markers(text: str, cited: list[int]) -> str:
    text = text.rstrip()
    return text + " " + "".join(f"[{n}]" for n in cited)
