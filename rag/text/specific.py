"""The specific words of a question: names of things (``gRPC``, ``QUIC``, ``debcargo``, ``dune``) rather than the
words any text uses. A how-to question that names a thing the documents never mention cannot be answered from
them, however close its passages are to the rest of it ("How do I build the stubs with dune?" over a manual that
builds them with make): ``rag.answer.turn.plan`` refuses it, naming the word, instead of letting the model write
steps for a tool no passage holds.

"Specific" is measured against the language at large, not the folder: a word counts when it is rarer than
``MAX_ZIPF`` on wordfreq's Zipf scale (10 per million words; "upgrade" and "install" are common, "kilowatt",
"gRPC" and "dune" are not), so an ordinary word that a small folder happens not to use is never one. Only words in
Latin script count (in a Chinese question too: product and tool names are written so): jieba cuts questions into
strings no document holds far more often (2-7% of XQuAD zh and CMRC questions), which are not names of anything.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable

from rag.text.lexical import STOPWORDS

log = logging.getLogger(__name__)

MAX_ZIPF = 4.0
_LATIN = "0-9A-Za-z\u00c0-\u024f"
_WORD = re.compile(f"[{_LATIN}](?:[{_LATIN}_.+/-]*[{_LATIN}+])?")
_LETTER = re.compile("[A-Za-z\u00c0-\u024f]")


@functools.cache
def _zipf() -> Callable[[str, str], float] | None:
    try:
        from wordfreq import zipf_frequency
    except ImportError:  # a dependency: only a broken install lacks it, and then no word is judged specific
        log.warning("wordfreq is not installed: questions naming what no document mentions are not refused")
        return None
    return zipf_frequency  # type: ignore[no-any-return]


def load() -> None:
    """Load the English word list now (about half a second, once per process): ``rag serve`` does it while warming
    up, so the first how-to question does not pay for it."""
    zipf = _zipf()
    if zipf is not None:
        zipf("the", "en")


def specific_words(text: str, max_zipf: float = MAX_ZIPF) -> list[str]:
    """The distinct Latin-script words of ``text`` (identifiers and versions whole: ``HTTP/3``, ``asn1_der``) of
    three or more characters, not function words, rarer than ``max_zipf`` in English usage, in order."""
    zipf = _zipf()
    if zipf is None:
        return []
    words = []
    for word in dict.fromkeys(_WORD.findall(text)):
        if len(word) < 3 or not _LETTER.search(word) or word.lower() in STOPWORDS:
            continue
        if zipf(word, "en") < max_zipf:
            words.append(word)
    return words
