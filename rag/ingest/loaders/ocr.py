"""OCR, offline, Chinese and English: RapidOCR (PP-OCRv4 detection and recognition models, shipped inside the
``rapidocr-onnxruntime`` wheel, run on onnxruntime). Nothing is downloaded: the models are files of the package.

One engine per process, built on first use and shared by every loader (and thread) that needs it. Pages are taken
as upright: the engine's per-line 180-degree classifier is off (on rendered pages it turned correct lines upside
down and lost them, and it costs time). The engine's boxes are put back into lines (top to bottom, left to right);
pieces of one line are joined by a space, except between two CJK characters.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rag.errors import LoaderError
from rag.ingest.loaders.base import LoadOptions

logger = logging.getLogger(__name__)

MISSING_REASON = "OCR needs the rapidocr-onnxruntime package (pip install rapidocr-onnxruntime)"
# Pieces of text the engine is less sure of than this are dropped (its own default).
MIN_SCORE = 0.5

_lock = threading.Lock()
_engine: OcrEngine | None = None


class OcrEngine:
    """Recognises the text of an image (a PIL image or an RGB/grey numpy array)."""

    def __init__(self) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise LoaderError(MISSING_REASON) from exc
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        # Detection at the image's own size (at most 2000 px on the long side): the default ("min" 736) blows small
        # images up (a 1100x180 line strip became 4500x740: ten times slower, and a word doubled).
        self._ocr = RapidOCR(det_limit_type="max", det_limit_side_len=2000)
        self._run_lock = threading.Lock()  # onnxruntime sessions are shared; one image at a time

    def recognize(self, image: Any) -> str:
        import numpy as np

        array = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image)
        if array.ndim == 3:  # RapidOCR expects OpenCV's BGR order
            array = np.ascontiguousarray(array[:, :, ::-1])
        with self._run_lock:
            result, _ = self._ocr(array, use_cls=False)
        return lines_text(result or [])


def engine() -> OcrEngine:
    """The process's OCR engine (built on first use: about a second to load the models)."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = OcrEngine()
        return _engine


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x2E80 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0xFF00 <= code <= 0xFFEF or 0x3000 <= code <= 0x303F


def _join(pieces: list[str]) -> str:
    out = ""
    for piece in pieces:
        if out and not (_is_cjk(out[-1]) and _is_cjk(piece[0])):
            out += " "
        out += piece
    return out


def lines_text(result: list[Any]) -> str:
    """The engine's ``[box, text, score]`` results as lines of text in reading order."""
    boxes = []
    for box, text, score in result:
        text = str(text).strip()
        if not text or float(score) < MIN_SCORE:
            continue
        ys = [float(p[1]) for p in box]
        xs = [float(p[0]) for p in box]
        boxes.append((min(ys), max(ys), min(xs), text))
    boxes.sort()
    lines: list[list[tuple[float, float, float, str]]] = []
    for box in boxes:
        top, bottom = box[0], box[1]
        if lines:
            line = lines[-1]
            line_top = min(b[0] for b in line)
            line_bottom = max(b[1] for b in line)
            overlap = min(bottom, line_bottom) - max(top, line_top)
            if overlap > 0.5 * min(bottom - top, line_bottom - line_top):
                line.append(box)
                continue
        lines.append([box])
    return "\n".join(_join([b[3] for b in sorted(line, key=lambda b: b[2])]) for line in lines)


@dataclass
class OcrBudget:
    """The OCR bounds of one file: at most ``ocr_max_pages`` pages, at most ``ocr_max_seconds`` of recognition.
    ``done`` lists the pages recognised; ``left_out`` the pages a bound stopped (and ``reason`` which bound)."""

    options: LoadOptions
    done: list[int] = field(default_factory=list)
    left_out: list[int] = field(default_factory=list)
    seconds: float = 0.0
    reason: str = ""

    def allows(self, page: int) -> bool:
        if len(self.done) >= self.options.ocr_max_pages:
            self.reason = self.reason or f"OCR stopped at ocr_max_pages={self.options.ocr_max_pages}"
        elif self.seconds >= self.options.ocr_max_seconds:
            self.reason = self.reason or f"OCR stopped after ocr_max_seconds={self.options.ocr_max_seconds:g}"
        else:
            return True
        self.left_out.append(page)
        return False

    def recognize(self, page: int, image: Any) -> str:
        t0 = time.perf_counter()
        text = engine().recognize(image)
        self.seconds += time.perf_counter() - t0
        self.done.append(page)
        logger.debug("OCR page %d: %d chars in %.1f s", page, len(text), time.perf_counter() - t0)
        return text

    def note(self, metadata: dict[str, Any], unit: str = "pages") -> None:
        """Record what was recognised, and what a bound left out, in a document's metadata."""
        if self.done:
            metadata["ocr_pages"] = list(self.done)
        if self.left_out:
            metadata["truncated"] = f"{self.reason}: {unit} {_ranges(self.left_out)} not read"


def _ranges(numbers: list[int]) -> str:
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)
