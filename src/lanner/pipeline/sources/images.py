"""``ImageDirSource``: the images of a folder, in name order, as a stream at ``fps``.

Useful for datasets and for replaying snapshots through a pipeline. ``pts_ns`` is ``index / fps``.
An image that cannot be read fails the source with its file name.

Example:
    >>> src = ImageDirSource(SourceConfig(uri="frames/", fps=10), source_id=0)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lanner.core.errors import SourceError
from lanner.pipeline.sources.base import Source, SourceInfo

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageDirSource(Source):
    """Images of a folder (sorted by name) decoded in a thread; never drops (like a file)."""

    kind = "images"

    def __init__(self, config: Any, source_id: int) -> None:
        super().__init__(config, source_id)
        folder = Path(config.path)
        if not folder.is_dir():
            raise SourceError("image folder not found", where=self.where, fix="check the path")
        self.paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise SourceError(
                "no images in the folder", where=self.where, fix=f"put {', '.join(IMAGE_SUFFIXES)} files there"
            )
        first = self._read(self.paths[0])
        self.info = SourceInfo(first.shape[1], first.shape[0], config.fps, "image")

    def _read(self, path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"cannot read image {path.name}", where=self.where, fix="remove or replace that file")
        return image

    def _decode(self) -> Iterator[tuple[int, np.ndarray]]:
        period_ns = 1e9 / self.config.fps
        index = 0
        while True:
            for path in self.paths:
                yield round(index * period_ns), self._read(path)
                index += 1
            if not self.config.loop or self._stop.is_set():
                return
