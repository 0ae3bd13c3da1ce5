"""Real documents of every format, built in the tests with the libraries that write them (no fixture files)."""

from __future__ import annotations

import email.message
import mailbox
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from PIL.Image import Image

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


def cjk_font() -> str | None:
    """A font with Chinese glyphs: a known Debian path, else what fontconfig finds for :lang=zh."""
    import shutil
    import subprocess

    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    if shutil.which("fc-list"):
        out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            path = line.split(":", 1)[0].strip()
            if path and Path(path).is_file():
                return path
    return None


def need_cjk_font() -> str:
    font = cjk_font()
    if font is None:
        pytest.skip("no font with Chinese glyphs (apt-get install fonts-wqy-microhei)")
    return font


def text_image(lines: list[str], font_path: str, size: int = 32, width: int = 1100) -> Image:
    """Black text on white, one line per entry, as a scanner would give it."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, size)
    line_height = int(size * 1.8)
    image = Image.new("RGB", (width, line_height * len(lines) + 2 * size), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((size, size + i * line_height), line, font=font, fill="black")
    return image


def image_pdf(path: Path, image_path: Path) -> Path:
    """A one-page PDF whose only content is the image: no text layer at all."""
    from PIL import Image
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    width, height = Image.open(image_path).size
    page_w, page_h = A4
    scale = (page_w - 72) / width
    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.drawImage(str(image_path), 36, page_h - 36 - height * scale, width * scale, height * scale)
    pdf.showPage()
    pdf.save()
    return path


def table_pdf(path: Path, intro: str, header: list[str], rows: list[list[str]], outro: str) -> Path:
    """A PDF with a paragraph, a ruled table and another paragraph."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    table = Table([header, *rows])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    story = [
        Paragraph(intro, styles["Normal"]),
        Spacer(1, 12),
        table,
        Spacer(1, 12),
        Paragraph(outro, styles["Normal"]),
    ]
    SimpleDocTemplate(str(path), pagesize=A4).build(story)
    return path


def pptx_file(path: Path, slides: list[tuple[str, str, str]], table: list[list[str]] | None = None) -> Path:
    """Slides of (title, body, notes); ``table`` goes on an extra last slide."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for title, body, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    if table:
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = "Table slide"
        shape = slide.shapes.add_table(len(table), len(table[0]), Inches(1), Inches(2), Inches(6), Inches(2))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                shape.table.cell(r, c).text = value
    deck.save(str(path))
    return path


def xlsx_file(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(str(path))
    return path


def ods_file(path: Path, sheets: dict[str, list[list[str]]]) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    for name, rows in sheets.items():
        table = Table(name=name)
        for row in rows:
            tr = TableRow()
            for value in row:
                cell = TableCell(valuetype="string")
                cell.addElement(P(text=str(value)))
                tr.addElement(cell)
            table.addElement(tr)
        doc.spreadsheet.addElement(table)
    doc.save(str(path))
    return path


def odt_file(path: Path, heading: str, paragraphs: list[str]) -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    doc = OpenDocumentText()
    doc.text.addElement(H(outlinelevel=1, text=heading))
    for paragraph in paragraphs:
        doc.text.addElement(P(text=paragraph))
    doc.save(str(path))
    return path


def epub_file(path: Path, title: str, chapters: list[tuple[str, str]]) -> Path:
    """A minimal valid EPUB 3: container, package (manifest + spine) and one XHTML file per chapter."""
    items = "".join(
        f'<item id="c{i}" href="text/ch{i}.xhtml" media-type="application/xhtml+xml"/>' for i in range(len(chapters))
    )
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    opf = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:identifier id="id">test-book</dc:identifier><dc:title>{title}</dc:title><dc:language>en</dc:language>'
        f"</metadata><manifest>{items}</manifest><spine>{spine}</spine></package>"
    )
    container = (
        '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        book.writestr("META-INF/container.xml", container)
        book.writestr("OEBPS/content.opf", opf)
        for i, (heading, body) in enumerate(chapters):
            xhtml = (
                '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
                f"<head><title>{heading}</title></head><body><h1>{heading}</h1><p>{body}</p></body></html>"
            )
            book.writestr(f"OEBPS/text/ch{i}.xhtml", xhtml)
    return path


def email_message(
    subject: str, body: str, *, html: str | None = None, attachments: list[tuple[str, bytes, str]] = ()
) -> email.message.EmailMessage:
    """A message with a plain (and optionally an HTML) body and (filename, data, mime type) attachments."""
    message = email.message.EmailMessage()
    message["From"] = "Alice Example <alice@example.org>"
    message["To"] = "Bob Example <bob@example.org>"
    message["Subject"] = subject
    message["Date"] = "Tue, 02 Dec 2025 10:00:00 +0000"
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, data, mime in attachments:
        maintype, subtype = mime.split("/", 1)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


def eml_file(path: Path, message: email.message.EmailMessage) -> Path:
    path.write_bytes(bytes(message))
    return path


def mbox_file(path: Path, messages: list[email.message.EmailMessage]) -> Path:
    box = mailbox.mbox(str(path))
    try:
        for message in messages:
            box.add(message)
        box.flush()
    finally:
        box.close()
    return path
