"""``Frame`` and ``Batch``: what flows through a streaming pipeline.

A ``Frame`` is one decoded picture from one source with its detections and events. A ``Batch`` groups
frames from several sources together with the stacked network input made from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError


@dataclass
class Frame:
    """One frame of one source.

    ``image`` is HxWx3 uint8 (BGR, as decoders give it) on the host, or a device tensor on a GPU.
    ``pts_ns`` is the presentation time in nanoseconds.
    """

    source_id: int
    frame_idx: int
    pts_ns: int
    image: Any
    detections: Detections = field(default_factory=Detections.empty)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        image = self.image
        bad = isinstance(image, np.ndarray) and (image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8)
        if bad:
            raise DataError(
                f"Frame.image must be HxWx3 uint8, got shape {image.shape} dtype {image.dtype}",
                where=f"source {self.source_id} frame {self.frame_idx}",
            )

    @property
    def hw(self) -> tuple[int, int]:
        """Height and width of the image."""
        return int(self.image.shape[0]), int(self.image.shape[1])


@dataclass
class Batch:
    """Frames from one or more sources, plus the network input built from them (N x C x H x W)."""

    frames: list[Frame]
    tensor_nchw: Any | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def source_ids(self) -> list[int]:
        return [f.source_id for f in self.frames]
