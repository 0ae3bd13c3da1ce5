"""Follow-up questions in a conversation, rewritten into standalone questions before retrieval.

Retrieval sees one question at a time, so "When was it introduced?" after "What is the Transformer?" must
become a question that names the Transformer. How:

- A generator that can rewrite (``rewrite_question(question, history)``; the ``openai`` backend) is asked to,
  in one short extra request. Its reply is cleaned (first line, quotes and labels removed); an empty or
  runaway reply falls back to the deterministic rewrite.
- Otherwise (local and extractive backends) the rewrite is deterministic: a question that looks like a
  follow-up -- it has a pronoun or demonstrative ("it", "they", "this", "它", "这"), starts like one ("what
  about", "and", "那", "还有"), or has no content word at all ("Why?") -- gets the salient terms (content
  words, in order) of the previous standalone question appended in parentheses, those it does not already
  contain. Earlier turns are rewritten the same way first, so a chain of follow-ups keeps its topic. Other
  questions are left as they are: "What is BM25?" after a question about the Transformer is a new topic.

Only the user turns of ``history`` are used by the deterministic rewrite; the assistant's answers are not
(they quote documents, which are untrusted).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from rag.text.langdetect import CJK_CHARS, detect_language, is_cjk_language

if TYPE_CHECKING:
    from rag.answer.generators.base import Generator

log = logging.getLogger(__name__)

History = list[tuple[str, str]]

MAX_TERMS = 6
MAX_REWRITE_CHARS = 500

_CJK_RUN = re.compile(f"[{CJK_CHARS}]+")
_WORD = re.compile(r"[^\W_]+(?:[-'.][^\W_]+)*", re.UNICODE)
_LABEL = re.compile(r"^\s*(standalone question|question|rewritten question|独立问题|问题)\s*[:：]\s*", re.IGNORECASE)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


PRONOUNS_EN = _words(
    "it its itself they them their theirs this that these those he him his she her hers such former latter there"
)
FOLLOW_UP_STARTS_EN = ("what about", "how about", "and ", "also", "what else", "tell me more", "more on")
STOPWORDS_EN = _words(
    "a an the of in on at to for from by with about as into over under and or but not no is are was were be been "
    "being am do does did done doing have has had having can could will would shall should may might must "
    "what which who whom whose when where why how many much more most some any all each every other "
    "i me my we our you your it its they them their this that these those he him his she her there here "
    "please tell explain describe give show list say said use used using mean means"
)
PRONOUNS_ZH = ("它", "他", "她", "这", "那", "其", "该", "此", "上述", "前者", "后者")
FOLLOW_UP_STARTS_ZH = ("那", "还有", "另外", "而", "以及", "和")
STOPWORDS_ZH = _words(
    "的 了 是 在 和 与 及 或 呢 吗 吧 啊 么 什么 哪 哪个 哪些 哪一年 哪年 哪里 怎么 怎样 如何 为什么 为何 多少 几 谁 "
    "是否 有 有没有 一个 一种 这个 那个 这些 那些 它 它们 他 她 他们 请 介绍 解释 说明 一下"
)


def standalone_question(
    question: str, history: History | None, generator: Generator | None = None, language: str | None = None
) -> str:
    """``question`` made understandable without ``history`` (see the module doc). No history: unchanged.
    ``language``: the question's, when the caller detected it already."""
    if not history:
        return question
    raw = generator.rewrite_question(question, list(history)) if generator is not None else None
    if raw is not None:
        written = _clean(str(raw))
        if written and len(written) <= max(MAX_REWRITE_CHARS, 4 * len(question)):
            log.info("follow-up %r rewritten by %s as %r", question, generator.name if generator else "?", written)
            return written
        log.warning("the generator's rewrite of %r was unusable (%r); rewriting deterministically", question, written)
    return rewrite_follow_up(question, [user for user, _ in history], language)


def rewrite_follow_up(question: str, previous_questions: list[str], language: str | None = None) -> str:
    """Deterministic rewrite: each previous question is made standalone in turn, then ``question`` against the
    last of them."""
    context = ""
    for previous in previous_questions:
        context = _rewrite_one(previous, context) if context else previous
    return _rewrite_one(question, context, language) if context else question


def is_follow_up(question: str, language: str | None = None) -> bool:
    text = question.strip().lower()
    if is_cjk_language(language or detect_language(question)):
        if text.startswith(FOLLOW_UP_STARTS_ZH) or any(p in text for p in PRONOUNS_ZH):
            return True
    else:
        words = _WORD.findall(text)
        if text.startswith(FOLLOW_UP_STARTS_EN) or any(w in PRONOUNS_EN for w in words):
            return True
    return not content_terms(question)


def content_terms(text: str) -> list[str]:
    """Content words of ``text`` as written (Latin words, jieba words for CJK runs), in order, without repeats."""
    from rag.text.lexical import _jieba

    jieba = _jieba()  # initialised once, quietly
    terms: dict[str, str] = {}
    for match in re.finditer(_CJK_RUN.pattern + "|" + _WORD.pattern, text):
        piece = match.group(0)
        words = jieba.lcut(piece) if _CJK_RUN.fullmatch(piece) else [piece]  # type: ignore[attr-defined]
        for word in words:
            key = word.lower()
            if key in STOPWORDS_EN or word in STOPWORDS_ZH or (_CJK_RUN.fullmatch(word) and len(word) < 2):
                continue
            terms.setdefault(key, word)
    return list(terms.values())


def _rewrite_one(question: str, previous: str, language: str | None = None) -> str:
    if not is_follow_up(question, language):
        return question
    have = {t.lower() for t in content_terms(question)}
    lowered = question.lower()
    extra = [t for t in content_terms(previous) if t.lower() not in have and t.lower() not in lowered][:MAX_TERMS]
    if not extra:
        return question
    return f"{question.rstrip()} ({' '.join(extra)})"


def _clean(reply: str) -> str:
    for line in reply.strip().splitlines():
        line = _LABEL.sub("", line).strip().strip("\"'“”「」").strip()
        if line:
            return line
    return ""
