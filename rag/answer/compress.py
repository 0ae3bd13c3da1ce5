"""Prompt compression: each passage cut to the sentences that bear on the question, with their neighbours.

On a CPU the prompt costs more than the answer, and a small model reads a short, relevant context better than a
long one. A sentence bears on the question when it shares its content words (rarity-weighted over the passages,
function words ignored); the best few of each passage are kept with one neighbour on each side, in their order,
gaps marked "…". A passage keeps at least its best sentence (its first when none shares a word), and short
passages stay whole. Passage numbers do not change, so the answer's [n] still cite the original passages and their
character spans.
"""

from __future__ import annotations

import math
from collections import Counter

from rag.text.lexical import content_words
from rag.text.sentences import sentences

KEEP = 3  # best sentences kept per passage (each with its neighbours)
NEIGHBOURS = 1
WHOLE_BELOW = 4  # passages of fewer sentences stay whole
GAP = " … "


def compress(question: str, passages: list[str], keep: int = KEEP, neighbours: int = NEIGHBOURS) -> list[str]:
    """``passages`` with only the sentences that bear on ``question`` (and their neighbours); same count, same
    order."""
    wanted = content_words(question)
    split = [sentences(p) for p in passages]
    terms = [[content_words(s) for s in pieces] for pieces in split]
    df = Counter(t for per_passage in terms for sentence in per_passage for t in sentence & wanted)
    n = sum(len(per_passage) for per_passage in terms) or 1
    weight = {t: math.log(1 + n / df[t]) for t in df}
    out: list[str] = []
    for passage, pieces, per_sentence in zip(passages, split, terms, strict=True):
        if len(pieces) < WHOLE_BELOW:
            out.append(passage.strip())
            continue
        scores = [sum(weight.get(t, 0.0) for t in s & wanted) for s in per_sentence]
        ranked = sorted((i for i in range(len(pieces)) if scores[i] > 0), key=lambda i: (-scores[i], i))[:keep]
        chosen = set()
        for i in ranked or [0]:
            chosen.update(range(max(0, i - neighbours), min(len(pieces), i + neighbours + 1)))
        out.append(_join(pieces, sorted(chosen)))
    return out


def _join(pieces: list[str], kept: list[int]) -> str:
    text = ""
    previous = -1
    for i in kept:
        if text:
            text += " " if i == previous + 1 else GAP
        elif i > 0:
            text = GAP.lstrip()
        text += pieces[i]
        previous = i
    if previous < len(pieces) - 1:
        text += GAP.rstrip()
    return text
