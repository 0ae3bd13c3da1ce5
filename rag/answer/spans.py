"""A small model's short answer that is nearly, but not exactly, passage text, snapped to the passage's words.

The 0.5B model copies a name or a phrase out of the passage and now and then garbles a letter ("Perse Shelley" for
"Percy Shelley", "Bach Dang" for "Bạch Đằng"). Such an answer is in no passage word for word, so ``check`` would
reject it and answer with a whole passage sentence. ``nearest_span`` finds the stretch of passage text it was
copying: a run of as many words (English) or characters (Chinese, Japanese, Korean) as the answer, whose
characters match the answer's to at least ``MIN_RATIO`` (difflib's ratio, case aside). The caller decides which
sentences may serve (those that bear on the question); the result is passage text, so the answer stays grounded.

``spelled_span`` does the same for a count the model wrote in digits where the passage spells it ("4" for "four",
"4个" for "四个"): asked "How many public charter schools does the university run?", it answers "4" from "the
university runs four public charter schools".
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from rag.text.langdetect import has_cjk

MIN_RATIO = 0.8  # 0.8: one letter in five may differ ("Perse Shelley" ~ "Percy Shelley" is 0.85)
MAX_ANSWER_CHARS = 60  # longer answers are phrases, not garbled names: left to the sentence checks
_WORD = re.compile(r"\S+")
_EDGE = " \t\n.,;:!?\"'()[]“”‘’「」『』（），。；：！？、"


def _windows(sentence: str, answer: str) -> list[str]:
    """Stretches of ``sentence`` as long as ``answer``: runs of as many whole words for a spaced answer, runs of as
    many characters or one more (a dropped character) for a CJK one. Never shorter: a stretch that is the answer less
    a word ("Museum of" for "Museum of Art") matches closely but says something else."""
    if has_cjk(answer):
        size = len("".join(answer.split()))
        text = "".join(sentence.split())
        return [
            text[i : i + n]
            for n in (size, size + 1)
            for i in range(len(text) - n + 1)
            if not _cuts_word(text, i) and not _cuts_word(text, i + n)
        ]
    words = [m.span() for m in _WORD.finditer(sentence)]
    n = len(answer.split())
    out = [sentence[words[i][0] : words[i + n - 1][1]].strip(_EDGE) for i in range(len(words) - n + 1)]
    return [w for w in out if w]


def _cuts_word(text: str, at: int) -> bool:
    """Whether position ``at`` falls inside a run of Latin letters or digits ("2008" cut to "008")."""
    before, after = text[at - 1 : at], text[at : at + 1]
    return 0 < at < len(text) and (before + after).isascii() and before.isalnum() and after.isalnum()


_ENGLISH_NUMBERS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
)  # fmt: skip
_CHINESE_NUMBERS = "零一二三四五六七八九十"
_COUNT = re.compile(r"^(\d{1,2})(\D{0,3})$")  # a number, and a unit word or measure word after it ("4个")


def spelled_span(answer: str, sentences: list[str]) -> tuple[int, str] | None:
    """(index into ``sentences``, the passage words) where a count ``answer`` written in digits (0-20, with up to
    three characters after it: "4", "4个") is spelled out as a word ("four", "四个"); None when it is not."""
    match = _COUNT.match(answer.strip(_EDGE))
    if match is None or int(match.group(1)) > 20:
        return None
    value, rest = int(match.group(1)), match.group(2)
    english = re.compile(rf"\b{_ENGLISH_NUMBERS[value]}\b{re.escape(rest)}", re.IGNORECASE)
    chinese = _CHINESE_NUMBERS[value] + rest.strip() if value <= 10 and rest.strip() and has_cjk(rest) else None
    for index, sentence in enumerate(sentences):
        found = english.search(sentence)
        if found:
            return index, found.group()
        if chinese and chinese in sentence:
            return index, chinese
    return None


def nearest_span(answer: str, sentences: list[str], min_ratio: float = MIN_RATIO) -> tuple[int, str] | None:
    """(index into ``sentences``, the passage words) of the stretch closest to ``answer``, or None when no
    stretch matches it to ``min_ratio``. Ties go to the earlier sentence."""
    answer = answer.strip(_EDGE)
    if not answer or len(answer) > MAX_ANSWER_CHARS:
        return None
    target = answer.casefold()
    best: tuple[float, int, str] | None = None
    matcher = SequenceMatcher(autojunk=False)
    matcher.set_seq2(target)
    for index, sentence in enumerate(sentences):
        for window in _windows(sentence, answer):
            matcher.set_seq1(window.casefold())
            if matcher.real_quick_ratio() < min_ratio or matcher.quick_ratio() < min_ratio:
                continue
            ratio = matcher.ratio()
            if ratio >= min_ratio and (best is None or ratio > best[0]):
                best = (ratio, index, window)
    return (best[1], best[2]) if best else None
