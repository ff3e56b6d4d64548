"""Tiler (nvmultistreamtiler analog): many sources' images -> one ``rows`` x ``columns`` mosaic of fixed size.

Example:
    >>> import numpy as np
    >>> tiler = Tiler(TilerConfig(rows=1, columns=2, width=200, height=50, show_names=False))
    >>> mosaic = tiler.compose({1: np.full((50, 100, 3), 255, np.uint8)})
    >>> mosaic.shape, int(mosaic[25, 50].max()), int(mosaic[25, 150].min())  # tile 0 black, tile 1 white
    ((50, 200, 3), 0, 255)
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from lanner.core.drawing import put_label
from lanner.pipeline.draw.config import TilerConfig


def letterbox_into(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled to fit ``width`` x ``height`` keeping its aspect ratio, centred on black."""
    out = np.zeros((height, width, 3), np.uint8)
    h, w = image.shape[:2]
    s = min(width / w, height / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp) if (nw, nh) != (w, h) else image
    x0, y0 = (width - nw) // 2, (height - nh) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = resized
    return out


class Tiler:
    """Composes ``{source_id: image}`` into the mosaic; ``names`` labels the tiles (default "cam<id>")."""

    def __init__(self, config: TilerConfig, names: dict[int, str] | None = None) -> None:
        self.config = config
        self.names = dict(names or {})
        self._slots: dict[int, int] = {}

    def grid(self, sources: int) -> tuple[int, int]:
        """(rows, columns): the configured ones, or the near-square grid that fits ``sources``."""
        rows, cols = self.config.rows, self.config.columns
        n = max(1, sources)
        if rows and cols:
            return rows, cols
        if cols:
            return math.ceil(n / cols), cols
        if rows:
            return rows, math.ceil(n / rows)
        cols = math.ceil(math.sqrt(n))
        return math.ceil(n / cols), cols

    def slot(self, source_id: int, tiles: int) -> int | None:
        """The tile of a source: its id when that fits and is free, else the first free tile (sticky)."""
        if source_id in self._slots and self._slots[source_id] < tiles:
            return self._slots[source_id]
        taken = {s for sid, s in self._slots.items() if sid != source_id}
        wanted = source_id if 0 <= source_id < tiles and source_id not in taken else None
        free = [i for i in range(tiles) if i not in taken]
        choice = wanted if wanted is not None else (free[0] if free else None)
        if choice is not None:
            self._slots[source_id] = choice
        return choice

    def remove(self, source_id: int) -> None:
        """Free a removed source's tile."""
        self._slots.pop(source_id, None)

    def compose(self, images: dict[int, np.ndarray]) -> np.ndarray:
        """The mosaic (height x width x 3 uint8); sources without a tile (grid full) are left out."""
        cfg = self.config
        known = set(self._slots) | set(images)
        rows, cols = self.grid(max(len(known), max(known, default=-1) + 1))
        mosaic = np.zeros((cfg.height, cfg.width, 3), np.uint8)
        for source_id in sorted(images):
            index = self.slot(source_id, rows * cols)
            if index is None:
                continue
            r, c = divmod(index, cols)
            x0, x1 = c * cfg.width // cols, (c + 1) * cfg.width // cols
            y0, y1 = r * cfg.height // rows, (r + 1) * cfg.height // rows
            mosaic[y0:y1, x0:x1] = letterbox_into(images[source_id], x1 - x0, y1 - y0)
            if cfg.show_names:
                scale = cfg.text_scale * (y1 - y0) / 360.0
                put_label(mosaic, self.names.get(source_id, f"cam{source_id}"), (x0, y0), (32, 32, 32), scale,
                          above=False)  # fmt: skip
        return mosaic
