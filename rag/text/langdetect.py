"""Script-based language guess: enough to pick the embedder, the tokenizer and the answer language."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from rag.text import t2s

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


# Which script a Chinese text is written in: characters only Traditional writes against those only Simplified
# writes (``rag.text.t2s``). Both scripts are Chinese (``zh``) to every other stage; the texts rag writes itself
# (refusals) follow the script, and a Traditional question is also matched in Simplified characters.
_HANT_CHAR = re.compile(f"[{t2s.TRADITIONAL}]")
_HANS_CHAR = re.compile(f"[{''.join(sorted(set(t2s.SIMPLIFIED) - set(t2s.SHARED)))}]")
_TO_SIMPLIFIED = str.maketrans(t2s.TRADITIONAL, t2s.SIMPLIFIED)


def chinese_script(text: str) -> str:
    """``Hant`` when ``text`` writes more Traditional-only than Simplified-only characters, else ``Hans`` (also
    for text that has neither: Simplified is the default written form)."""
    return "Hant" if len(_HANT_CHAR.findall(text)) > len(_HANS_CHAR.findall(text)) else "Hans"


@cache
def _opencc() -> Callable[[str], str] | None:
    """OpenCC's Traditional -> Simplified converter (phrase-aware) when a Python OpenCC is installed, else None."""
    try:
        import opencc  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    for config in ("t2s", "t2s.json"):
        try:
            converter = opencc.OpenCC(config)
            return converter.convert  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 (another packaging of OpenCC names its configs differently)
            continue
    return None


def to_simplified(text: str) -> str:
    """``text`` with Traditional characters written in Simplified ones (OpenCC where installed, else rag's table of
    the frequent characters); Simplified and non-Chinese text come back unchanged."""
    convert = _opencc()
    return convert(text) if convert is not None else text.translate(_TO_SIMPLIFIED)


def is_cjk_language(lang: str) -> bool:
    return lang in ("zh", "ja", "ko")
