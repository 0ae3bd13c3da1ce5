"""The office, mail and e-book formats, PDF tables, symlinks and bounds: real files made here with the libraries that
write them (python-pptx, openpyxl, odfpy, reportlab, the email package, zipfile for EPUB), loaded, ingested with the
fakes and found again by a phrase only that file holds, with the right location in the citation."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import documents as make
import pytest

from rag.errors import LoaderError
from rag.index.store import ChunkStore
from rag.ingest.discovery import OUTSIDE_REASON, find_files
from rag.ingest.loaders import LoadOptions, container_of, load, supported_suffixes
from rag.pipeline import RagPipeline
from rag.types import Document, IngestReport, Section, SkippedFile

Factory = Callable[..., RagPipeline]

TABLE_HEADER = ["Fruit", "Price", "Origin"]
TABLE_ROWS = [["Apple", "3", "Chile"], ["Durian", "12", "Thailand"], ["Kiwi", "5", "Zealandia"]]


def reason(path: Path, **kwargs: object) -> str:
    with pytest.raises(LoaderError) as info:
        load(path, **kwargs)
    return str(info.value)


def location_of(pipeline: RagPipeline, query: str, name: str) -> str:
    """The citation location of the best hit for ``query`` whose source ends with ``name``."""
    hits = pipeline.retrieve(query, k=8)
    for hit in hits:
        if hit.chunk.source.endswith(name):
            assert query.split()[0].lower() in hit.chunk.text.lower()
            return hit.chunk.location()
    raise AssertionError(f"{query!r} did not find {name}: {[h.chunk.source for h in hits]}")


# --- builders of one file per format ------------------------------------------------------------


def deck(tmp_path: Path) -> Path:
    slides = [
        ("Orchard plans", "Pruning starts in winter", "Speaker reminder about ladders"),
        ("Migration", "The zebrafinch migration is tracked weekly", ""),
    ]
    return make.pptx_file(tmp_path / "deck.pptx", slides, table=[["Crop", "Yield"], ["Quince", "17 tonnes"]])


def workbook(tmp_path: Path, name: str = "book.xlsx") -> Path:
    sales = [["Region", "Revenue"], ["North", 100], [None, None], ["Southmarch", 250.0], ["East", 75]]
    return make.xlsx_file(tmp_path / name, {"Sales": sales, "Staff": [["Name", "Role"], ["Ottoline", "treasurer"]]})


def eml(tmp_path: Path, name: str = "mail.eml", note: bytes = b"The walrus inventory is attached.") -> Path:
    pdf = make.table_pdf(tmp_path / "attached-table.pdf", "Attached prices.", TABLE_HEADER, TABLE_ROWS, "End.")
    message = make.email_message(
        "Budget for the lighthouse",
        "Hello Bob, the figures for the lighthouse repaint are below.",
        html="<p>Hello <b>Bob</b>, the figures for the lighthouse repaint are below.</p>",
        attachments=[
            ("notes.txt", note, "text/plain"),
            ("prices.pdf", pdf.read_bytes(), "application/pdf"),
            ("broken.pdf", b"not a pdf at all", "application/pdf"),
            ("archive.zip", b"PK\x03\x04", "application/zip"),
        ],
    )
    pdf.unlink()
    return make.eml_file(tmp_path / name, message)


# --- loaders ------------------------------------------------------------------------------------


def test_new_suffixes_are_supported() -> None:
    new = {".pptx", ".xlsx", ".xlsm", ".ods", ".odt", ".epub", ".eml", ".mbox"}
    images = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}
    assert new | images <= supported_suffixes()


def test_heavy_format_libraries_load_only_when_a_file_needs_them() -> None:
    import subprocess
    import sys

    heavy = ("pptx", "openpyxl", "odf", "pdfplumber", "pypdfium2", "rapidocr_onnxruntime", "PIL", "cv2", "onnxruntime")
    code = f"import sys, rag.ingest.loaders, rag.cli.main; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_pptx_slides_tables_and_notes(tmp_path: Path) -> None:
    doc = load(deck(tmp_path))
    assert doc.file_type == "pptx"
    assert doc.metadata["slides"] == 3
    assert [s.label for s in doc.sections] == ["slide 1", "slide 2", "slide 3"]
    first = doc.text.index("Pruning starts in winter")
    assert doc.section_at(first, first + 10) == "slide 1"
    assert "Notes: Speaker reminder about ladders" in doc.text
    assert doc.section_at(doc.text.index("zebrafinch"), doc.text.index("zebrafinch") + 5) == "slide 2"
    assert "Crop: Quince; Yield: 17 tonnes" in doc.text  # a table row with its header cells
    assert doc.section_at(0, len(doc.text)) == "slides 1-3"


def test_xlsx_rows_with_headers_and_row_numbers(tmp_path: Path) -> None:
    doc = load(workbook(tmp_path))
    assert doc.file_type == "xlsx"
    assert doc.text.splitlines()[:3] == [
        "Region: North; Revenue: 100",
        "Region: Southmarch; Revenue: 250",
        "Region: East; Revenue: 75",
    ]
    assert doc.metadata["sheets"] == ["Sales", "Staff"]
    south = doc.text.index("Southmarch")
    assert doc.section_at(south, south + 5) == "sheet Sales row 4"  # row 3 is empty and left out
    assert doc.section_at(0, doc.text.index("East") + 4) == "sheet Sales rows 2-5"
    staff = doc.text.index("Ottoline")
    assert doc.section_at(staff, staff + 3) == "sheet Staff row 2"


def test_xlsm_and_ods(tmp_path: Path) -> None:
    assert "Region: Southmarch" in load(workbook(tmp_path, "macro.xlsm")).text
    ods = make.ods_file(tmp_path / "stock.ods", {"Inventory": [["Item", "Count"], ["Bolts", "40"], ["Gimbals", "12"]]})
    doc = load(ods)
    assert doc.file_type == "ods"
    assert doc.text == "Item: Bolts; Count: 40\nItem: Gimbals; Count: 12"
    assert doc.section_at(doc.text.index("Gimbals"), len(doc.text)) == "sheet Inventory row 3"


def test_max_rows_bounds_a_spreadsheet_and_says_so(tmp_path: Path) -> None:
    doc = load(workbook(tmp_path), options=LoadOptions(max_rows=2))
    assert doc.metadata["rows"] == 2
    assert "East" not in doc.text and "Ottoline" not in doc.text
    assert doc.metadata["truncated"] == "stopped at max_rows=2: sheet Sales from row 5 on not read"


def test_odt_paragraphs_in_order(tmp_path: Path) -> None:
    doc = load(make.odt_file(tmp_path / "memo.odt", "Memo heading", ["The platypus audit passed.", "Second point."]))
    assert doc.file_type == "odt"
    assert doc.text == "Memo heading\nThe platypus audit passed.\nSecond point."


def test_epub_chapters_in_spine_order(tmp_path: Path) -> None:
    path = make.epub_file(
        tmp_path / "book.epub", "Sea Stories", [("Storm", "The lighthouse shook."), ("Calm", "Gulls slept.")]
    )
    doc = load(path)
    assert doc.file_type == "epub"
    assert doc.metadata == {"chapters": 2, "title": "Sea Stories"}
    assert doc.text.index("lighthouse") < doc.text.index("Gulls")
    assert [s.label for s in doc.sections] == ["chapter 1: Storm", "chapter 2: Calm"]
    assert doc.section_at(doc.text.index("Gulls"), len(doc.text)) == "chapter 2: Calm"


def test_pdf_table_rows_keep_their_header_cells(tmp_path: Path) -> None:
    path = make.table_pdf(tmp_path / "prices.pdf", "Prices of the season.", TABLE_HEADER, TABLE_ROWS, "Closing note.")
    doc = load(path, options=LoadOptions(ocr="never"))
    lines = doc.text.splitlines()
    assert "Fruit: Durian; Price: 12; Origin: Thailand" in lines
    assert lines.index("Prices of the season.") < lines.index("Fruit: Apple; Price: 3; Origin: Chile")
    assert lines.index("Fruit: Kiwi; Price: 5; Origin: Zealandia") < lines.index("Closing note.")
    assert doc.metadata["tables"] == 1


def test_eml_headers_body_and_attachments(tmp_path: Path) -> None:
    path = eml(tmp_path)
    doc = load(path)
    assert doc.file_type == "email"
    assert doc.metadata["subject"] == "Budget for the lighthouse"
    assert doc.metadata["from"] == "Alice Example <alice@example.org>"
    assert doc.metadata["to"] == "Bob Example <bob@example.org>"
    assert doc.metadata["date"].startswith("Tue, 02 Dec 2025")
    assert doc.text.startswith("Subject: Budget for the lighthouse\nFrom: Alice Example")
    assert "the figures for the lighthouse repaint are below" in doc.text
    assert [a.path for a in doc.attachments] == [f"{path}#notes.txt", f"{path}#prices.pdf"]
    assert doc.attachments[0].text == "The walrus inventory is attached."
    assert "Fruit: Kiwi; Price: 5; Origin: Zealandia" in doc.attachments[1].text
    reasons = {s.path: s.reason for s in doc.skipped}
    assert reasons[f"{path}#broken.pdf"].startswith("attachment: corrupt or truncated PDF")
    assert reasons[f"{path}#archive.zip"] == "attachment: unsupported file type '.zip'"
    assert container_of(f"{path}#prices.pdf") == str(path)
    assert container_of(str(tmp_path / "C#" / "notes.md")) is None


def test_html_only_email_is_converted(tmp_path: Path) -> None:
    import email.message

    message = email.message.EmailMessage()
    message["Subject"] = "Newsletter"
    message["From"] = "news@example.org"
    message.set_content(
        "<html><body><h1>Issue 7</h1><p>The <i>okapi</i> exhibit opens.</p><script>x()</script></body></html>",
        subtype="html",
    )
    doc = load(make.eml_file(tmp_path / "news.eml", message))
    assert "Issue 7\n\nThe okapi exhibit opens." in doc.text
    assert "<" not in doc.text and "x()" not in doc.text


def test_mbox_messages_are_sections(tmp_path: Path) -> None:
    first = make.email_message("Harbour", "The ferry timetable changed.")
    second = make.email_message(
        "Pantry", "We are out of cardamom.", attachments=[("list.txt", b"cardamom, saffron", "text/plain")]
    )
    path = make.mbox_file(tmp_path / "inbox.mbox", [first, second])
    doc = load(path)
    assert doc.file_type == "mbox"
    assert [s.label for s in doc.sections] == ["message 1", "message 2"]
    assert doc.section_at(doc.text.index("cardamom"), doc.text.index("cardamom") + 4) == "message 2"
    assert [a.path for a in doc.attachments] == [f"{path}#message-2/list.txt"]


CORRUPT = {
    "deck.pptx": b"PK\x03\x04 this zip is cut short",
    "book.xlsx": b"not a workbook",
    "macro.xlsm": b"PK\x05\x06" + b"\x00" * 18,
    "stock.ods": b"garbage bytes",
    "memo.odt": b"PK\x03\x04\x14\x00",
    "book.epub": b"PK\x03\x04 not an epub",
    "mail.eml": b"\x00\x01\x02\x03 binary noise \xff\xfe",
    "inbox.mbox": b"no From_ line in this file at all\n",
    "scan.png": b"\x89PNG\r\n\x1a\n broken",
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_file_of_each_format_gives_a_reason(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(CORRUPT[name])
    text = reason(path)
    assert text and "\n" not in text
    assert any(word in text for word in ("corrupt", "not an e-mail", "no e-mail messages", "unreadable")), text


def test_truncated_office_files_give_a_reason(tmp_path: Path) -> None:
    for good in (deck(tmp_path), workbook(tmp_path), make.odt_file(tmp_path / "m.odt", "H", ["p"])):
        data = good.read_bytes()
        cut = tmp_path / f"cut{good.suffix}"
        cut.write_bytes(data[: len(data) // 2])
        assert "corrupt" in reason(cut), good.name


# --- ingest: every format found with its location, corrupt files skipped, nothing else lost ---------


def test_every_format_ingested_searchable_and_cited(tmp_path: Path, fake_pipeline: Factory) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    deck(docs)
    workbook(docs)
    make.ods_file(docs / "stock.ods", {"Inventory": [["Item", "Count"], ["Bolts", "40"], ["Gimbals", "12"]]})
    make.odt_file(docs / "memo.odt", "Memo", ["The platypus audit passed."])
    make.epub_file(docs / "book.epub", "Sea", [("Storm", "The lighthouse shook."), ("Calm", "Albatrosses slept.")])
    make.table_pdf(docs / "prices.pdf", "Prices.", TABLE_HEADER, TABLE_ROWS, "End.")
    eml(docs)
    make.mbox_file(
        docs / "inbox.mbox",
        [make.email_message("Harbour", "Ferry news."), make.email_message("Pantry", "Out of cardamom.")],
    )
    (docs / "plain.txt").write_text("A plain file about marmalade.", encoding="utf-8")
    broken = docs / "broken"
    broken.mkdir()
    for name, data in CORRUPT.items():
        (broken / name).write_bytes(data)
    pipeline = fake_pipeline(ocr="never")
    report = pipeline.ingest([docs])

    good = [
        "deck.pptx",
        "book.xlsx",
        "stock.ods",
        "memo.odt",
        "book.epub",
        "prices.pdf",
        "mail.eml",
        "inbox.mbox",
        "plain.txt",
    ]
    stored = {Path(d.path).name: d for d in pipeline.documents()}
    assert set(good) <= set(stored)
    assert {"mail.eml#notes.txt", "mail.eml#prices.pdf"} <= set(stored)
    assert report.files_added == len(good) + 2
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    for name in CORRUPT:
        assert name in skipped, name
    assert skipped["mail.eml#broken.pdf"].startswith("attachment: corrupt")
    assert {stored[n].file_type for n in good} == {"pptx", "xlsx", "ods", "odt", "epub", "pdf", "email", "mbox", "text"}

    assert location_of(pipeline, "zebrafinch migration", "deck.pptx") == "slide 2"
    assert location_of(pipeline, "Quince yield", "deck.pptx") == "slide 3"
    assert location_of(pipeline, "Ottoline treasurer", "book.xlsx") == "sheet Staff row 2"
    assert location_of(pipeline, "Gimbals", "stock.ods") == "sheet Inventory rows 2-3"
    assert location_of(pipeline, "Albatrosses", "book.epub").startswith("chapter")
    assert location_of(pipeline, "Durian Thailand", "prices.pdf") == "p. 1"
    assert location_of(pipeline, "walrus inventory", "mail.eml#notes.txt") == "line 1"
    assert location_of(pipeline, "cardamom", "inbox.mbox") == "message 2"
    assert location_of(pipeline, "platypus audit", "memo.odt").startswith("line")
    assert location_of(pipeline, "marmalade", "plain.txt") == "line 1"


def test_changed_email_replaces_its_attachments_and_removal_takes_them(tmp_path: Path, fake_pipeline: Factory) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    path = eml(docs)
    pipeline = fake_pipeline(ocr="never")
    pipeline.ingest([docs])
    names = lambda: sorted(Path(d.path).name for d in pipeline.documents())  # noqa: E731
    assert names() == ["mail.eml", "mail.eml#notes.txt", "mail.eml#prices.pdf"]

    message = make.email_message(
        "Budget, revised",
        "Only the narwhal note now.",
        attachments=[("narwhal.txt", b"Narwhal count: 4", "text/plain")],
    )
    make.eml_file(path, message)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    report = pipeline.ingest([docs])
    assert report.files_updated == 1
    assert names() == ["mail.eml", "mail.eml#narwhal.txt"]
    assert location_of(pipeline, "Narwhal count", "mail.eml#narwhal.txt") == "line 1"

    assert pipeline.ingest([docs]).files_unchanged == 1  # the attachment is not looked at on its own
    path.unlink()
    pipeline.ingest([docs], sync=True)
    assert names() == []


def test_remove_an_email_removes_its_attachments(tmp_path: Path, fake_pipeline: Factory) -> None:
    path = eml(tmp_path)
    pipeline = fake_pipeline(ocr="never")
    pipeline.ingest([path])
    assert len(pipeline.documents()) == 3
    assert pipeline.remove([path]) == 3
    assert pipeline.documents() == []


def test_ingest_summary_reports_bounded_files(
    tmp_path: Path, fake_pipeline: Factory, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli.output import print_ingest_report

    path = workbook(tmp_path)
    report = fake_pipeline(max_rows=1).ingest([path])
    assert report.truncated == [SkippedFile(str(path), "stopped at max_rows=1: sheet Sales from row 4 on not read")]
    print_ingest_report(report)
    assert f"  read in part {path}: stopped at max_rows=1" in capsys.readouterr().out


def test_summary_line_names_ocr_pages(capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli.output import print_ingest_report

    report = IngestReport("idx", 1, 1, 0, 0, 0, [], 3, 0, 1.0, "fake", ocr_pages=2)
    print_ingest_report(report)
    assert "3 chunks added, 0 removed; 2 pages OCR'd; model fake" in capsys.readouterr().out


# --- symlinks -----------------------------------------------------------------------------------


def test_symlink_outside_the_folder_is_not_followed_unless_asked(tmp_path: Path, fake_pipeline: Factory) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("The vault code is kept here.", encoding="utf-8")
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "inside.txt").write_text("Inside file about herons.", encoding="utf-8")
    (docs / "to-inside.txt").symlink_to(docs / "sub" / "inside.txt")
    (docs / "to-outside.txt").symlink_to(outside)
    (docs / "passwd.txt").symlink_to("/etc/passwd")

    files, skipped = find_files([docs])
    assert [f.path for f in files] == [(docs / "sub" / "inside.txt").resolve()]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["to-outside.txt"] == OUTSIDE_REASON
    assert reasons["passwd.txt"] == OUTSIDE_REASON

    files, skipped = find_files([docs], follow_symlinks=True)
    assert outside.resolve() in {f.path for f in files}
    assert not [s for s in skipped if s.reason == OUTSIDE_REASON]

    report = fake_pipeline(follow_symlinks=True).ingest([docs / "to-outside.txt"])
    assert report.files_added == 1  # a link named on the command line is followed anyway
    assert "--follow-symlinks" in OUTSIDE_REASON


def test_symlinked_folder_followed_once_with_follow_symlinks(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "far.txt").write_text("far away", encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "link").symlink_to(other, target_is_directory=True)
    (other / "loop").symlink_to(docs, target_is_directory=True)
    files, skipped = find_files([docs])
    assert files == [] and any(s.reason == "symlinked folder (not followed)" for s in skipped)
    files, _ = find_files([docs], follow_symlinks=True)
    assert [f.path for f in files] == [(other / "far.txt").resolve()]


def test_cli_options_reach_the_settings() -> None:
    from rag.cli.main import build_parser
    from rag.config import RagConfig

    args = build_parser().parse_args(["ingest", "docs", "--ocr", "never", "--follow-symlinks"])
    assert (args.ocr, args.follow_symlinks) == ("never", True)
    config = RagConfig.load(None, ocr=args.ocr, follow_symlinks=args.follow_symlinks)
    assert (config.ingest.ocr, config.ingest.follow_symlinks) == ("never", True)
    os.environ["RAG_OCR"] = "always"
    try:
        assert RagConfig.load(None).ingest.ocr == "always"
    finally:
        del os.environ["RAG_OCR"]


# --- locations and the stored section --------------------------------------------------------------


def test_section_ranges() -> None:
    doc = Document(
        "x", "r2\nr3\nr5\n\nq2", "xlsx", sections=(Section(0, "sheet A", (2, 3, 5)), Section(10, "sheet B", (2,)))
    )
    assert doc.section_at(3, 8) == "sheet A rows 3-5"
    assert doc.section_at(0, 2) == "sheet A row 2"
    assert doc.section_at(3, 12) == "sheet A rows 3-5 to sheet B row 2"
    assert (
        Document("y", "a\n\nb", "pptx", sections=(Section(0, "slide 2"), Section(3, "slide 4"))).section_at(0, 4)
        == "slides 2-4"
    )
    assert Document("z", "plain", "text").section_at(0, 5) is None


def test_index_without_section_column_reads_and_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    store = ChunkStore(path)
    store.close()
    conn = sqlite3.connect(path)
    for column in ("section", "display", "heading"):
        conn.execute(f"ALTER TABLE chunks DROP COLUMN {column}")
    conn.execute("INSERT INTO documents VALUES (1, '/a.txt', 'h', 0, 1, 'text', 'en', NULL, 1, 'now', '{}', '{}')")
    conn.execute("INSERT INTO chunks VALUES (7, 1, 0, 'old text', 0, 8, 1, 1, NULL, 'en')")
    conn.commit()
    conn.close()
    old = ChunkStore(path, readonly=True)
    chunk = old.chunks_by_ids([7])[7]
    assert chunk.location() == "line 1"
    assert (chunk.shown, chunk.heading) == ("old text", "")
    old.close()
    upgraded = ChunkStore(path)
    assert upgraded.chunks_by_ids([7])[7].section is None
    columns = {row[1] for row in upgraded.db.execute("PRAGMA table_info(chunks)")}
    upgraded.close()
    assert {"section", "display", "heading"} <= columns
