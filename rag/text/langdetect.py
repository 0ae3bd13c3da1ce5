"""Script-based language guess: enough to pick the embedder, the tokenizer and the answer language."""

from __future__ import annotations

import re

# Chinese, Japanese and Korean characters (a character class's body), for every pattern that needs them.
CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
CJK_CHAR = re.compile(f"[{CJK_CHARS}]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a Chinese, Japanese or Korean character."""
    return CJK_CHAR.search(text) is not None


def cjk_ratio(text: str) -> float:
    """Share of CJK characters among letters, counting a Latin word (~5 letters) as one unit."""
    cjk = len(CJK_CHAR.findall(text))
    latin_words = len(_LETTER.findall(text)) / 5.0
    total = cjk + latin_words
    return cjk / total if total else 0.0


def detect_language(text: str) -> str:
    """``zh``, ``ja``, ``ko`` or ``en`` (any Latin-script text) from the characters used."""
    if cjk_ratio(text) < 0.3:
        return "en"
    if len(_KANA.findall(text)) > 0.1 * max(1, len(CJK_CHAR.findall(text))):
        return "ja"
    if len(_HANGUL.findall(text)) > 0.3 * max(1, len(CJK_CHAR.findall(text))):
        return "ko"
    return "zh"


def is_cjk_language(lang: str) -> bool:
    return lang in ("zh", "ja", "ko")
