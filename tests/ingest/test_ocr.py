"""OCR with the real engine (RapidOCR, models from its wheel) on an image of Chinese and English text rendered here
with Pillow, and on a PDF built from that image (no text layer). One engine for the module; each OCR run is a small
image (about a second)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import documents as make
import pytest

from rag.errors import LoaderError
from rag.evaluation import f1_score
from rag.ingest.loaders import LoadOptions, load
from rag.ingest.loaders.pdf import NO_TEXT_REASON, OCR_EMPTY_REASON, OCR_OFF_REASON
from rag.pipeline import RagPipeline

if TYPE_CHECKING:
    from rag.ingest.loaders.ocr import OcrEngine

Factory = Callable[..., RagPipeline]

ENGLISH = "The lighthouse keeper counted 42 gulls at dawn."
CHINESE = "检索增强生成把文档检索和文本生成结合在一起。"
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+")


def char_f1(predicted: str, reference: str) -> float:
    """Character F1 (no whitespace or punctuation), as ``rag eval`` scores Chinese answers."""
    return f1_score(predicted, [reference], "zh")


def split_languages(text: str) -> tuple[str, str]:
    """(the non-CJK text, the CJK text) of a recognised page."""
    return _CJK.sub(" ", text), "".join(_CJK.findall(text))


@pytest.fixture(scope="module")
def ocr_engine() -> OcrEngine:
    pytest.importorskip("rapidocr_onnxruntime", reason="OCR needs rapidocr-onnxruntime")
    from rag.ingest.loaders.ocr import engine

    return engine()


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory, ocr_engine: object) -> dict[str, Path]:
    """scan.png (rendered text), scan.pdf (that image as a page, no text layer), blank.pdf (a white image)."""
    folder = tmp_path_factory.mktemp("scans")
    font = make.need_cjk_font()
    image = folder / "scan.png"
    make.text_image([ENGLISH, CHINESE], font).save(image)
    blank = folder / "white.png"
    make.text_image([""], font).save(blank)
    return {
        "png": image,
        "pdf": make.image_pdf(folder / "scan.pdf", image),
        "blank": make.image_pdf(folder / "blank.pdf", blank),
    }


def test_ocr_recovers_english_and_chinese(scans: dict[str, Path]) -> None:
    doc = load(scans["png"])
    assert doc.file_type == "image"
    assert doc.metadata["ocr_pages"] == [1]
    english, chinese = split_languages(doc.text)
    assert char_f1(english, ENGLISH) >= 0.9, doc.text
    assert char_f1(chinese, CHINESE) >= 0.9, doc.text
    assert doc.text.index("gulls") < doc.text.index("检索")  # lines in reading order


def test_scanned_pdf_is_read_by_ocr_with_its_page(scans: dict[str, Path]) -> None:
    doc = load(scans["pdf"])
    assert doc.file_type == "pdf"
    assert doc.metadata["ocr_pages"] == [1]
    assert doc.page_offsets == (0,)
    english, chinese = split_languages(doc.text)
    assert char_f1(english, ENGLISH) >= 0.9, doc.text
    assert char_f1(chinese, CHINESE) >= 0.9, doc.text


def test_ocr_never_skips_scans_with_the_reason(scans: dict[str, Path]) -> None:
    never = LoadOptions(ocr="never")
    with pytest.raises(LoaderError, match=re.escape(OCR_OFF_REASON)):
        load(scans["pdf"], options=never)
    with pytest.raises(LoaderError, match="image needs OCR, which is off"):
        load(scans["png"], options=never)


def test_pdf_with_neither_text_nor_ocr_text_is_skipped(scans: dict[str, Path]) -> None:
    with pytest.raises(LoaderError) as info:
        load(scans["blank"])
    assert str(info.value) == OCR_EMPTY_REASON
    assert OCR_EMPTY_REASON != NO_TEXT_REASON


def test_ocr_always_reads_pages_that_have_a_text_layer(tmp_path: Path, scans: dict[str, Path]) -> None:
    from reportlab.pdfgen import canvas

    path = tmp_path / "layered.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.drawImage(str(scans["png"]), 36, 600, 520, 84)
    pdf.drawString(72, 400, "A text layer that says nothing about the birds at all.")
    pdf.showPage()
    pdf.save()
    auto = load(path)
    assert "ocr_pages" not in auto.metadata and "gulls" not in auto.text  # enough text: auto leaves the page be
    always = load(path, options=LoadOptions(ocr="always"))
    assert always.metadata["ocr_pages"] == [1]
    assert "gulls" in always.text and "检索" in always.text


def test_ocr_max_pages_bounds_a_file(tmp_path: Path, scans: dict[str, Path]) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for _ in range(2):
        writer.add_page(PdfReader(scans["pdf"]).pages[0])
    two = tmp_path / "two-scans.pdf"
    with open(two, "wb") as handle:
        writer.write(handle)
    doc = load(two, options=LoadOptions(ocr_max_pages=1))
    assert doc.metadata["ocr_pages"] == [1]
    assert doc.metadata["truncated"] == "OCR stopped at ocr_max_pages=1: pages 2 not read"
    assert doc.metadata["pages_without_text"] == [2]
    assert "gulls" in doc.text[: doc.page_offsets[1]]


def test_ingest_finds_ocr_text_cites_its_page_and_counts_pages(
    tmp_path: Path, scans: dict[str, Path], fake_pipeline: Factory
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "scan.pdf").write_bytes(scans["pdf"].read_bytes())
    (docs / "scan.png").write_bytes(scans["png"].read_bytes())
    (docs / "notes.txt").write_text("Plain notes about herons.", encoding="utf-8")
    pipeline = fake_pipeline()
    report = pipeline.ingest([docs])
    assert report.files_added == 3
    assert report.ocr_pages == 2
    hits = pipeline.retrieve("lighthouse keeper gulls", k=3)
    by_source = {Path(h.chunk.source).name: h.chunk for h in hits}
    assert by_source["scan.pdf"].location() == "p. 1"
    assert "gulls" in by_source["scan.pdf"].text
    assert "scan.png" in by_source
    chinese = pipeline.retrieve("检索增强生成", k=3)
    assert {Path(h.chunk.source).name for h in chinese[:2]} == {"scan.pdf", "scan.png"}


@pytest.mark.slow
def test_real_default_models_answer_from_a_scan_and_a_slide_deck(tmp_path: Path, scans: dict[str, Path]) -> None:
    from rag.config import RagConfig

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "scan.pdf").write_bytes(scans["pdf"].read_bytes())
    make.pptx_file(
        docs / "deck.pptx", [("Birds", "The zebrafinch survey runs every spring", ""), ("Fish", "Salmon", "")]
    )
    pipeline = RagPipeline(RagConfig(index=tmp_path / "idx", quiet=True))
    try:
        report = pipeline.ingest([docs])
        assert (report.files_added, report.ocr_pages) == (2, 1)
        top = pipeline.retrieve("检索增强生成把什么结合在一起？", k=1)[0].chunk
        assert (Path(top.source).name, top.location()) == ("scan.pdf", "p. 1")
        top = pipeline.retrieve("How many gulls did the lighthouse keeper count?", k=1)[0].chunk
        assert Path(top.source).name == "scan.pdf" and "42" in top.text
        top = pipeline.retrieve("When does the zebrafinch survey run?", k=1)[0].chunk
        assert (Path(top.source).name, top.location()) == ("deck.pptx", "slide 1")
    finally:
        pipeline.close()
