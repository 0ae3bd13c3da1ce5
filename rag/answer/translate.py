"""A question asked in one language over documents written mostly in another: the generator translates it.

Multilingual E5 puts a Chinese question near Chinese passages before English ones that hold its answer (docsqa
fa-x: a source in the top 4 for 1 of 10 questions with the question alone), and BM25 shares no words across the
two. So when the question's language is the smaller part of the index, the generator writes the question in the
index's main language and the pipeline fuses both searches (``rag.retrieve.search.fuse``). Names, code, options
and numbers stay as written.
"""

from __future__ import annotations

import logging
import re

from rag.answer.generators.base import Generator
from rag.answer.prompting import LANGUAGE_NAMES

log = logging.getLogger(__name__)

MAX_TOKENS = 96
SHARE = 0.5  # the question's language holds less than this share of the documents: translate

_PROMPT = (
    "Translate the user's question into {language}. Keep names, code, commands, options, file names and numbers "
    "exactly as they are. Reply with the translated question only."
)


def target_language(language: str, documents: dict[str, int]) -> str | None:
    """The index's main language when the question's ``language`` holds under ``SHARE`` of the ``documents``
    (language -> count) and the main one is a language the generator is asked to write; else None."""
    total = sum(documents.values())
    if not total or documents.get(language, 0) / total >= SHARE:
        return None
    main = max(documents, key=lambda name: documents[name])
    return main if main != language and main in LANGUAGE_NAMES else None


def translated(question: str, language: str, generator: Generator) -> str | None:
    """``question`` in ``language`` (a code of ``LANGUAGE_NAMES``), by ``generator``'s chat model; None when it
    has none or its reply is not a question-sized line."""
    messages = [
        {"role": "system", "content": _PROMPT.format(language=LANGUAGE_NAMES[language])},
        {"role": "user", "content": question},
    ]
    reply = generator.chat(messages, MAX_TOKENS)
    if not reply:
        return None
    line = re.sub(r"^\s*(?:translation|translated question)\s*[:：]\s*", "", reply.strip().splitlines()[0], flags=re.I)
    line = line.strip().strip('"“”')
    if not line or len(line) > 4 * len(question) + 40:
        return None
    log.info("searching also for the question in %s: %s", language, line)
    return line
