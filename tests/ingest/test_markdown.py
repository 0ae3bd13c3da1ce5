"""Markdown and MDX read as people write them: display text, front matter, headings, blocks, exact spans."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.ingest.chunking import Chunker
from rag.ingest.loaders.text import load_text
from rag.ingest.markdown import blocks, code_spans, display, front_matter, heading_path, headings

DOCSQA = Path(__file__).resolve().parents[3] / "shared" / "data" / "docsqa"

PAGE = """---
title: Deployment guide
team: ops
tags: [docker, k8s]
---

# Run it { #run-it }

Memory &ge; 16&nbsp;GB is needed. See [the FAQ](faq.md) and ![a diagram](img/d.png).

/// tip | Good to know

Use <abbr title="Asynchronous Server Gateway Interface">ASGI</abbr> servers, **always**.

///

{* ../../docs_src/run/tutorial001.py hl[3] *}

## Workers { #workers }

```bash
# keep this &amp; this **as is**

fastapi run --workers 4 main.py
```

| option | default |
|---|---|
| `--workers` | `1` |

<div class="x"><p>Inside a div.</p></div>
<style>.md h1 { display: none; }</style>
"""


def test_display_reduces_markup_and_keeps_code_verbatim() -> None:
    shown = display(PAGE.split("---\n", 2)[2])
    assert "Memory ≥ 16\xa0GB is needed." in shown
    assert "See the FAQ and a diagram." in shown
    assert "Tip: Good to know" in shown and "///" not in shown
    assert "Use ASGI servers, always." in shown
    assert "{*" not in shown and "{ #" not in shown and "display: none" not in shown
    assert "Inside a div." in shown and "<div" not in shown
    assert "# keep this &amp; this **as is**\n\nfastapi run --workers 4 main.py" in shown  # the fence untouched
    assert "| `--workers` | `1` |" in shown and "|---|" not in shown  # rows stay, the rule goes


def test_front_matter_gives_title_and_metadata_and_stays_out_of_chunks() -> None:
    body, keys = front_matter(PAGE)
    assert PAGE[body:].lstrip().startswith("# Run it")
    assert keys["team"] == "ops" and keys["tags"] == ["docker", "k8s"]
    doc = load_text(PAGE.encode(), "guide.md")
    assert doc.metadata == {"team": "ops", "tags": ["docker", "k8s"], "title": "Deployment guide"}
    chunks = Chunker(40, 5).split(doc)
    assert chunks and all("team: ops" not in c.text for c in chunks)


def test_chunks_keep_exact_spans_heading_paths_and_whole_code_fences() -> None:
    doc = load_text(PAGE.encode(), "guide.md")
    chunks = Chunker(60, 5, lambda s: len(s.split())).split(doc)
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text  # citations and highlights stay exact
        assert doc.text.count("\n", 0, chunk.start) + 1 == chunk.start_line
    fence = next(c for c in chunks if "fastapi run --workers 4" in c.shown)
    assert "```bash" in fence.shown and fence.shown.count("```") == 2  # not split inside
    assert fence.heading == "Deployment guide › Run it › Workers"
    first = next(c for c in chunks if "Memory" in c.shown)
    assert first.heading == "Deployment guide › Run it"
    assert first.indexed.startswith("Deployment guide › Run it\n") and "&ge;" not in first.indexed


def test_a_code_fence_longer_than_a_chunk_is_split_at_its_lines() -> None:
    code = "\n".join(f"value_{i} = compute({i})" for i in range(60))
    doc = load_text(f"# Big\n\n```python\n{code}\n```\n".encode(), "big.md")
    chunks = Chunker(50, 0, lambda s: len(s.split())).split(doc)
    assert len(chunks) > 2
    assert all(re.fullmatch(r"(#.*|```python|```|value_\d+ = compute\(\d+\))", line) for c in chunks for line in
               c.text.splitlines() if line)  # fmt: skip


def test_headings_inside_code_are_not_headings() -> None:
    text = "# Real\n\n```\n# a comment\n```\n\n## Also real { #x }\n"
    assert [(h.level, h.title) for h in headings(text)] == [(1, "Real"), (2, "Also real")]
    assert code_spans(text) == [(8, 27)]
    found = headings(text)
    assert heading_path(found, len(text) - 1, "Guide") == "Guide › Real › Also real"
    expected = ["# Real", "```\n# a comment\n```", "## Also real { #x }"]
    assert [text[a:b] for a, b in blocks(text, 0, len(text))] == expected


def test_mkdocs_admonitions_tabs_and_reference_blocks() -> None:
    page = '!!! warning "Careful"\n    Text.\n\n//// tab | Python 3.10+\n\ncode\n\n////\n\n::: fastapi.status\n'
    shown = display(page)
    assert shown.splitlines()[0] == "Warning: Careful"
    assert "Python 3.10+:" in shown and "////" not in shown and "fastapi.status" in shown and ":::" not in shown


@pytest.mark.skipif(not (DOCSQA / "fastapi").is_dir(), reason="../shared/data/docsqa is absent")
def test_no_markup_left_in_the_display_text_of_the_docsqa_markdown() -> None:
    markup = re.compile(
        r"&(?:[a-z]{2,8}|#\d{2,6});|^\s*(?:///|:::|!!!)|\{\*.*?\*\}|\{ ?#[\w-]+ ?\}|</?(?:div|span|img|a|br|p|abbr|"
        r"font|dfn|b|u|strong|em|small|details|summary|style|button|kbd|code|td|tr|th|table)\b[^>]*>",
        re.IGNORECASE | re.MULTILINE,
    )
    chunker = Chunker(200, 30, lambda s: len(s.split()))
    found: list[str] = []
    files = sorted((DOCSQA / "fastapi").rglob("*.md"))
    assert len(files) > 250
    for path in files:
        doc = load_text(path.read_bytes(), str(path))
        for chunk in chunker.split(doc):
            assert doc.text[chunk.start : chunk.end] == chunk.text
            prose = re.sub(r"```.*?```|`[^`\n]*`", " ", chunk.shown, flags=re.DOTALL)
            found += [f"{path.name}: {m.group()}" for m in markup.finditer(prose)]
    assert found == []
