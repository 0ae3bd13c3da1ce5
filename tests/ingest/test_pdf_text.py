"""PDF text as people read it: ligatures, line-end hyphens, running headers/footers, identifiers, page offsets.

Fast tests build their PDFs here with reportlab; the real-data test reads ../shared/data/docsqa and skips without it.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from pathlib import Path

import pytest

from rag.ingest.loaders import LoadOptions, load
from rag.ingest.loaders.pdftext import clean_pages, normalise_characters
from rag.types import Document

DOCSQA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "docsqa"
LIGATURES = re.compile("[\ufb00-\ufb06]")


def make_pdf(path: Path, pages: list[list[str]], font: str = "Helvetica") -> Path:
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    for lines in pages:
        pdf.setFont(font, 11)
        for i, line in enumerate(lines):
            pdf.drawString(72, 760 - 16 * i, line)
        pdf.showPage()
    pdf.save()
    return path


def vera() -> str:
    """reportlab's bundled Vera font, which has the fi and fl ligature glyphs."""
    import reportlab
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    pdfmetrics.registerFont(TTFont("Vera", os.path.join(os.path.dirname(reportlab.__file__), "fonts", "Vera.ttf")))
    return "Vera"


def page_text(doc: Document, number: int) -> str:
    bounds = [*doc.page_offsets, len(doc.text)]
    return doc.text[bounds[number - 1] : bounds[number]]


def norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


# --- characters -------------------------------------------------------------------------------


def test_ligatures_and_full_width_forms_are_normalised() -> None:
    assert normalise_characters("\ufb01le \ufb02ow e\ufb00ort o\ufb03ce wa\ufb04e") == "file flow effort office waffle"
    assert normalise_characters("ＡＰＩ ｖ２ costs\xa0５") == "API v2 costs 5"


def test_normalisation_keeps_what_nfkc_would_change_in_meaning() -> None:
    assert normalise_characters("x² + y₁, ½ cup, step ①") == "x² + y₁, ½ cup, step ①"
    assert normalise_characters("中文，标点（括号）！") == "中文，标点（括号）！"
    assert normalise_characters("a，b") == "a,b"  # full-width comma among Latin text
    assert normalise_characters("ok\x02\x0f done") == "ok done"  # glyphs without a Unicode mapping


def test_ligature_pdf_reads_plain_letters(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "lig.pdf", [["The con\ufb01guration \ufb01le \ufb02ows into the pro\ufb01le."]], vera())
    text = load(path, options=LoadOptions(ocr="never")).text
    assert "The configuration file flows into the profile." in text
    assert not LIGATURES.search(text)


# --- hyphenation ------------------------------------------------------------------------------


def test_word_hyphenated_across_lines_is_joined(tmp_path: Path) -> None:
    lines = [
        "Camlidl generates the inter-",
        "faces for every declaration, and the",
        "command-",
        "Line stays as printed, as does",
        "https://example.org/manuals/debian-",
        "faq/index.html for reference.",
    ]
    doc = load(make_pdf(tmp_path / "hyphen.pdf", [lines]), options=LoadOptions(ocr="never"))
    assert "Camlidl generates the interfaces\nfor every declaration, and the" in doc.text
    assert "command-\nLine stays" in doc.text  # the next line starts upper-case: not a broken word
    assert "https://example.org/manuals/debian-faq/index.html\nfor reference." in doc.text


def test_hyphen_rules_on_page_texts() -> None:
    pages, report = clean_pages(["A run-\ntime error; the run-time library.", "use the --no-\ninclude option"])
    assert pages == ["A run-time\nerror; the run-time library.", "use the --no-include\noption"]
    assert (report.joined, report.kept_hyphens) == (0, 2)
    pages, report = clean_pages(["the gen-\nerated code", "ends in a dash-\n\nNext"])
    assert pages == ["the generated\ncode", "ends in a dash-\n\nNext"]
    assert report.joined == 1


# --- running headers and footers --------------------------------------------------------------


