"""Image loader (Pillow + OCR): the recognised text of an image; each frame of a multi-page TIFF is a page."""

from __future__ import annotations

import io
import logging
from typing import Any

from rag.errors import LoaderError
from rag.ingest.loaders.base import LoadOptions, short_detail
from rag.ingest.loaders.ocr import OcrBudget
from rag.ingest.loaders.pdf import join_pages
from rag.types import Document

logger = logging.getLogger(__name__)

SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"})

OCR_OFF_REASON = "image needs OCR, which is off (ocr = never)"
NO_TEXT_REASON = "no text recognised in the image (OCR)"
# Larger images are refused (a decompression bomb); OCR sees at most OCR_SIDE pixels on the long side anyway.
MAX_PIXELS = 120_000_000
OCR_SIDE = 2500


def _open(data: bytes) -> Any:
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
    except Exception as exc:  # Pillow raises many types for damaged or unknown files
        raise LoaderError(f"corrupt or unreadable image: {short_detail(exc)}") from exc
    if width * height > MAX_PIXELS:
        raise LoaderError(f"image is {width}x{height} pixels, over the {MAX_PIXELS // 1_000_000} megapixel limit")
    return image


def _page(frame: Any) -> Any:
    """A frame as an RGB image no larger than OCR_SIDE on its long side."""
    rgb = frame.convert("RGB")
    rgb.thumbnail((OCR_SIDE, OCR_SIDE))
    return rgb


def load_image(data: bytes, path: str, options: LoadOptions) -> Document:
    """OCR text of each frame; ``metadata["ocr_pages"]`` lists the frames recognised. Frames are decoded one at a
    time, and only those the OCR bounds allow."""
    from PIL import ImageSequence

    image = _open(data)
    if options.ocr == "never":
        raise LoaderError(OCR_OFF_REASON)
    budget = OcrBudget(options)
    texts: list[str] = []
    try:
        for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
            texts.append(budget.recognize(number, _page(frame)).strip() if budget.allows(number) else "")
    except LoaderError:
        raise
    except Exception as exc:  # truncated data shows up when the pixels are decoded
        raise LoaderError(f"corrupt or truncated image: {short_detail(exc)}") from exc
    if not any(texts):
        raise LoaderError(NO_TEXT_REASON)
    metadata: dict[str, Any] = {"pages": len(texts), "width": image.size[0], "height": image.size[1]}
    budget.note(metadata)
    if len(texts) == 1:
        return Document(path=path, text=texts[0], file_type="image", metadata=metadata)
    text, offsets = join_pages(texts)
    return Document(path=path, text=text, file_type="image", page_offsets=offsets, metadata=metadata)
