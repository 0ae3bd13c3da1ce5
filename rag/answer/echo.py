"""A small model's factoid answer written as a sentence that restates the question, cut to the words that answer it.

The 0.5B model, asked "What is the section of the Rhine Gorge recognized by UNESCO called?", writes "The section of
the Rhine Gorge recognized by UNESCO is called the Romantic Rhine"; asked "隆柯龙类是哪一类的一个演化支？", it
writes "隆柯龙类是泰坦巨龙类的一个演化支。". ``trim_echo`` keeps "the Romantic Rhine" and "泰坦巨龙类": the words at
the start or end of the answer that only repeat the question are dropped when there are enough of them to be an
echo (two content words in English, four characters in Chinese, Japanese or Korean). One sentence only; citations
stay at the end. Anything else is returned unchanged.

``without_attribution`` drops an opening that only says where the answer comes from ("The passage states that",
"According to the passages,", "根据资料，"): the citations say that.

``only_echoes`` tells a short answer made of nothing but the question's own words ("1937" for "What article was
published in 1937?", "梅尔菲伯爵" for "谁是梅尔菲伯爵？"): no answer at all, which the check step replaces.
"""

from __future__ import annotations

import re

from rag.text.langdetect import has_cjk
from rag.text.lexical import CJK_QUESTION_WORD, STOPWORDS, content_words, stems
from rag.text.sentences import split_sentences

ECHO_MIN_WORDS = 7  # a short answer of fewer words is left as written
_ECHO_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")
_TRAILING_MARKERS = re.compile(r"((?:\s*\[\d{1,3}\])*)\s*$")


def trim_echo(text: str, question: str) -> str:
    """A factoid answer written as a sentence, cut to its answer: the words at its start or end that only restate
    the question ("The time required ... is expressed as | the number of state transitions") are dropped when
    they hold two or more of the question's content words. One English sentence only; citations stay at the end."""
    body, markers = split_markers(text)
    if len(split_sentences(body)) > 1:
        return text
    if has_cjk(body):
        trimmed = _echo_cjk(body, question)
        if trimmed != body:  # once more: a space the question lacks ("1937 年") stops the first cut short
            trimmed = _echo_cjk(trimmed, question)
        return text if trimmed == body else with_markers(trimmed, markers)
    if not body.isascii():
        return text
    words = list(_ECHO_WORD.finditer(body))
    if len(words) < ECHO_MIN_WORDS:
        return text
    asked = stems(content_words(question))

    def echo(word: str) -> bool:
        w = word.lower()
        return w in STOPWORDS or next(iter(stems({w}))) in asked

    def run(order: list[re.Match[str]]) -> int:
        n = 0
        while n < len(order) and echo(order[n].group()):
            n += 1
        content = sum(1 for w in order[:n] if w.group().lower() not in STOPWORDS)
        return n if content >= 2 else 0

    start = run(words)
    end = len(words) - run(words[::-1])
    kept = words[start:end]
    if not kept or all(w.group().lower() in STOPWORDS for w in kept):
        return text
    answer = body[kept[0].start() : kept[-1].end()]
    if end == len(words):  # the answer's own ending ("(yes or no).") stays
        answer = body[kept[0].start() :].rstrip()
    return with_markers(answer, markers)


_ATTRIBUTION = re.compile(
    r"^\s*(?:(?:according\s+to|based\s+on)\s+(?:the\s+)?(?:given\s+|provided\s+)?(?:passages?|context|documents?|text)"
    r"(?:\s*\[\d{1,3}\])*\s*,\s*"
    r"|the\s+(?:given\s+|provided\s+)?(?:passages?|context|documents?|text)(?:\s*\[\d{1,3}\])*\s+"
    r"(?:states?|says?|mentions?|indicates?|explains?|describes?)\s+(?:that\s+)?"
    r"|(?:根据|依据|按照)(?:以上|上述)?(?:资料|段落|文章|文档|内容|材料)[，,：:]\s*)",
    re.IGNORECASE,
)


def without_attribution(text: str) -> str:
    """``text`` less an opening that only attributes it to the passages, its next letter capitalised."""
    rest = _ATTRIBUTION.sub("", text, count=1)
    if rest == text or not rest.strip():
        return text
    return rest[:1].upper() + rest[1:]


_CHOICE = re.compile(r"\bor\b|还是|或者|或是", re.IGNORECASE)


def only_echoes(answer: str, question: str) -> bool:
    """Whether ``answer`` (markers stripped) holds content words and all of them are the question's, for a question
    that offers no choice to pick from ("A or B?", "A还是B？", whose answer is rightly one of its words)."""
    said = content_words(answer)
    return bool(said) and not _CHOICE.search(question) and said <= content_words(question)


def split_markers(text: str) -> tuple[str, re.Match[str] | None]:
    """``text`` less the citation markers it ends with ("... [1] [2]"), and the match of those markers."""
    markers = _TRAILING_MARKERS.search(text)
    return (text[: markers.start()] if markers else text), markers


