"""OCR speed and accuracy on this CPU: pages of rendered English and Chinese text, recognised by the OCR engine
``rag ingest`` uses (RapidOCR, PP-OCRv4, onnxruntime), as an image file and as a scanned PDF page.

    python benchmarks/ocr.py [--pages 3] [--font PATH]

Needs a font with Chinese glyphs (Debian: apt-get install fonts-wqy-microhei). Prints, per case, the seconds per
page (model loading excluded, reported apart) and the character F1 against the rendered text (characters without
whitespace and punctuation, as ``rag eval`` scores Chinese answers).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rag.evaluation import f1_score
from rag.ingest.loaders import LoadOptions, load
from rag.ingest.loaders.ocr import engine

if TYPE_CHECKING:
    from PIL.Image import Image

ENGLISH = [
    "Retrieval-augmented generation answers questions from documents that the model",
    "never saw in training. A retriever finds the passages that bear on the question,",
    "and the generator writes an answer that cites them. Scanned contracts, invoices",
    "and old reports carry no text layer, so their pages must be read by OCR first;",
    "otherwise they are indexed as empty and never found. The quarterly report lists",
    "42 crates of apples, 17 crates of pears and 3 crates of quinces shipped in May.",
]
CHINESE = [
    "检索增强生成把文档检索和文本生成结合在一起，让模型根据资料回答问题。",
    "扫描的合同、发票和旧报告没有文字层，必须先经过光学字符识别才能被检索。",
    "否则这些页面会被当作空白文档存入索引，用户提问时永远找不到它们。",
    "本季度报告列出五月份运出的苹果四十二箱、梨十七箱和榅桲三箱。",
    "中文分词是自然语言处理的基础，词典和统计模型常常一起使用。",
    "离线运行的系统不能在运行时下载模型，所有权重都来自安装包。",
]


def find_font(given: str | None) -> str:
    if given:
        return given
    out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        path = line.split(":", 1)[0].strip()
        if path:
            return path
    sys.exit("no font with Chinese glyphs: apt-get install fonts-wqy-microhei, or pass --font")


def page_image(lines: list[str], font_path: str, size: int) -> Image:
    """An A4-shaped page (1654 x 2339 px, 200 dpi) with the lines at ``size`` px (11-12 pt at 200 dpi: ~32 px)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, size)
    image = Image.new("RGB", (1654, 2339), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((120, 160 + i * int(size * 1.8)), line, font=font, fill="black")
    return image


def scanned_pdf(path: Path, images: list[Path]) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    for image in images:
        pdf.drawImage(str(image), 0, 0, *A4)
        pdf.showPage()
    pdf.save()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=3, help="pages per case")
    parser.add_argument("--font", help="a .ttf/.ttc/.otf with Chinese glyphs")
    parser.add_argument("--size", type=int, default=32, help="text height in pixels at 200 dpi")
    args = parser.parse_args()
    font = find_font(args.font)
    t0 = time.perf_counter()
    engine()
    load_seconds = time.perf_counter() - t0
    cases = [("English", ENGLISH * 4), ("Chinese", CHINESE * 4), ("mixed", [*ENGLISH, *CHINESE] * 2)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, lines in cases:
            reference = "\n".join(lines)
            files = []
            for n in range(args.pages):
                file = folder / f"{name}-{n}.png"
                page_image(lines, font, args.size).save(file)
                files.append(file)
            for kind in ("image", "scanned PDF"):
                seconds, scores = 0.0, []
                if kind == "image":
                    for file in files:
                        t = time.perf_counter()
                        text = load(file).text
                        seconds += time.perf_counter() - t
                        scores.append(f1_score(text, [reference], "zh"))
                else:
                    pdf = folder / f"{name}.pdf"
                    scanned_pdf(pdf, files)
                    t = time.perf_counter()
                    doc = load(pdf, options=LoadOptions(ocr="auto"))
                    seconds += time.perf_counter() - t
                    starts = [*doc.page_offsets, len(doc.text)]
                    for i in range(len(doc.page_offsets)):
                        scores.append(f1_score(doc.text[starts[i] : starts[i + 1]], [reference], "zh"))
                rows.append((name, kind, len(lines), seconds / args.pages, sum(scores) / len(scores), min(scores)))
    print(f"OCR engine: RapidOCR (rapidocr-onnxruntime, PP-OCRv4); model load {load_seconds:.2f} s; font {font}")
    print(f"{'text':<9}{'input':<13}{'lines/page':>11}{'s/page':>9}{'char F1':>9}{'min F1':>8}")
    for name, kind, lines, per_page, mean, worst in rows:
        print(f"{name:<9}{kind:<13}{lines:>11}{per_page:>9.2f}{mean:>9.3f}{worst:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
