"""Reading one image from disk: the decoder behind training, evaluation and ``lanner infer``.

A file OpenCV cannot decode is a ``DataError`` naming it. A JPEG cut short (no end-of-image marker) still
decodes: libjpeg greys out the missing rows and prints a line that names no file, so ``read_image`` logs
a warning with the path, once per file and process.

Example:
    >>> import tempfile, pathlib, cv2, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.jpg"
    >>> _ = cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    >>> read_image(path).shape, jpeg_cut_short(path)
    ((8, 8, 3), False)
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import cv2
import numpy as np

from lanner.core.errors import DataError

log = logging.getLogger(__name__)
_warned: set[str] = set()
_warned_lock = threading.Lock()


def read_image(path: str | Path) -> np.ndarray:
    """A BGR uint8 image; an unreadable file raises ``DataError``, a truncated JPEG logs one warning."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError("cannot read image (missing, empty or not an image)", where=str(path),
                        fix="replace or remove the file")  # fmt: skip
    if jpeg_cut_short(path):
        with _warned_lock:
            first = str(path) not in _warned
            _warned.add(str(path))
        if first:
            log.warning("%s: the JPEG data ends early (truncated file?); its missing part is grey", path)
    return image


def jpeg_cut_short(path: str | Path) -> bool:
    """Whether a ``.jpg``/``.jpeg`` lacks the end-of-image marker (FF D9) that every complete JPEG ends with."""
    path = Path(path)
    if path.suffix.lower() not in (".jpg", ".jpeg"):
        return False
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - 64))
        tail = file.read().rstrip(b"\x00\r\n ")  # some writers pad after the marker
    return not tail.endswith(b"\xff\xd9")
