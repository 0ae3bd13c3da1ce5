"""Tokenizing for the lexical (BM25) side: jieba search-mode words for CJK runs, lower-cased words otherwise.

English stemming is done by SQLite FTS5's porter tokenizer over the tokens produced here.
"""

from __future__ import annotations

import logging
import re
import threading

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
# CJK runs, or runs of other letters/digits (CJK characters are word characters too: keep them out)
_RUNS = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)", re.UNICODE)
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


def tokenize(text: str) -> list[str]:
    """Words of ``text``: CJK runs segmented with jieba (search mode), other words lower-cased."""
    tokens: list[str] = []
    for cjk, word in _RUNS.findall(text):
        if cjk:
            jieba = _jieba()
            tokens.extend(t for t in jieba.lcut_for_search(cjk) if t.strip())  # type: ignore[attr-defined]
        elif word:
            tokens.append(word.lower())
    return tokens


def fts_query(text: str) -> str:
    """An FTS5 MATCH expression that ORs the quoted tokens of ``text`` (empty when it has none)."""
    seen: dict[str, None] = {}
    for token in tokenize(text):
        seen.setdefault(token, None)
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in seen)
