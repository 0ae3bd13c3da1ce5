"""How often the "names what no document mentions" refusal (``rag.answer.turn.unmentioned_words``) fires, by the rule
alone (no model): on docsqa's unanswerable questions (it should) and on answerable ones (it should not: docsqa's
answerable 75, and the questions of XQuAD en/zh and CMRC dev, whose answer is always in their corpus). Counts the
how-to/why questions the rule judges, and, for comparison, what it would do to every question whatever its form.

    python benchmarks/unmentioned.py [--index /tmp/rag-docsqa/main] [--sets xquad/beir_en,xquad/beir_zh,...]

``--index``: a docsqa index made by ``benchmarks/docsqa.py`` (its default index root); skipped when absent.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from quality import data_root  # type: ignore[import-not-found]

from rag.answer.prompting import answer_form
from rag.answer.turn import unmentioned_words
from rag.index.folder import IndexDir
from rag.index.lexical import LexicalIndex
from rag.text.langdetect import detect_language

Question = tuple[str, bool]  # text, answerable


def rates(questions: list[Question], mentions: Callable[[str], bool]) -> dict[str, str]:
    judged = fired_judged = fired_all = unans = unans_fired = 0
    examples = []
    for text, answerable in questions:
        words = unmentioned_words(text, "", mentions)
        language = detect_language(text) or "en"
        howto = answer_form(text, language) != "short"
        if words:
            fired_all += 1
        if howto:
            judged += 1
            if words:
                fired_judged += 1
                if answerable:
                    examples.append(f"{text[:60]} {list(words)}")
        if not answerable:
            unans += 1
            unans_fired += bool(words and howto)
    n = len(questions)
    out = {
        "questions": str(n),
        "how-to/why": str(judged),
        "refused (answerable)": f"{fired_judged - unans_fired} ({(fired_judged - unans_fired) / max(1, n):.3f})",
        "any form would refuse": f"{fired_all} ({fired_all / max(1, n):.3f})",
    }
    if unans:
        out["unanswerable refused"] = f"{unans_fired} of {unans}"
    if examples:
        out["answerable refused, e.g."] = "; ".join(examples[:3])
    return out


def beir(name: str) -> tuple[list[Question], Callable[[str], bool]]:
    folder = data_root() / name
    language = "zh" if ("zh" in name or "cmrc" in name) else "en"
    path = Path(tempfile.mkdtemp()) / "lexical"
    writer = LexicalIndex.open(path, writable=True)
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    writer.add((i, i, language, f"{d.get('title', '')} {d['text']}") for i, d in enumerate(docs))
    writer.commit()
    writer.close()
    index = LexicalIndex.open(path)
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        questions = [(json.loads(line)["text"], True) for line in f]
    return questions, index.mentions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, default=Path(tempfile.gettempdir()) / "rag-docsqa" / "main")
    parser.add_argument("--sets", default="xquad/beir_en,xquad/beir_zh,cmrc2018/beir_dev")
    args = parser.parse_args()
    rows: dict[str, dict[str, str]] = {}
    if (args.index / "manifest.json").is_file():
        snapshot = IndexDir(args.index).open_snapshot()
        with open(data_root() / "docsqa" / "questions.jsonl", encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
        questions = [(r["question"], r["kind"] != "unanswerable") for r in records]
        rows["docsqa"] = rates(questions, snapshot.store.mentions)
    else:
        print(f"(no docsqa index at {args.index}: run benchmarks/docsqa.py first)")
    for name in filter(None, args.sets.split(",")):
        if (data_root() / name / "corpus.jsonl").is_file():
            rows[name] = rates(*beir(name))
    for name, row in rows.items():
        print(f"\n## {name}")
        for key, value in row.items():
            print(f"  {key:28} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
