"""Identifiers in running text, for the lexical index: each kept whole as well as in its parts.

Documentation questions name identifiers: ``response_model_exclude_unset``, ``HTTPException``,
``app.include_router``, ``--forwarded-allow-ips``, ``debian/rules``, ``0.95.0``. The word tokenizer
(``rag.text.lexical.tokenize``) cuts them at every non-letter, so BM25 sees only common parts ("response",
"model") and a chunk that names the identifier scores like any chunk that uses those words. Here a *span* (a run
of letters, digits and the connectors ``_ . - / :``) adds:

- its *whole* (lower-cased, end punctuation stripped; a leading ``-``/``--`` of a flag and the ``__`` of a
  dunder kept; letters joined only by hyphens closed up, see ``closed_up``): one rare term that only chunks
  naming the identifier hold, so BM25 gives it a high weight;
- for a flag whose name is itself compound, the name without its dashes (``forwardedallowips``);
- for a dotted name, path, URL or version, its compound segments (``include_router`` of
  ``app.include_router``) and its leading prefixes (``fastapi.security`` of
  ``fastapi.security.OAuth2PasswordBearer``, ``usr/share/doc`` of ``/usr/share/doc/foo``, ``0.95`` of
  ``0.95.0``), so a question naming the shorter form still meets the whole term;
- the camelCase / PascalCase parts of its words (``http``, ``exception`` of ``HTTPException``), which the word
  tokenizer keeps as one word (single letters left out).

The parts the word tokenizer already gives stay as they are: they give recall for a question that spells the
identifier as words ("response model exclude unset").
"""

from __future__ import annotations

import re

# The connectors that join a span's words besides ``_`` (a word character), as a character class body.
CONNECTORS = r"./:\-"
_WORD = re.compile(r"[^\W_]+")
_FLAG = re.compile(r"-{1,2}(?=[^\W\d_])")
_SEGMENT = re.compile(r"[^./:]+")  # the segments of a dotted name, path, URL or version
CAMEL_WORD = re.compile(r"[a-z\d][A-Z]|[A-Z]{2}[a-z]{2}")  # a word written in camel case
# A lower-case letter or digit then a capital (fooBar, v2Api); the last capital of a run before a lower-case word
# (HTTPException: HTTP|Exception; PDFs and IDs stay whole); letters then digits and digits then letters.
_CAMEL_CUT = re.compile(r"(?<=[a-z\d])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]{2})|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_LETTER_COMPOUND = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")
_MAX_WHOLE = 80  # longer spans (a long URL, an encoded blob) add no whole term
_MAX_PREFIXES = 6
_ENDS = "./:-"
_DUNDER_HEAD = re.compile(r"__(?=[^\W_])")
_DUNDER_TAIL = re.compile(r"(?<=[^\W_])__$")


def camel_parts(word: str) -> list[str]:
    """The lower-cased camelCase / PascalCase parts of ``word`` (``BackgroundTasks``: background, tasks), or
    nothing for a word that is not written in camel case (``Python``, ``HTTP``, ``PDFs``). Single letters are
    left out (the O of OAuth, the m of mRNA): as terms they mean nothing and only add noise to the ranking."""
    if not CAMEL_WORD.search(word):
        return []
    return [p.lower() for p in _CAMEL_CUT.split(word) if len(p) > 1]


def closed_up(core: str) -> str:
    """A compound of letters joined by hyphens written closed up (``fastapi-slim``: fastapislim), any other span
    as it is. Such a compound is as often an English word (``pro-inflammatory``, ``e-mail``, ``Server-Sent``) as
    a name, and English writes those both ways: closed up, the whole term meets both spellings (and the camel
    case class name, ``ServerSentEvent``), where the hyphenated whole favoured, with a rare term's weight,
    only the documents that happen to hyphenate (SciFact BM25 nDCG@10 over whole abstracts: 0.6967 hyphenated,
    0.6993 closed up, 0.7010 with words only)."""
    return "".join(_WORD.findall(core)) if _LETTER_COMPOUND.fullmatch(core) else core


def _core(text: str) -> str:
    """``text`` without end punctuation or stray underscores; a dunder's ``__`` kept (``__init__``)."""
    body = text.strip(_ENDS)
    head = "__" if _DUNDER_HEAD.match(body) else ""
    tail = "__" if _DUNDER_TAIL.search(body) else ""
    return head + body.strip(_ENDS + "_") + tail


def _compound(core: str, words: list[str]) -> bool:
    """Whether ``core`` is more than one of its words (a connector, or a dunder's underscores, in it)."""
    return len(words) > 1 or (len(words) == 1 and core != words[0])


def identifier_tokens(span: str) -> list[str]:
    """The terms a span adds to its words (see the module's doc): none for a plain word."""
    flag = _FLAG.match(span)
    lead = flag.group() if flag else ""
    core = _core(span)
    words = _WORD.findall(core)
    out: list[str] = []
    whole = lead + core
    if len(whole) <= _MAX_WHOLE and (lead or _compound(core, words)):
        out.append((whole if lead else closed_up(core)).lower())
        if lead and _compound(core, words):
            out.append(closed_up(core).lower())
        segments = list(_SEGMENT.finditer(core))
        if len(segments) > 1:
            for seg in segments:
                part = _core(seg.group())
                if _compound(part, _WORD.findall(part)):
                    out.append(closed_up(part).lower())
            out.extend(core[: seg.end()].lower() for seg in segments[1 : min(len(segments) - 1, _MAX_PREFIXES + 1)])
    for word in words:
        out.extend(camel_parts(word))
    return out