def with_markers(answer: str, markers: re.Match[str] | None) -> str:
    """``answer`` followed by the citation markers the untrimmed text ended with."""
    trailing = markers.group(1).strip() if markers else ""
    return f"{answer} {trailing}".strip() if trailing else answer


# The question word whose slot the answer fills: 哪一年, 什么, 谁, 多少, 几个, 何时 ...
CJK_ECHO_MIN_CHARS = 4  # characters of the question repeated at the answer's edges, at least, to count as an echo
CJK_KEEP_MIN_CHARS = 2  # and the answer left must keep at least this many
# One of these left at an echo's edge goes with it ("由 | Lewis 等人于 2020 年 | 提出"); few words start or end so
_LEADING = "的是了由被将"
_TRAILING = "的是了"
_CLAUSE = re.compile(r"[，,；;]")
_PUNCTUATION = " \t\n。，、；：？！,.;:?!\"'“”‘’（）()《》「」"


def _echo_cjk(body: str, question: str) -> str:
    """``body`` less its start where it repeats the question's words before the question word, and its end where it
    repeats those after it: "隆柯龙类是 | 泰坦巨龙类 | 的一个演化支" for "隆柯龙类是 | 哪一类 | 的一个演化支？".
    The repeat may be only the end of the words before ("现代是 | 罗马天主教会和教宗权威 | 的标志" for
    "宗座华盖在现代是什么的标志？"); for a date or number, the words before may also come after the answer
    ("1979年 | 第一次直接选举")."""
    asked = _rstrip("".join(question.split())).rstrip("的呢吗")
    wh = CJK_QUESTION_WORD.search(asked)
    if wh is None:
        return body
    before, after = asked[: wh.start()], asked[wh.end() :]
    if not after and before.endswith("是") and "的" not in before:  # "jieba 是什么？": a definition names its subject
        return body
    text = _strip(body)
    head = max(_common(text, before), _overlap(before, text))  # "现代是 | ..." for "宗座华盖在现代是什么..."
    tail = max(_common(text[head:][::-1], after[::-1]), _overlap(text[head:], after))
    if _ASKS_WHEN.search(asked[wh.start() : wh.end() + 2]):
        # the subject moved behind a date or number: "1979年 | 第一次直接选举" for "第一次直接选举是什么时候..."
        tail += _moved(text[head : len(text) - tail], before)
    if head + tail < CJK_ECHO_MIN_CHARS:
        return body
    rest = _strip(text[head : len(text) - tail])
    clauses = [c for c in _CLAUSE.split(rest) if c.strip()]
    while len(clauses) > 1 and set(clauses[0].strip()) <= set(asked):  # "后，| 诗人珀西·雪莱写了": "后" echoes "之后"
        clauses.pop(0)
    while len(clauses) > 1 and set(clauses[-1].strip()) <= set(asked):
        clauses.pop()
    rest = "，".join(c.strip() for c in clauses) if len(clauses) > 1 else (clauses[0].strip() if clauses else "")
    if head and rest[:1] in _LEADING:
        rest = rest[1:].strip()
    if tail and rest[-1:] in _TRAILING:
        rest = rest[:-1].strip()
    return rest if len(rest) >= CJK_KEEP_MIN_CHARS else body


# an asking word, with the two characters after it ("什么时候"), whose answer is a date, time or number
_ASKS_WHEN = re.compile(r"时|年|多少|几")


def _overlap(a: str, b: str) -> int:
    """Length of the longest end of ``a`` that ``b`` starts with."""
    return max((k for k in range(1, min(len(a), len(b)) + 1) if a.endswith(b[:k])), default=0)


def _moved(text: str, before: str) -> int:
    """Length of the end of ``text`` that repeats ``before`` (the question's words ahead of its asking word) word
    for word, when it is CJK_ECHO_MIN_CHARS long or more; else 0."""
    k = 0
    while k < len(text) and text[len(text) - k - 1 :] in before:
        k += 1
    return k if k >= CJK_ECHO_MIN_CHARS else 0


_CLOSERS = {"》": "《", "）": "（", ")": "(", "」": "「", "”": "“", "』": "『"}


def _strip(text: str) -> str:
    """``text`` without punctuation at its edges, but keeping a closing bracket or quote whose opening one it holds
    ("《终结战争的机器》")."""
    return _rstrip(text.lstrip(_PUNCTUATION))


def _rstrip(text: str) -> str:
    core = text.rstrip(_PUNCTUATION)
    for ch in text[len(core) :]:
        opener = _CLOSERS.get(ch)
        if opener is None or core.count(opener) <= core.count(ch):
            break
        core += ch
    return core


def _common(a: str, b: str) -> int:
    """Length of the common start of ``a`` and ``b``."""
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n
