"""PDF text fidelity and speed: pypdf, pypdfium2 and pdfplumber page texts (each put through the loader's clean-up,
``rag.ingest.loaders.pdftext``) and the PDF loader itself, on ``../shared/data/docsqa``.

    python benchmarks/pdf_text.py [--data ../shared/data/docsqa] [--no-sec10q] [--only pypdf,pdfium,...]

Columns, per extractor:
- ``kf page`` / ``kf doc``: share of the ``pdf-`` questions' key-fact alternatives found verbatim (NFKC, casefold,
  whitespace collapsed) in the text of the page(s) their note names / anywhere in the document;
- ``_ ids``: of those alternatives, the ones with an underscore found on their page (identifiers kept whole);
- ``lig`` and ``hyph``: ligature characters (U+FB00-FB06) and line-end hyphen breaks ("inter-" / "faces") in the
  raw text -> left after the clean-up; ``glued``: runs of 20+ letters after the clean-up (lost word spaces);
- ``docsqa s``: extraction seconds for the two docsqa PDFs; ``sec10q s``: for the 20 filings of ``sec10q/docs``;
- ``figures``: share of the sec10q reference answers' figures (numbers of 3+ digits) that occur in the extracted
  text of one of their source filings.
The ``loader`` row is ``rag.ingest.loaders.load`` (text layer, ruled tables as rows, clean-up; OCR off).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import logging
import re
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

from rag.ingest.loaders import LoadOptions, load
from rag.ingest.loaders.pdftext import clean_pages

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "docsqa"
LIGATURE = re.compile("[\ufb00-\ufb06]")
LINE_HYPHEN = re.compile(r"[^\W\d_]-\n[ \t]*[a-z]")
GLUED = re.compile(r"[^\W\d_]{20,}")
FIGURE = re.compile(r"\d[\d,.]*\d")
PAGES = re.compile(r"pp?\. (\d+)(?:-(\d+))?")


def norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def pypdf_pages(path: Path) -> list[str]:
    from pypdf import PdfReader

    try:
        reader_pages = list(PdfReader(path).pages)
    except Exception as exc:  # noqa: BLE001 - pypdf refuses some real filings: the file counts as empty
        print(f"pypdf cannot read {path.name}: {exc}", file=sys.stderr)
        return [""]
    pages = []
    for page in reader_pages:
        try:
            pages.append(page.extract_text() or "")
        except Exception:  # noqa: BLE001 - a page pypdf cannot read counts as empty
            pages.append("")
    return pages


def pdfium_pages(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path)
    pages = []
    for page in pdf:
        textpage = page.get_textpage()
        # pdfium marks a line-end hyphen with U+0002 / U+FFFE and drops the line break: restored, as the loader does.
        text = textpage.get_text_range().replace("\r\n", "\n")
        pages.append(text.replace("\x02", "-\n").replace("\ufffe", "-\n"))
        textpage.close()
        page.close()
    pdf.close()
    return pages


def pdfplumber_pages(path: Path) -> list[str]:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(path.read_bytes())) as pdf:
        pages = []
        for page in pdf.pages:
            try:
                pages.append(page.extract_text() or "")
            except Exception:  # noqa: BLE001 - a page pdfplumber cannot read counts as empty
                pages.append("")
        return pages


def loader_pages(path: Path) -> list[str]:
    doc = load(path, options=LoadOptions(ocr="never"))
    bounds = [*doc.page_offsets, len(doc.text)]
    return [doc.text[a:b] for a, b in itertools.pairwise(bounds)]


EXTRACTORS: dict[str, Callable[[Path], list[str]]] = {
    "pypdf": pypdf_pages,
    "pdfium": pdfium_pages,
    "pdfplumber": pdfplumber_pages,
    "loader": loader_pages,
}


def note_pages(note: str) -> list[int]:
    pages: list[int] = []
    for first, last in PAGES.findall(note):
        pages.extend(range(int(first), int(last or first) + 1))
    return pages


def extract(name: str, paths: list[Path]) -> tuple[dict[str, list[str]], dict[str, list[str]], float]:
    """Raw and cleaned page texts per file name, and the seconds the extraction (and clean-up) took."""
    raw: dict[str, list[str]] = {}
    cleaned: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    for path in paths:
        raw[path.name] = EXTRACTORS[name](path)
        cleaned[path.name] = raw[path.name] if name == "loader" else clean_pages(raw[path.name])[0]
    return raw, cleaned, time.perf_counter() - t0


def key_facts(data: Path, pages: dict[str, list[str]]) -> tuple[float, float, str]:
    page_hits = doc_hits = total = ids_total = ids_hit = 0
    for line in (data / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if not record["id"].startswith("pdf-") or not record["sources"]:
            continue
        name = Path(record["sources"][0]).name
        numbers = note_pages(record.get("note", ""))
        doc_text = norm("\n".join(pages[name]))
        page_text = norm("\n".join(pages[name][n - 1] for n in numbers if n <= len(pages[name])))
        for fact in record["key_facts"]:
            for alternative in fact:
                wanted = norm(alternative)
                total += 1
                on_page = wanted in page_text
                page_hits += on_page
                doc_hits += wanted in doc_text
                if "_" in alternative:
                    ids_total += 1
                    ids_hit += on_page
    return page_hits / total, doc_hits / total, f"{ids_hit}/{ids_total}"


def figures(data: Path, pages: dict[str, list[str]]) -> float:
    texts = {name: norm("\n".join(p)) for name, p in pages.items()}
    found = total = 0
    for line in (data / "sec10q" / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        sources = [texts[Path(s).name] for s in record["sources"] if Path(s).name in texts]
        if not sources:
            continue
        for answer in record["answers"]:
            for figure in FIGURE.findall(answer):
                if sum(c.isdigit() for c in figure) < 3:
                    continue
                total += 1
                found += any(figure in text for text in sources)
    return found / total if total else float("nan")


def count(pattern: re.Pattern[str], pages: dict[str, list[str]]) -> int:
    return sum(len(pattern.findall(page)) for file_pages in pages.values() for page in file_pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--no-sec10q", action="store_true", help="skip the 20 SEC filings (minutes with pdfplumber)")
    parser.add_argument("--only", default=",".join(EXTRACTORS), help="comma-separated extractors")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    docs = [args.data / "pdf" / "camlidl-doc.pdf", args.data / "pdf" / "maint-guide.pdf"]
    if not all(path.exists() for path in docs):
        sys.exit(f"docsqa PDFs not found under {args.data}")
    filings = sorted((args.data / "sec10q" / "docs").glob("*.pdf"))
    header = f"{'extractor':<11} {'kf page':>7} {'kf doc':>6} {'_ ids':>5} {'lig':>9} {'hyph':>9} {'glued':>5}"
    header += f" {'docsqa s':>8} {'sec10q s':>8} {'figures':>7}"
    print(header)
    for name in args.only.split(","):
        raw, cleaned, seconds = extract(name, docs)
        on_page, in_doc, ids = key_facts(args.data, cleaned)
        lig = f"{count(LIGATURE, raw)}->{count(LIGATURE, cleaned)}"
        hyph = f"{count(LINE_HYPHEN, raw)}->{count(LINE_HYPHEN, cleaned)}"
        row = f"{name:<11} {on_page:>7.3f} {in_doc:>6.3f} {ids:>5} {lig:>9} {hyph:>9} {count(GLUED, cleaned):>5}"
        row += f" {seconds:>8.2f}"
        if filings and not args.no_sec10q:
            _, sec_cleaned, sec_seconds = extract(name, filings)
            row += f" {sec_seconds:>8.1f} {figures(args.data, sec_cleaned):>7.3f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
