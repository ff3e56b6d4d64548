"""Colours, labels and boxes drawn the same way everywhere: the pipeline's OSD and tiler, ``lanner infer``'s
annotated images and ``lanner dataset preview`` (BGR, OpenCV's order).

A fixed palette of distinct, saturated-but-not-neon colours (Tableau-10-like, readable on both day
and night scenes); class ``k`` or track ``t`` takes entry ``k % len`` / ``t % len``, so a class has the
same colour in a dataset preview, in ``lanner infer``'s output and in the streaming overlay.

Example:
    >>> import numpy as np
    >>> out = draw_boxes(np.zeros((40, 60, 3), np.uint8), np.array([[5, 5, 30, 30]]), [0], ["car 0.91"])
    >>> out.shape, tuple(int(v) for v in out[20, 5]) == color_for(0)  # the left edge
    ((40, 60, 3), True)
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# RGB hex of each entry, converted to BGR below
_HEX = ("4e79a7", "f28e2b", "e15759", "76b7b2", "59a14f", "edc948", "b07aa1", "ff9da7", "9c755f", "bab0ac")
PALETTE_BGR: tuple[tuple[int, int, int], ...] = tuple((int(h[4:6], 16), int(h[2:4], 16), int(h[0:2], 16)) for h in _HEX)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def color_for(index: int) -> tuple[int, int, int]:
    """The palette colour of a class id or track id (BGR)."""
    return PALETTE_BGR[int(index) % len(PALETTE_BGR)]


def text_color_on(bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``bgr`` (relative luminance)."""
    b, g, r = bgr
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


def put_label(
    image: np.ndarray, text: str, xy: tuple[int, int], bg: tuple[int, int, int], scale: float, above: bool = True
) -> tuple[int, int, int, int]:
    """Text on a filled box whose bottom-left (``above``) or top-left corner is ``xy``; returns the box xyxy.

    The box is kept inside the image, so labels of boxes at the top edge stay readable.
    """
    thickness = max(1, round(scale * 1.6))
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    pad = max(2, round(3 * scale))
    w, h = tw + 2 * pad, th + base + 2 * pad
    x, y = xy
    y0 = y - h if above else y
    x0 = int(min(max(x, 0), max(0, image.shape[1] - w)))
    y0 = int(min(max(y0, 0), max(0, image.shape[0] - h)))
    cv2.rectangle(image, (x0, y0), (x0 + w, y0 + h), bg, -1)
    cv2.putText(image, text, (x0 + pad, y0 + pad + th), FONT, scale, text_color_on(bg), thickness, cv2.LINE_AA)
    return x0, y0, x0 + w, y0 + h


def draw_boxes(
    image_bgr: np.ndarray,
    xyxy: np.ndarray,
    class_id: Sequence[int] | np.ndarray,
    labels: Sequence[str] | None = None,
    thickness: int | None = None,
) -> np.ndarray:
    """A copy of ``image_bgr`` with each box in its class colour and, if given, its label above it."""
    out = image_bgr.copy()
    thickness = thickness or max(1, round(min(out.shape[:2]) / 300))
    scale = max(0.35, min(out.shape[:2]) / 1000)
    for k, (box, cls) in enumerate(zip(np.asarray(xyxy, np.float64).reshape(-1, 4), np.asarray(class_id), strict=True)):
        colour = color_for(int(cls))
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        if labels is not None:
            put_label(out, labels[k], (x1, y1), colour, scale)
    return out
