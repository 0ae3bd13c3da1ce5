"""Tokenizing for the lexical (BM25) side: jieba search-mode words for CJK runs, lower-cased words otherwise.

``tokenize`` gives the words (what answer checks and the fakes compare); ``index_tokens``, what the lexical
index holds for a chunk and searches for a query, adds identifiers whole and in their camelCase parts
(``rag.text.identifiers``). English stemming (Snowball) and diacritics folding are done by the lexical engine's
analyzer over the tokens produced here (``rag.index.lexical``; indexes made before it used SQLite FTS5's porter
tokenizer).
"""

from __future__ import annotations

import logging
import re
import threading

from rag.text.identifiers import CONNECTORS, identifier_tokens
from rag.text.langdetect import CJK_CHARS

# Recorded in the manifest: an index's lexical rows were made by this tokenizer. Bump the version whenever
# ``tokenize`` changes the tokens it gives for a text; a writer then re-tokenizes the stored chunks.
# 1: FTS5 porter over these tokens; 2: tantivy, ASCII folding + Snowball English stemming over them; 3: the same
# over ``index_tokens`` (identifiers whole and in parts besides the words).
TOKENIZER = "jieba-search+lower+identifiers/tantivy-fold-snowball"
LEXICAL_VERSION = 3

# CJK runs, or runs of other letters/digits (CJK characters are word characters too: keep them out)
_RUNS = re.compile(rf"([{CJK_CHARS}]+)|([^\W_{CJK_CHARS}]+)", re.UNICODE)
# CJK runs; plain words (no capital after the first letter, or capitals then digits: "DNA", "BM25"; end punctuation
# skipped); or spans of letters/digits joined by identifier connectors (``_`` is a word character). Plain words,
# most of a text, cost one regex match and add nothing.
_SPAN_CHAR = rf"(?:[^\W{CJK_CHARS}]|[{CONNECTORS}])"
_PLAIN = rf"[^\W_{CJK_CHARS}][^\W_A-Z{CJK_CHARS}]*|[A-Z]+[0-9]*"
_SPANS = re.compile(rf"([{CJK_CHARS}]+)|({_PLAIN})[{CONNECTORS}]*(?!{_SPAN_CHAR})|({_SPAN_CHAR}+)", re.UNICODE)
_SPAN_WORDS = re.compile(r"[^\W_]+")
_jieba_lock = threading.Lock()
_jieba_ready = False


def _jieba() -> object:
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return jieba


def load_tokenizer() -> None:
    """Load jieba's dictionary now (about a second) rather than on the first Chinese text."""
    _jieba()


def tokenize(text: str) -> list[str]:
    """Words of ``text``: CJK runs segmented with jieba (search mode), other words lower-cased."""
    tokens: list[str] = []
    for cjk, word in _RUNS.findall(text):
        if cjk:
            tokens.extend(_cjk_words(cjk))
        elif word:
            tokens.append(word.lower())
    return tokens


def index_tokens(text: str) -> list[str]:
    """The lexical index's terms for ``text``, a chunk's or a query's: ``tokenize``'s words (the same, in the same
    order) with, after each identifier's words, the identifier whole and its other parts
    (``rag.text.identifiers``), so a question that writes it either way matches and the whole is a rare term."""
    tokens: list[str] = []
    for cjk, word, span in _SPANS.findall(text):
        if cjk:
            tokens.extend(_cjk_words(cjk))
        elif word:
            tokens.append(word.lower())
        elif span:
            tokens.extend(w.lower() for w in _SPAN_WORDS.findall(span))
            tokens.extend(identifier_tokens(span))
    return tokens


def _cjk_words(run: str) -> list[str]:
    jieba = _jieba()
    return [t for t in jieba.lcut_for_search(run) if t.strip()]  # type: ignore[attr-defined]


# Function words left out of queries (not of the index): BM25 gives them almost no weight anyway, but every
# chunk that contains one must be scored, which at a million chunks costs most of a second per query.
_STOPWORDS_TEXT = """a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor
not of off on once only or other our ours ourselves out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
的 了 是 在 和 与 及 或 也 都 就 而 被 把 由 对 从 吗 呢 吧 啊 之 其 这 那 个 有 为 以 于 中"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

# A question's own asking words ("哪一年", "谁", "多少", "how many"): never in the passage that answers it, so a
# measure of how much of a question a passage covers leaves them out (English wh-words are STOPWORDS already).
CJK_QUESTION_WORD = re.compile(
    r"哪一?[个些条位家种类样款年里儿国座所部本支场次届]?|什么|谁|多少|几[个年岁次位种名]?|何[时地处人种]"
)
_QUESTION_WORDS_EN = frozenset({"many", "much"})


def is_question_word(token: str) -> bool:
    """Whether a token of a question only asks (see ``CJK_QUESTION_WORD``), rather than names what it is about."""
    return token in _QUESTION_WORDS_EN or (not token.isascii() and CJK_QUESTION_WORD.search(token) is not None)


def content_words(text: str) -> set[str]:
    """The tokens of ``text`` that carry meaning: function words and single ASCII characters left out."""
    return {t for t in tokenize(text) if t not in STOPWORDS and (len(t) > 1 or not t.isascii())}


_stemmer: object = None


def stems(words: set[str]) -> set[str]:
    """``words`` with English words reduced to their Snowball stem ("protestants" and "protestant" both give
    "protest"), as the lexical engine indexes them; other words unchanged."""
    global _stemmer
    if _stemmer is None:
        import tantivy

        builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw())
        _stemmer = builder.filter(tantivy.Filter.stemmer("english")).build()
    return {_stem(w) for w in words}


def _stem(word: str) -> str:
    if not word.isascii() or not word.isalpha():
        return word
    out = _stemmer.analyze(word)  # type: ignore[attr-defined]
    return str(out[0]) if out else word


def fts_query(text: str) -> str:
    """An FTS5 MATCH expression that ORs the quoted tokens of ``text`` (empty when it has none), function words
    left out unless the query has nothing else."""
    seen: dict[str, None] = {}
    for token in tokenize(text):
        seen.setdefault(token, None)
    terms = [t for t in seen if t not in STOPWORDS] or list(seen)
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
