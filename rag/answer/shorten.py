"""A factoid answer the model wrote as a long phrase or sentence, cut to the words that answer the question by a
second, short call to the same model.

Asked "How many seconds were left in the game when the Broncos intercepted the pass?", the 0.5B writes "17 seconds
left on the clock"; asked what a 1990s jingle was based around, 'created by the network's "We Love TV" image
campaign introduced that year'. ``shorten`` asks the model once more, with only the question and that answer (a
prompt of a few dozen tokens), for the few words that answer it, and keeps them only when they are a part of the
answer, copied word for word, and not just the question's own words: so the answer can only get shorter, never
say something the first one did not. Citations stay at the end.

English (Latin-script) answers only: on Chinese ones the 0.5B picked the wrong phrase of a long answer as often as
the right one (XQuAD zh F1 +0.02, answer contained -0.05, on the same 100 questions as English's +0.064 / -0.01:
docs/benchmarks.md, "Answers: measured").
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rag.answer.echo import only_echoes, split_markers, with_markers
from rag.text.langdetect import has_cjk

SHORTEN_RULES = (
    "Shorten the answer to the question to the few exact words that answer it, copied from the answer. "
    "Reply with those words only."
)
SHORTEN_MIN_WORDS = 6  # an answer of fewer words is short already
SHORTEN_MAX_NEW_TOKENS = 24
_WORD = re.compile(r"\w+", re.UNICODE)

Chat = Callable[[list[dict[str, str]], int], "str | None"]


def shorten_messages(question: str, answer: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SHORTEN_RULES},
        {"role": "user", "content": f"Question: {question}\nAnswer: {answer}"},
    ]


def needs_shortening(text: str) -> bool:
    """Whether ``text`` (a factoid answer) is long enough to be cut, in a language the cut is made for."""
    return _long(split_markers(text)[0].strip())


def shorten(text: str, question: str, chat: Chat) -> str:
    """``text`` cut to the words that answer ``question`` (see the module's docstring), or unchanged."""
    body, markers = split_markers(text)
    body = body.strip()
    if not _long(body):
        return text
    short = _clean(chat(shorten_messages(question, body), SHORTEN_MAX_NEW_TOKENS) or "")
    if not short or not _WORD.search(short) or only_echoes(short, question):
        return text
    if _fold(short) not in _fold(body) or len(_fold(short)) >= len(_fold(body)):
        return text
    return with_markers(short, markers)


def _long(body: str) -> bool:
    return not has_cjk(body) and len(body.split()) >= SHORTEN_MIN_WORDS and "\n" not in body


def _clean(reply: str) -> str:
    """The reply's first line, less its citation markers, quotes around it and a closing full stop."""
    line = reply.strip().splitlines()[0].strip() if reply.strip() else ""
    line = split_markers(line)[0].strip().rstrip(".").strip()
    if len(line) > 1 and line[0] == line[-1] and line[0] in "\"'":
        line = line[1:-1]
    return " ".join(line.split())


def _fold(text: str) -> str:
    """Lower case, whitespace collapsed: how a part of the answer is found in it."""
    return " ".join(text.lower().split())