def test_running_header_footer_and_page_numbers_are_dropped(tmp_path: Path) -> None:
    bodies = [f"Body of chapter {n}: the walrus count is {n * 11}." for n in range(1, 5)]
    pages = [["Acme Field Manual - Chapter guide", body, "", "", f"Page {n} of 4"] for n, body in enumerate(bodies, 1)]
    doc = load(make_pdf(tmp_path / "running.pdf", pages), options=LoadOptions(ocr="never"))
    assert "Acme Field Manual" not in doc.text
    assert "Page " not in doc.text
    assert doc.metadata["running_lines_dropped"] == 8
    for number, body in enumerate(bodies, 1):
        assert page_text(doc, number).strip() == body
        assert doc.page_at(doc.text.index(body)) == number


def test_lines_that_repeat_on_few_pages_stay() -> None:
    words = ["apple", "birch", "cedar", "dune", "elm", "fjord", "glade", "heath"]
    pages = ["Intro\ntext one", "Intro\ntext two"] + [f"{word} heading\n{word} body" for word in words]
    cleaned, report = clean_pages(pages)
    assert cleaned[0] == "Intro\ntext one"
    assert report.running_lines == 0


# --- identifiers ------------------------------------------------------------------------------


def test_identifiers_keep_their_underscores(tmp_path: Path) -> None:
    lines = ["Call asn1_der_decoding before", "override_dh_auto_build runs."]
    text = load(make_pdf(tmp_path / "ids.pdf", [lines]), options=LoadOptions(ocr="never")).text
    assert "asn1_der_decoding" in text
    assert "override_dh_auto_build" in text


def test_identifier_running_past_the_page_edge_stays_whole(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    path = tmp_path / "edge.pdf"
    pdf = canvas.Canvas(str(path), pagesize=(160, 200))
    pdf.drawString(20, 100, "you create an override_dh_auto_build target")
    pdf.showPage()
    pdf.save()
    assert "override_dh_auto_build target" in load(path, options=LoadOptions(ocr="never")).text


def test_pdf_that_pypdf_refuses_is_read_by_pdfium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.ingest.loaders import pdf

    def refuse(data: bytes) -> None:
        raise pdf._corrupt("Reached maximum array element count.")  # what pypdf says of two SEC filings

    path = make_pdf(tmp_path / "filing.pdf", [["Revenue was 1,234 million."], ["Second page text."]])
    monkeypatch.setattr(pdf, "_open_reader", refuse)
    doc = load(path, options=LoadOptions(ocr="never"))
    assert doc.metadata["pages"] == 2
    assert doc.page_at(doc.text.index("Second page text.")) == 2


# --- the docsqa PDFs --------------------------------------------------------------------------


def docsqa_records() -> list[dict[str, object]]:
    path = DOCSQA / "questions.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r for r in records if str(r["id"]).startswith("pdf-") and r["sources"]]


def test_docsqa_key_facts_on_their_pages() -> None:
    records = docsqa_records()
    docs: dict[str, Document] = {}
    missing = []
    for record in records:
        source = str(record["sources"][0])  # type: ignore[index]
        if source not in docs:
            docs[source] = load(DOCSQA / source, options=LoadOptions(ocr="never"))
        doc = docs[source]
        numbers = [int(n) for a, b in re.findall(r"pp?\. (\d+)(?:-(\d+))?", str(record["note"])) for n in (a, b) if n]
        pages = norm("".join(page_text(doc, n) for n in range(min(numbers), max(numbers) + 1)))
        for fact in record["key_facts"]:  # type: ignore[attr-defined]
            if not any(norm(alternative) in pages for alternative in fact):
                missing.append((record["id"], fact, numbers))
    assert not missing
    for doc in docs.values():
        assert not LIGATURES.search(doc.text)
        assert "\x02" not in doc.text and "\ufffe" not in doc.text


def test_docsqa_running_header_gone_and_words_spaced() -> None:
    path = DOCSQA / "pdf" / "maint-guide.pdf"
    if not path.exists():
        pytest.skip(f"{path} not found")
    doc = load(path, options=LoadOptions(ocr="never"))
    assert not re.search(r"Debian New Maintainers’ Guide \d+ / 57", doc.text)
    # pypdf and pdfplumber read these justified lines without their spaces ("Iftheupstreamsourcecomesas ...").
    assert "If the upstream source comes as gentoo-0.9.12.tar.gz" in page_text(doc, 17)
    assert len(re.findall(r"[^\W\d_]{20,}", doc.text)) < 5
