"""``Frame`` and ``Batch``: what flows through a streaming pipeline.

A ``Frame`` is one decoded picture from one source with its detections and events. A ``Batch`` groups
frames from several sources together with the stacked network input made from them.

A decoder may hand a ``Picture`` instead of a BGR array: the frame as decoded (e.g. YUV 4:2:0), turned into
BGR only when a stage reads ``frame.image`` (the OSD, a video sink, a secondary classifier's crops). A
pipeline that only counts and publishes never pays for the full-size colour conversion; the detector's
input is resized from the picture's own planes (``Picture.resized_bgr``), as DeepStream keeps NV12 surfaces
and converts only where pixels are needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lanner.core.detections import Detections
from lanner.core.errors import DataError


@runtime_checkable
class Picture(Protocol):
    """A decoded picture not yet converted to BGR (see the module docstring)."""

    @property
    def height(self) -> int: ...

    @property
    def width(self) -> int: ...

    def to_bgr(self) -> np.ndarray:
        """The whole picture as HxWx3 uint8 BGR."""
        ...

    def resized_bgr(self, width: int, height: int) -> np.ndarray:
        """The picture resized to ``width x height``, as HxWx3 uint8 BGR (bilinear)."""
        ...


@dataclass
class Frame:
    """One frame of one source.

    ``image`` is HxWx3 uint8 (BGR, as decoders give it) on the host, or a device tensor on a GPU. A
    ``Picture`` given as ``image`` is converted to BGR on the first read of ``image`` (once; two stages
    reading it at the same moment may both convert, and either result is kept). ``decoded`` gives the
    picture or array without converting; ``hw`` never converts. ``pts_ns`` is the presentation time in
    nanoseconds.

    Example:
        >>> Frame(0, 0, 0, np.zeros((4, 6, 3), np.uint8)).hw
        (4, 6)
    """

    source_id: int
    frame_idx: int
    pts_ns: int
    image: Any
    detections: Detections = field(default_factory=Detections.empty)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def hw(self) -> tuple[int, int]:
        """Height and width of the image."""
        picture = self.__dict__["_picture"]
        if picture is not None:
            return int(picture.height), int(picture.width)
        image = self.__dict__["_image"]
        return int(image.shape[0]), int(image.shape[1])

    @property
    def decoded(self) -> Any:
        """The image as the decoder gave it: a ``Picture`` not yet converted, or the array."""
        picture = self.__dict__["_picture"]
        return picture if picture is not None else self.__dict__["_image"]


def _get_image(frame: Frame) -> Any:
    picture = frame.__dict__["_picture"]
    if picture is not None:  # first read: convert, then forget the picture
        frame.__dict__["_image"], frame.__dict__["_picture"] = picture.to_bgr(), None
    return frame.__dict__["_image"]


def _set_image(frame: Frame, image: Any) -> None:
    if not isinstance(image, np.ndarray) and isinstance(image, Picture):  # ndarray first: the Protocol check is slow
        frame.__dict__["_picture"], frame.__dict__["_image"] = image, None
        return
    bad = isinstance(image, np.ndarray) and (image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8)
    if bad:
        raise DataError(
            f"Frame.image must be HxWx3 uint8, got shape {image.shape} dtype {image.dtype}",
            where=f"source {frame.source_id} frame {frame.frame_idx}",
        )
    frame.__dict__["_picture"], frame.__dict__["_image"] = None, image


# ``image`` stays a dataclass field (constructor, ``dataclasses.replace``); reading and writing it go
# through these, which keep a ``Picture`` until a stage needs pixels.
Frame.image = property(_get_image, _set_image)


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
